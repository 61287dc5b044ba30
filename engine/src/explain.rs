//! Why a control came out as it did, for the people who write frameworks:
//! what each evidence path selected, who was in scope and why, each check's
//! verdict per resource, and the status that follows.
//!
//! Nothing here judges anything on its own: the scope decisions and the
//! status are the evaluator's ([`crate::eval`]), and each check's verdicts
//! are the evaluator's verdicts on the control with that check alone, so an
//! explanation cannot disagree with the packet.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::eval::{evaluate_control_with, ControlResult, ResourceResult, Status, Verdict};
use crate::framework::{suggest, Check, Control, Framework, Selector};
use crate::{Period, PluginHost};

/// How many resources (or values) each part of an explanation shows; the
/// rest are counted.
pub const SHOWN: usize = 20;

/// What one evidence path selected.
#[derive(Debug, Clone)]
pub struct Selection {
    pub path: String,
    /// Location and value, the first [`SHOWN`].
    pub values: Vec<(String, Value)>,
    pub total: usize,
}

/// One check and how each in-scope resource fared on it.
#[derive(Debug, Clone)]
pub struct CheckVerdicts {
    /// The check as written (`all_true: tls_enabled`).
    pub check: String,
    pub resources: Vec<ResourceResult>,
    pub omitted: u64,
}

/// Everything `vouch frameworks explain` prints for one control.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub framework: String,
    pub control: Control,
    pub period: Period,
    pub evidence: Vec<Selection>,
    pub checks: Vec<CheckVerdicts>,
    /// The control's result, as the packet carries it.
    pub result: ControlResult,
}

/// Explains `control` of `framework` on the records document `root`.
pub fn explain(
    framework: &Framework,
    control: &Control,
    root: &Value,
    period: &Period,
    host: &dyn PluginHost,
) -> Explanation {
    let evidence = control
        .evidence_refs
        .iter()
        .map(|path| {
            let found = path.select(root).unwrap_or_default();
            Selection {
                path: path.as_str().to_owned(),
                total: found.len(),
                values: found
                    .into_iter()
                    .take(SHOWN)
                    .map(|s| (s.location, s.value.clone()))
                    .collect(),
            }
        })
        .collect();
    let checks = control
        .checks
        .iter()
        .map(|check| {
            let alone = Control {
                checks: vec![check.clone()],
                ..control.clone()
            };
            let r = evaluate_control_with(&alone, root, period, host);
            let (resources, omitted) = match r.population {
                Some(p) => {
                    let shown: Vec<ResourceResult> = p
                        .resources
                        .into_iter()
                        .filter(|r| {
                            matches!(
                                r.verdict,
                                Verdict::Passed | Verdict::Failed | Verdict::Missing
                            )
                        })
                        .collect();
                    (shown, p.resources_omitted)
                }
                None => (vec![], 0),
            };
            CheckVerdicts {
                check: render_check(check),
                resources,
                omitted,
            }
        })
        .collect();
    Explanation {
        framework: framework.framework.clone(),
        control: control.clone(),
        period: *period,
        evidence,
        checks,
        result: evaluate_control_with(control, root, period, host),
    }
}

/// A check as YAML flow text: `at_least: { path: backups.retention_days, value: 7 }`.
pub fn render_check(check: &Check) -> String {
    match serde_json::to_value(check) {
        Ok(Value::Object(map)) if map.len() == 1 => map
            .iter()
            .map(|(op, args)| format!("{op}: {}", flow(args)))
            .collect(),
        Ok(v) => flow(&v),
        Err(_) => "?".into(),
    }
}

fn flow(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", flow(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::String(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || "._-[]*".contains(c)) =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

/// What a resource's verdict means for its scope, in words.
fn scope_words(r: &ResourceResult) -> &'static str {
    match r.verdict {
        Verdict::Passed | Verdict::Failed => "in scope",
        Verdict::Missing
            if r.reason
                .as_deref()
                .is_some_and(|why| why.contains("in scope") && why.contains("is unknown")) =>
        {
            "UNKNOWN whether in scope"
        }
        Verdict::Missing => "in scope",
        Verdict::Excluded => "excluded",
        Verdict::OutOfScope => "out of scope",
    }
}

