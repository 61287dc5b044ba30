//! Evaluation: a framework's controls against a records document, for a period.
//!
//! Fail closed: a control is `attested` only when every check holds on evidence
//! that is actually there. A path that selects nothing is missing evidence and
//! makes the control `inconclusive`; a failing check makes it an `exception`
//! whose findings name the resource, the field and the observed value.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::framework::{Check, Control, CountArgs, PluginArgs, Selector};
use crate::time::{Period, Timestamp};

/// The four statuses of a control.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every check holds on non-empty evidence.
    Attested,
    /// A check fails; the findings name the resources.
    Exception,
    /// The control's scope selects nothing.
    NotApplicable,
    /// Evidence is missing (or a plugin failed): nothing can be attested.
    Inconclusive,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Attested => "attested",
            Status::Exception => "exception",
            Status::NotApplicable => "not_applicable",
            Status::Inconclusive => "inconclusive",
        }
    }
}

/// One failing value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The resource's id (e.g. a service_id), or the organization id for
    /// controls without a scope.
    pub resource: String,
    /// Where in the resource, e.g. `backups.retention_days`.
    pub field: String,
    /// The value the records hold there.
    pub observed: Value,
    /// What the check required, in words.
    pub expected: String,
    /// Fields of the resource named by the scope's `context`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, Value>,
}

/// The evaluated form of one control, as it appears in the packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlResult {
    pub control_id: String,
    pub title: String,
    pub assertion: String,
    pub status: Status,
    pub evidence_refs: Vec<String>,
    /// The criterion or article the control evidences.
    pub reference: String,
    /// Why the control is an exception (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Why the control is inconclusive or not applicable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The plugins that took part in deciding the control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginInfo>,
}

/// A plugin as recorded in packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// Runs plugins for the engine. The engine builds the input and judges the
/// output; the host only runs untrusted code in its sandbox (see `plugins/ABI.md`).
pub trait PluginHost: Sync {
    /// Runs plugin `name` on `input` (JSON); its output bytes, or why it failed
    /// (trap, timeout, memory, oversize output...).
    fn call(&self, name: &str, input: &[u8]) -> Result<Vec<u8>, String>;
    /// The plugin's version and sha256, recorded in packets.
    fn info(&self, name: &str) -> Option<PluginInfo>;
}

/// A host without plugins: every plugin check is inconclusive.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPluginHost;

impl PluginHost for NoPluginHost {
    fn call(&self, name: &str, _: &[u8]) -> Result<Vec<u8>, String> {
        Err(format!(
            "plugin `{name}` cannot run: no plugin host is configured"
        ))
    }
    fn info(&self, _: &str) -> Option<PluginInfo> {
        None
    }
}

/// What a plugin answers (ABI v1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginAnswer {
    status: PluginStatus,
    #[serde(default)]
    findings: Vec<PluginFinding>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum PluginStatus {
    Pass,
    Fail,
    Inconclusive,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginFinding {
    field: String,
    #[serde(default)]
    observed: Value,
    expected: String,
}

/// What one check concluded on one resource.
#[derive(Debug, Default)]
struct Outcome {
    findings: Vec<Finding>,
    missing: Vec<String>,
    plugins: Vec<PluginInfo>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.findings.is_empty() && self.missing.is_empty()
    }
    fn absorb(&mut self, other: Outcome) {
        self.findings.extend(other.findings);
        self.missing.extend(other.missing);
        for p in other.plugins {
            if !self.plugins.contains(&p) {
                self.plugins.push(p);
            }
        }
    }
}

/// The resource a check is evaluated on.
struct Target<'a> {
    value: &'a Value,
    id: String,
    /// `service svc-1`, or `organization` for the document root.
    label: String,
    context: &'a BTreeMap<String, Value>,
}

struct Evaluator<'a> {
    period: &'a Period,
    host: &'a dyn PluginHost,
    control: &'a Control,
}

/// Evaluates one control against the records document (as a JSON value).
pub fn evaluate_control(control: &Control, root: &Value, period: &Period) -> ControlResult {
    evaluate_control_with(control, root, period, &NoPluginHost)
}

/// Evaluates one control, running its `plugin:` checks on `host`.
pub fn evaluate_control_with(
    control: &Control,
    root: &Value,
    period: &Period,
    host: &dyn PluginHost,
) -> ControlResult {
    let ev = Evaluator {
        period,
        host,
        control,
    };
    let (status, findings, notes, plugins) = ev.control(control, root);
    ControlResult {
        control_id: control.control_id.clone(),
        title: control.title.clone(),
        assertion: control.assertion.clone(),
        status,
        evidence_refs: control
            .evidence_refs
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        reference: control.reference.clone(),
        findings,
        notes,
        plugins,
    }
}

