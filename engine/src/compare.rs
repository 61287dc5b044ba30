//! What changed between two packets of the same framework, control by
//! control: the status change (a regression, an improvement, or none) and
//! the findings that appeared and went away. Both packets are verified
//! before anyone compares them (the CLI and the server do).

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::Serialize;

use crate::eval::{ControlResult, Finding, Status};
use crate::packet::Packet;

/// How a control's status moved from the earlier packet to the later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Worse: to exception from anything else, or from attested or
    /// not_applicable to inconclusive (what held can no longer be shown).
    Regression,
    /// Better: from exception to attested or not_applicable, or from
    /// inconclusive to either.
    Improvement,
    /// Neither: between attested and not_applicable (the scope changed, not
    /// the verdict), or from exception to inconclusive (a failure that can no
    /// longer be shown is not shown to be fixed).
    Changed,
    Unchanged,
    /// In the later packet only (the framework gained it).
    Added,
    /// In the earlier packet only.
    Removed,
}

impl Change {
    fn of(before: Status, after: Status) -> Change {
        use Status::*;
        let good = |s| matches!(s, Attested | NotApplicable);
        match (before, after) {
            (b, a) if b == a => Change::Unchanged,
            (_, Exception) => Change::Regression,
            (b, Inconclusive) if good(b) => Change::Regression,
            (Exception | Inconclusive, a) if good(a) => Change::Improvement,
            _ => Change::Changed,
        }
    }
}

/// A finding as the comparison names it: the resource, the field and what
/// was expected (the observed value and the interval may move from one
/// period to the next and still be the same failure).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
pub struct FindingKey {
    pub resource: String,
    pub field: String,
    pub expected: String,
}

impl From<&Finding> for FindingKey {
    fn from(f: &Finding) -> Self {
        FindingKey {
            resource: f.resource.clone(),
            field: f.field.clone(),
            expected: f.expected.clone(),
        }
    }
}

/// One control's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ControlChange {
    pub control_id: String,
    pub change: Change,
    /// The status in the earlier packet (absent when the control is new).
    pub before: Option<Status>,
    /// The status in the later packet (absent when the control was removed).
    pub after: Option<Status>,
    pub findings_added: Vec<FindingKey>,
    pub findings_removed: Vec<FindingKey>,
}

/// Every control of either packet, in the later packet's order (removed
/// controls last), and how many of each change there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Comparison {
    pub controls: Vec<ControlChange>,
    pub regressions: usize,
    pub improvements: usize,
}

impl Comparison {
    /// The regressions, for a pipeline that fails on them.
    pub fn regressed(&self) -> impl Iterator<Item = &ControlChange> {
        self.controls
            .iter()
            .filter(|c| c.change == Change::Regression)
    }
}

/// Why two packets cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the packets are of different frameworks ({earlier} and {later}): nothing to compare")]
pub struct DifferentFrameworks {
    pub earlier: String,
    pub later: String,
}

/// How `later` differs from `earlier`.
pub fn compare(earlier: &Packet, later: &Packet) -> Result<Comparison, DifferentFrameworks> {
    if earlier.framework != later.framework {
        return Err(DifferentFrameworks {
            earlier: earlier.framework.clone(),
            later: later.framework.clone(),
        });
    }
    let find = |id: &str| earlier.controls.iter().find(|c| c.control_id == id);
    let mut controls: Vec<ControlChange> = later
        .controls
        .iter()
        .map(|after| match find(&after.control_id) {
            Some(before) => change(before, after),
            None => ControlChange {
                control_id: after.control_id.clone(),
                change: Change::Added,
                before: None,
                after: Some(after.status),
                findings_added: keys(after).into_iter().collect(),
                findings_removed: vec![],
            },
        })
        .collect();
    for before in &earlier.controls {
        if !later
            .controls
            .iter()
            .any(|c| c.control_id == before.control_id)
        {
            controls.push(ControlChange {
                control_id: before.control_id.clone(),
                change: Change::Removed,
                before: Some(before.status),
                after: None,
                findings_added: vec![],
                findings_removed: keys(before).into_iter().collect(),
            });
        }
    }
    let count = |k| controls.iter().filter(|c| c.change == k).count();
    Ok(Comparison {
        regressions: count(Change::Regression),
        improvements: count(Change::Improvement),
        controls,
    })
}

fn keys(c: &ControlResult) -> BTreeSet<FindingKey> {
    c.findings.iter().map(FindingKey::from).collect()
}

fn change(before: &ControlResult, after: &ControlResult) -> ControlChange {
    let (b, a) = (keys(before), keys(after));
    ControlChange {
        control_id: after.control_id.clone(),
        change: Change::of(before.status, after.status),
        before: Some(before.status),
        after: Some(after.status),
        findings_added: a.difference(&b).cloned().collect(),
        findings_removed: b.difference(&a).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn status_moves_are_classified_fail_closed() {
        for (before, after, want) in [
            (Attested, Exception, Change::Regression),
            (NotApplicable, Exception, Change::Regression),
            (Inconclusive, Exception, Change::Regression),
            (Attested, Inconclusive, Change::Regression),
            (NotApplicable, Inconclusive, Change::Regression),
            (Exception, Attested, Change::Improvement),
            (Exception, NotApplicable, Change::Improvement),
            (Exception, Inconclusive, Change::Changed),
            (Inconclusive, Attested, Change::Improvement),
            (Attested, NotApplicable, Change::Changed),
            (NotApplicable, Attested, Change::Changed),
            (Exception, Exception, Change::Unchanged),
        ] {
            assert_eq!(Change::of(before, after), want, "{before:?} -> {after:?}");
        }
    }
}