fn verdict_words(v: Verdict) -> &'static str {
    match v {
        Verdict::Passed => "holds",
        Verdict::Failed => "FAILS",
        Verdict::Missing => "unknown (evidence missing)",
        Verdict::Excluded => "excluded",
        Verdict::OutOfScope => "out of scope",
    }
}

/// What each status means, as the reader of the explanation needs it.
fn status_words(status: Status) -> &'static str {
    match status {
        Status::Attested => {
            "every check holds on complete evidence for every resource in scope, and the population is not empty"
        }
        Status::Exception => "a check fails on a known value: the findings below name the resource, the field and the value",
        Status::NotApplicable => "the control does not apply (see the notes below)",
        Status::Inconclusive => {
            "nothing fails on a known value, but evidence is missing or a resource's scope is unknown, and unknown is never false: the notes below say what is missing"
        }
    }
}

/// `s` with its control characters escaped (records and framework files are
/// other people's text; a terminal must not take them for its own codes).
pub fn escaped(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A normalized JSONPath location as an analyst writes it:
/// `$['services'][0]['tls_enabled']` is `services[0].tls_enabled`.
fn location(normalized: &str) -> String {
    let mut out = String::new();
    let mut rest = normalized.strip_prefix('$').unwrap_or(normalized);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").unwrap_or(r.len());
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&r[..end]);
            rest = r.get(end + 2..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            out.push_str(&format!("[{}]", &r[..end]));
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            out.push_str(rest);
            break;
        }
    }
    out
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.control;
        writeln!(f, "{} {}: {}", self.framework, c.control_id, c.title)?;
        writeln!(f, "assertion: {}", c.assertion)?;
        writeln!(
            f,
            "period: {} to {} (time basis: {})",
            self.period.start,
            self.period.end,
            c.time_basis.as_str()
        )?;

        writeln!(f, "\nevidence paths (from the records document's root):")?;
        for s in &self.evidence {
            writeln!(
                f,
                "  {} selected {} value{}",
                s.path,
                s.total,
                if s.total == 1 { "" } else { "s" }
            )?;
            for (location, value) in &s.values {
                writeln!(
                    f,
                    "    {} = {}",
                    escaped(&self::location(location)),
                    escaped(&value.to_string())
                )?;
            }
            if s.total > s.values.len() {
                writeln!(f, "    ... and {} more", s.total - s.values.len())?;
            }
        }

        if !c.applies_if.is_empty() {
            writeln!(
                f,
                "\napplies if all of these hold (otherwise not_applicable):"
            )?;
            for check in &c.applies_if {
                writeln!(f, "  - {}", render_check(check))?;
            }
        }

        writeln!(f, "\nscope:")?;
        match &c.scope {
            None => writeln!(
                f,
                "  the records as a whole (one resource: the organization)"
            )?,
            Some(scope) => {
                write!(
                    f,
                    "  each item of `{}`, named by `{}`",
                    scope.each.as_str(),
                    scope.id
                )?;
                if scope.filter.is_empty() {
                    writeln!(f)?;
                } else {
                    writeln!(f, ", in scope when all of these hold:")?;
                    for check in &scope.filter {
                        writeln!(f, "    - {}", render_check(check))?;
                    }
                    match &scope.when_missing {
                        Some(rule) => writeln!(
                            f,
                            "  where a `where` field is missing or null: {} ({})",
                            serde_json::to_value(rule.action)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            rule.reason
                        )?,
                        None => writeln!(
                            f,
                            "  where a `where` field is missing or null, the resource's scope is unknown: unknown is never false, so the control cannot be attested"
                        )?,
                    }
                }
                if let Some(p) = &self.result.population {
                    for r in p.resources.iter().take(SHOWN) {
                        write!(f, "  {:<24} {}", escaped(&r.resource), scope_words(r))?;
                        // The scope's reasons; missing evidence is the checks' part.
                        match (scope_words(r), &r.reason) {
                            ("in scope", _) | (_, None) => writeln!(f)?,
                            (_, Some(why)) => writeln!(f, ": {}", escaped(why))?,
                        }
                    }
                    let more = p.resources.len().saturating_sub(SHOWN) as u64 + p.resources_omitted;
                    if more > 0 {
                        writeln!(f, "  ... and {more} more")?;
                    }
                    writeln!(
                        f,
                        "  {} selected: {} in scope ({} passed, {} failed, {} missing evidence or unknown scope), {} excluded, {} out of scope",
                        p.selected, p.in_scope, p.passed, p.failed, p.missing, p.excluded, p.out_of_scope
                    )?;
                }
            }
        }

        writeln!(f, "\nchecks (all must hold):")?;
        for (i, check) in self.checks.iter().enumerate() {
            writeln!(f, "  {}. {}", i + 1, check.check)?;
            for r in check.resources.iter().take(SHOWN) {
                if scope_words(r).starts_with("UNKNOWN") {
                    writeln!(
                        f,
                        "     {:<24} not judged: its scope is unknown",
                        escaped(&r.resource)
                    )?;
                    continue;
                }
                write!(
                    f,
                    "     {:<24} {}",
                    escaped(&r.resource),
                    verdict_words(r.verdict)
                )?;
                let values: Vec<String> = r
                    .observed
                    .iter()
                    .take(4)
                    .map(|o| {
                        let mut s = format!("{} = {}", o.field, o.value);
                        if let Some(i) = &o.interval {
                            s.push_str(&format!(" ({} to {})", i.from, i.to));
                        }
                        escaped(&s)
                    })
                    .collect();
                if !values.is_empty() {
                    write!(f, ": {}", values.join("; "))?;
                    let more = r.observed.len().saturating_sub(4) as u64 + r.observed_omitted;
                    if more > 0 {
                        write!(f, "; and {more} more")?;
                    }
                }
                if r.verdict == Verdict::Missing {
                    if let Some(why) = &r.reason {
                        write!(f, " [{}]", escaped(why))?;
                    }
                }
                writeln!(f)?;
            }
            let more = check.resources.len().saturating_sub(SHOWN) as u64 + check.omitted;
            if more > 0 {
                writeln!(f, "     ... and {more} more")?;
            }
        }

        let r = &self.result;
        writeln!(f, "\nstatus: {}", r.status.as_str())?;
        writeln!(f, "  because {}", status_words(r.status))?;
        for finding in r.findings.iter().take(SHOWN) {
            write!(
                f,
                "  finding: {} {} = {}, expected {}",
                escaped(&finding.resource),
                escaped(&finding.field),
                escaped(&finding.observed.to_string()),
                escaped(&finding.expected)
            )?;
            if let Some(i) = &finding.interval {
                write!(f, " ({} to {})", i.from, i.to)?;
            }
            writeln!(f)?;
        }
        if r.findings.len() > SHOWN {
            writeln!(f, "  ... and {} more findings", r.findings.len() - SHOWN)?;
        }
        for note in r.notes.iter().take(SHOWN) {
            writeln!(f, "  note: {}", escaped(note))?;
        }
        if r.notes.len() > SHOWN {
            writeln!(f, "  ... and {} more notes", r.notes.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// A path of a framework that selects nothing on a records document, with
/// the nearest path that does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyPath {
    pub control_id: String,
    /// Where in the control: `evidence_refs[0]`, `checks[2]`, `scope.where[0]`.
    pub at: String,
    pub path: String,
    /// Relative to each resource of `scope.each`, or to the document root.
    pub relative_to: Option<String>,
    pub nearest: Option<String>,
}

impl fmt::Display for EmptyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: `{}` selects nothing",
            self.control_id, self.at, self.path
        )?;
        if let Some(each) = &self.relative_to {
            write!(f, " in any item of `{each}`")?;
        }
        write!(f, " in the example records or any case")?;
        if let Some(n) = &self.nearest {
            write!(f, "; did you mean `{n}`?")?;
        }
        Ok(())
    }
}