impl Evaluator<'_> {
    fn control(
        &self,
        control: &Control,
        root: &Value,
    ) -> (Status, Vec<Finding>, Vec<String>, Vec<PluginInfo>) {
        let empty = BTreeMap::new();
        let mut total = Outcome::default();
        let id = root
            .pointer("/organization/id")
            .map(display_id)
            .unwrap_or_else(|| "organization".to_owned());
        let org = Target {
            value: root,
            id,
            label: "the organization".into(),
            context: &empty,
        };
        if !control
            .applies_if
            .iter()
            .all(|c| self.check(c, &org).passed())
        {
            return (
                Status::NotApplicable,
                vec![],
                vec!["the records do not meet the control's `applies_if` conditions".into()],
                vec![],
            );
        }
        match &control.scope {
            None => {
                let target = org;
                for check in &control.checks {
                    total.absorb(self.check(check, &target));
                }
            }
            Some(scope) => {
                let selected = match scope.each.select(root) {
                    Ok(s) => s,
                    Err(e) => {
                        return (
                            Status::Inconclusive,
                            vec![],
                            vec![format!(
                                "scope `{}` could not be evaluated: {e}",
                                scope.each.as_str()
                            )],
                            vec![],
                        )
                    }
                };
                if selected.is_empty() {
                    return (
                        Status::Inconclusive,
                        vec![],
                        vec![format!("the records have no `{}`", scope.each.as_str())],
                        vec![],
                    );
                }
                let items: Vec<&Value> = selected
                    .iter()
                    .flat_map(|s| match s.value {
                        Value::Array(items) => items.iter().collect::<Vec<_>>(),
                        other => vec![other],
                    })
                    .collect();
                let mut in_scope = 0usize;
                for (i, item) in items.iter().enumerate() {
                    let context: BTreeMap<String, Value> = scope
                        .context
                        .iter()
                        .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                    let id = item
                        .get(&scope.id)
                        .map(display_id)
                        .unwrap_or_else(|| format!("#{i}"));
                    let target = Target {
                        value: item,
                        label: format!("`{id}`"),
                        id,
                        context: &context,
                    };
                    if !scope.filter.iter().all(|f| self.check(f, &target).passed()) {
                        continue;
                    }
                    in_scope += 1;
                    for check in &control.checks {
                        total.absorb(self.check(check, &target));
                    }
                }
                if in_scope == 0 {
                    let what = if scope.filter.is_empty() {
                        format!("`{}` is empty", scope.each.as_str())
                    } else {
                        format!(
                            "no item of `{}` meets the scope's `where` conditions",
                            scope.each.as_str()
                        )
                    };
                    return (Status::NotApplicable, vec![], vec![what], vec![]);
                }
            }
        }
        let plugins = std::mem::take(&mut total.plugins);
        if !total.findings.is_empty() {
            (Status::Exception, total.findings, vec![], plugins)
        } else if !total.missing.is_empty() {
            total.missing.dedup();
            (Status::Inconclusive, vec![], total.missing, plugins)
        } else {
            (Status::Attested, vec![], vec![], plugins)
        }
    }

    fn check(&self, check: &Check, t: &Target<'_>) -> Outcome {
        match check {
            Check::AllTrue(path) => self.each(t, path, "true", |v| v == &Value::Bool(true)),
            Check::NonEmpty(path) => self.each(t, path, "a value that is not empty", |v| match v {
                Value::Null => false,
                Value::String(s) => !s.trim().is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            }),
            Check::Equals(a) => {
                let expected = format!("equal to {}", a.value);
                self.each(t, &a.path, &expected, |v| v == &a.value)
            }
            Check::OneOf(a) => {
                let list: Vec<String> = a.values.iter().map(Value::to_string).collect();
                let expected = format!("one of {}", list.join(", "));
                self.each(t, &a.path, &expected, |v| a.values.contains(v))
            }
            Check::AtLeast(a) => {
                let expected = format!("an integer of at least {}", a.value);
                self.each(t, &a.path, &expected, |v| {
                    v.as_i64().is_some_and(|n| n >= a.value)
                })
            }
            Check::AtMost(a) => {
                let expected = format!("an integer of at most {}", a.value);
                self.each(t, &a.path, &expected, |v| {
                    v.as_i64().is_some_and(|n| n <= a.value)
                })
            }
            Check::NotOlderThan(a) => {
                let Some(age) = a.max_age.duration() else {
                    return missing(format!(
                        "max_age `{}` is not a duration",
                        a.max_age.as_str()
                    ));
                };
                let earliest = self.period.end.saturating_sub(age);
                let expected = format!(
                    "a time between {earliest} and {} (no older than {})",
                    self.period.end,
                    a.max_age.as_str()
                );
                self.each(t, &a.path, &expected, |v| {
                    timestamp(v).is_some_and(|ts| earliest <= ts && ts <= self.period.end)
                })
            }
            Check::CoversPeriod(path) => {
                let start = self.period.start;
                let expected = format!("a time at or before the period start {start}");
                self.each(t, path, &expected, |v| {
                    timestamp(v).is_some_and(|ts| ts <= start)
                })
            }
            Check::Count(a) => self.count(a, t),
            Check::Plugin(a) => self.plugin(a, t),
            Check::AnyOf(alternatives) => {
                let mut all = Outcome::default();
                for alt in alternatives {
                    let o = self.check(alt, t);
                    if o.passed() {
                        return Outcome::default();
                    }
                    all.absorb(o);
                }
                if all.missing.is_empty() {
                    all
                } else {
                    Outcome {
                        findings: vec![],
                        missing: all.missing,
                        plugins: all.plugins,
                    }
                }
            }
        }
    }

    /// Selects `path` on the target and tests every selected value.
    fn each(
        &self,
        t: &Target<'_>,
        path: &Selector,
        expected: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Outcome {
        let selected = match path.select(t.value) {
            Ok(s) => s,
            Err(e) => {
                return missing(format!(
                    "`{}` could not be evaluated for {}: {e}",
                    path.as_str(),
                    t.label
                ))
            }
        };
        if selected.is_empty() {
            return missing(format!(
                "no `{}` in the records for {}",
                path.as_str(),
                t.label
            ));
        }
        Outcome {
            findings: selected
                .into_iter()
                .filter(|s| !ok(s.value))
                .map(|s| Finding {
                    resource: t.id.clone(),
                    field: pretty_location(&s.location),
                    observed: s.value.clone(),
                    expected: expected.to_owned(),
                    context: t.context.clone(),
                })
                .collect(),
            missing: vec![],
            plugins: vec![],
        }
    }

    /// Runs a plugin on the target's evidence. Anything but a well-formed
    /// answer (trap, timeout, memory, malformed output) is missing evidence:
    /// the control is inconclusive, never attested, and nothing else fails.
    fn plugin(&self, a: &PluginArgs, t: &Target<'_>) -> Outcome {
        let info = self.host.info(&a.name);
        let with_info = |mut o: Outcome| {
            o.plugins.extend(info.clone());
            o
        };
        let evidence = match &a.path {
            None => t.value.clone(),
            Some(sel) => match sel.select(t.value) {
                Ok(v) if v.is_empty() => {
                    return missing(format!(
                        "no `{}` in the records for {}",
                        sel.as_str(),
                        t.label
                    ))
                }
                Ok(v) if v.len() == 1 => v[0].value.clone(),
                Ok(v) => Value::Array(v.into_iter().map(|s| s.value.clone()).collect()),
                Err(e) => {
                    return missing(format!(
                        "`{}` could not be evaluated for {}: {e}",
                        sel.as_str(),
                        t.label
                    ))
                }
            },
        };
        let input = serde_json::json!({
            "abi_version": 1,
            "control": {"control_id": self.control.control_id, "title": self.control.title},
            "config": a.config,
            "resource_id": t.id,
            "evidence": evidence,
            "period": {"start": self.period.start, "end": self.period.end},
        });
        let input = match serde_json::to_vec(&input) {
            Ok(b) => b,
            Err(e) => {
                return with_info(missing(format!(
                    "plugin `{}`: cannot encode its input: {e}",
                    a.name
                )))
            }
        };
        let inconclusive = |why: String| {
            with_info(missing(format!(
                "plugin `{}` failed for {}: {why}",
                a.name, t.label
            )))
        };
        let raw = match self.host.call(&a.name, &input) {
            Ok(raw) => raw,
            Err(why) => return inconclusive(why),
        };
        // The answer is untrusted input like any other: NFC, no floats, no control characters.
        let answer: PluginAnswer = match crate::records::parse_json_input(&raw)
            .and_then(crate::records::from_clean_value)
        {
            Ok(a) => a,
            Err(e) => return inconclusive(format!("malformed output: {e}")),
        };
        match answer.status {
            PluginStatus::Pass => with_info(Outcome::default()),
            PluginStatus::Inconclusive => inconclusive(
                answer
                    .note
                    .unwrap_or_else(|| "the plugin could not decide".into()),
            ),
            PluginStatus::Fail => {
                let mut findings: Vec<Finding> = answer
                    .findings
                    .into_iter()
                    .map(|f| Finding {
                        resource: t.id.clone(),
                        field: f.field,
                        observed: f.observed,
                        expected: f.expected,
                        context: t.context.clone(),
                    })
                    .collect();
                if findings.is_empty() {
                    findings.push(Finding {
                        resource: t.id.clone(),
                        field: String::new(),
                        observed: Value::Null,
                        expected: answer
                            .note
                            .unwrap_or_else(|| format!("what plugin `{}` checks", a.name)),
                        context: t.context.clone(),
                    });
                }
                with_info(Outcome {
                    findings,
                    missing: vec![],
                    plugins: vec![],
                })
            }
        }
    }

    fn count(&self, a: &CountArgs, t: &Target<'_>) -> Outcome {
        let selected = match a.path.select(t.value) {
            Ok(s) => s,
            Err(e) => {
                return missing(format!(
                    "`{}` could not be evaluated for {}: {e}",
                    a.path.as_str(),
                    t.label
                ))
            }
        };
        if selected.is_empty() {
            return missing(format!(
                "no `{}` in the records for {}",
                a.path.as_str(),
                t.label
            ));
        }
        let expected = match (a.min, a.max) {
            (Some(lo), Some(hi)) => format!("between {lo} and {hi} items"),
            (Some(lo), None) => format!("at least {lo} items"),
            (None, Some(hi)) => format!("at most {hi} items"),
            (None, None) => "a count".to_owned(),
        };
        let expected = if a.within_period.is_some() {
            format!(
                "{expected} within the period {} .. {}",
                self.period.start, self.period.end
            )
        } else {
            expected
        };
        let empty = BTreeMap::new();
        let mut out = Outcome::default();
        for s in selected {
            let Value::Array(items) = s.value else {
                out.findings.push(Finding {
                    resource: t.id.clone(),
                    field: pretty_location(&s.location),
                    observed: s.value.clone(),
                    expected: "a list".into(),
                    context: t.context.clone(),
                });
                continue;
            };
            let n = items
                .iter()
                .filter(|item| {
                    let it = Target {
                        value: item,
                        id: t.id.clone(),
                        label: t.label.clone(),
                        context: &empty,
                    };
                    a.filter.iter().all(|f| self.check(f, &it).passed())
                        && a.within_period.as_ref().is_none_or(|p| {
                            p.select(item).is_ok_and(|sel| {
                                sel.iter().any(|x| {
                                    timestamp(x.value).is_some_and(|ts| self.period.contains(ts))
                                })
                            })
                        })
                })
                .count() as u64;
            if a.min.is_some_and(|lo| n < lo) || a.max.is_some_and(|hi| n > hi) {
                out.findings.push(Finding {
                    resource: t.id.clone(),
                    field: pretty_location(&s.location),
                    observed: Value::from(n),
                    expected: expected.clone(),
                    context: t.context.clone(),
                });
            }
        }
        out
    }
}

fn missing(note: String) -> Outcome {
    Outcome {
        findings: vec![],
        missing: vec![note],
        plugins: vec![],
    }
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|s| s.parse().ok())
}

fn display_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `$['backups']['retention_days']` -> `backups.retention_days`; `$['zones'][1]` -> `zones[1]`.
pub fn pretty_location(loc: &str) -> String {
    let mut out = String::new();
    let mut rest = loc.strip_prefix('$').unwrap_or(loc);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            if let Some(end) = r.find("']") {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&r[..end]);
                rest = &r[end + 2..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix('[') {
            if let Some(end) = r.find(']') {
                out.push_str(&format!("[{}]", &r[..end]));
                rest = &r[end + 1..];
                continue;
            }
        }
        out.push_str(rest);
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_like_paths() {
        assert_eq!(
            pretty_location("$['backups']['retention_days']"),
            "backups.retention_days"
        );
        assert_eq!(
            pretty_location("$['services'][2]['zones'][0]"),
            "services[2].zones[0]"
        );
        assert_eq!(pretty_location("$"), "");
    }
}