/// The paths of `framework` that select nothing on any of `roots` (example
/// records documents that have, between them, every field): a misspelt field
/// makes a control inconclusive on every real document, which the loader
/// cannot see.
pub fn empty_paths(framework: &Framework, roots: &[&Value]) -> Vec<EmptyPath> {
    let mut out = vec![];
    // The fields to suggest from, listed only when a path selects nothing.
    let mut root_fields = None;
    for c in &framework.controls {
        for (i, path) in c.evidence_refs.iter().enumerate() {
            if !selects_any(path, roots) {
                out.push(EmptyPath {
                    control_id: c.control_id.clone(),
                    at: format!("evidence_refs[{i}]"),
                    path: path.as_str().to_owned(),
                    relative_to: None,
                    nearest: nearest(
                        path.as_str(),
                        root_fields.get_or_insert_with(|| field_paths(roots)),
                    ),
                });
            }
        }
        // With a scope, checks and `where` read each resource, as it is and as
        // it was in each interval of its history.
        let (targets, relative_to): (Vec<&Value>, Option<String>) = match &c.scope {
            None => (roots.to_vec(), None),
            Some(scope) => {
                let mut targets = vec![];
                for root in roots {
                    for s in scope.each.select(root).unwrap_or_default() {
                        let items = match s.value {
                            Value::Array(items) => items.iter().collect(),
                            other => vec![other],
                        };
                        for item in items {
                            targets.push(item);
                            if let Some(Value::Array(history)) = item.get("history") {
                                targets.extend(history.iter());
                            }
                        }
                    }
                }
                (targets, Some(scope.each.as_str().to_owned()))
            }
        };
        if targets.is_empty() {
            continue;
        }
        let mut paths: Vec<(String, &Selector)> = vec![];
        if let Some(scope) = &c.scope {
            for (i, check) in scope.filter.iter().enumerate() {
                check_paths(check, &format!("scope.where[{i}]"), &mut paths);
            }
        }
        for (i, check) in c.checks.iter().enumerate() {
            check_paths(check, &format!("checks[{i}]"), &mut paths);
        }
        let mut fields = None;
        for (at, path) in paths {
            if !selects_any(path, &targets) {
                let fields = fields.get_or_insert_with(|| field_paths(&targets));
                out.push(EmptyPath {
                    control_id: c.control_id.clone(),
                    at,
                    path: path.as_str().to_owned(),
                    relative_to: relative_to.clone(),
                    nearest: nearest(path.as_str(), fields),
                });
            }
        }
    }
    out
}

fn selects_any(path: &Selector, targets: &[&Value]) -> bool {
    targets
        .iter()
        .any(|t| path.select(t).is_ok_and(|v| !v.is_empty()))
}

/// The main path of a check (and of each `any_of` alternative): the one it
/// reads on the resource. `count`'s `where` and `max_gap`'s `at` read the
/// items of that path and are left to the cases.
fn check_paths<'c>(check: &'c Check, at: &str, out: &mut Vec<(String, &'c Selector)>) {
    let path = match check {
        Check::AllTrue(p) | Check::NonEmpty(p) | Check::CoversPeriod(p) | Check::ForPeriod(p) => p,
        Check::Equals(a) => &a.path,
        Check::OneOf(a) => &a.path,
        Check::AtLeast(a) | Check::AtMost(a) => &a.path,
        Check::NotOlderThan(a) => &a.path,
        Check::Count(a) => &a.path,
        Check::MaxGap(a) => &a.path,
        Check::Plugin(a) => match &a.path {
            Some(p) => p,
            None => return,
        },
        Check::AnyOf(alternatives) => {
            for (i, alt) in alternatives.iter().enumerate() {
                check_paths(alt, &format!("{at}.any_of[{i}]"), out);
            }
            return;
        }
    };
    out.push((at.to_owned(), path));
}

/// Every path of fields in `values`, with `[*]` for arrays (six levels deep).
fn field_paths(values: &[&Value]) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, depth: usize, out: &mut BTreeSet<String>) {
        if depth > 6 {
            return;
        }
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.insert(p.clone());
                    walk(v, &p, depth + 1, out);
                }
            }
            Value::Array(items) => {
                let p = format!("{prefix}[*]");
                for item in items {
                    walk(item, &p, depth + 1, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for v in values {
        walk(v, "", 0, &mut out);
    }
    out.into_iter().collect()
}

fn nearest(path: &str, fields: &[String]) -> Option<String> {
    let known: Vec<&str> = fields.iter().map(String::as_str).collect();
    suggest(path.trim_start_matches("$."), &known).map(str::to_owned)
}
