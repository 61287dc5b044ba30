//! Framework cases as data: records in, status and findings out.
//!
//! A cases file (`frameworks/cases/<framework>.yaml`) lists, for the controls
//! of one framework, a records document (an example with fields set and
//! removed by JSON Pointer) and the status and findings the control must come
//! out with, or the text with which the records must be refused. The coverage
//! rule asks for a case of every status each control can reach.
//!
//! One implementation serves `cargo test` (the engine's `framework_cases`
//! test) and `vouch frameworks test`. Like the rest of the engine it reads no
//! disk: the caller hands it the files' texts and an [`Examples`] source.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::eval::{Finding, Status};
use crate::framework::positions::{PositionIndex, Seg};
use crate::framework::{suggest, unknown_name, Diagnostic, EmptyStatus, FrameworkSet};
use crate::packet::assemble_with;
use crate::records::RecordsDocument;
use crate::{Period, PluginHost, Timestamp};

/// The time at which a case is evaluated unless it says `generated_at`; its
/// period is the month before.
pub const DEFAULT_GENERATED_AT: &str = "2026-06-22T10:00:00Z";

/// The cases of the built-in frameworks (`frameworks/cases/*.yaml`).
pub const BUILTIN_CASES: &[(&str, &str)] = &[
    (
        "frameworks/cases/dora.yaml",
        include_str!("../../frameworks/cases/dora.yaml"),
    ),
    (
        "frameworks/cases/eu_ai_act.yaml",
        include_str!("../../frameworks/cases/eu_ai_act.yaml"),
    ),
    (
        "frameworks/cases/gdpr_ropa.yaml",
        include_str!("../../frameworks/cases/gdpr_ropa.yaml"),
    ),
    (
        "frameworks/cases/soc2.yaml",
        include_str!("../../frameworks/cases/soc2.yaml"),
    ),
];

/// The example records documents cases start from (`examples/records/*.json`).
pub const BUILTIN_EXAMPLES: &[(&str, &str)] = &[
    ("full", include_str!("../../examples/records/full.json")),
    (
        "one-bad-service",
        include_str!("../../examples/records/one-bad-service.json"),
    ),
    (
        "seed-only",
        include_str!("../../examples/records/seed-only.json"),
    ),
];

/// Where a case's `records:` name is looked up.
pub trait Examples {
    /// The records document `name` (`full`), as JSON text, for a case of
    /// the cases file `file`.
    fn records(&self, file: &str, name: &str) -> Result<String, String>;
}

/// The examples built into the binary ([`BUILTIN_EXAMPLES`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinExamples;

impl Examples for BuiltinExamples {
    fn records(&self, _file: &str, name: &str) -> Result<String, String> {
        BUILTIN_EXAMPLES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| (*text).to_owned())
            .ok_or_else(|| {
                let names: Vec<&str> = BUILTIN_EXAMPLES.iter().map(|(n, _)| *n).collect();
                let mut msg = format!(
                    "no example records named `{name}`; the examples are: {}",
                    names.join(", ")
                );
                if let Some(s) = suggest(name, &names) {
                    msg.push_str(&format!(" (did you mean `{s}`?)"));
                }
                msg
            })
    }
}

/// One cases file, parsed.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// The file's name as given (for messages: `file:line`).
    pub file: String,
    pub framework: String,
    /// control_id -> status -> why no records document can produce it.
    pub unreachable: BTreeMap<String, BTreeMap<Status, String>>,
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    framework: String,
    #[serde(default)]
    unreachable: BTreeMap<String, BTreeMap<Status, String>>,
    cases: Vec<Case>,
}

/// One case: a records document in, a status (or a refusal) out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Where the case starts in its file (1-based), set by [`parse_case_file`].
    #[serde(skip)]
    pub line: usize,
    pub control: String,
    pub name: String,
    /// An example document: `examples/records/<records>.json`.
    pub records: String,
    /// JSON Pointer -> new value (the last key is created if absent).
    #[serde(default)]
    pub set: BTreeMap<String, Value>,
    /// JSON Pointers to delete (before `set` applies).
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub generated_at: Option<String>,
    /// The status the control must come out with; or, with `refused`, none:
    /// the records contradict themselves and are refused where they enter.
    #[serde(default)]
    pub status: Option<Status>,
    /// A text the refusal must contain (e.g. the JSONPath of both values).
    #[serde(default)]
    pub refused: Option<String>,
    /// When given, exactly these findings (each field given must match).
    #[serde(default)]
    pub findings: Option<Vec<ExpectedFinding>>,
    /// A text the notes must contain.
    #[serde(default)]
    pub note: Option<String>,
}

/// A finding a case expects: the resource, and the field and observed value
/// where given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFinding {
    pub resource: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub observed: Option<Value>,
}

impl fmt::Display for ExpectedFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.resource)?;
        if let Some(field) = &self.field {
            write!(f, " {field}")?;
        }
        if let Some(v) = &self.observed {
            write!(f, " = {v}")?;
        }
        Ok(())
    }
}

/// Parses a cases file; a problem is reported at its `file:line:column`,
/// with "did you mean" where a name is close to a known one.
pub fn parse_case_file(file: &str, text: &str) -> Result<CaseFile, Box<Diagnostic>> {
    let lines: Vec<&str> = text.lines().collect();
    let at = |pos: crate::framework::positions::Pos, path: String, message: String| {
        Box::new(Diagnostic {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            path,
            message,
            excerpt: lines
                .get(pos.line.saturating_sub(1))
                .map(|l| l.trim_end().to_owned()),
            hint: None,
        })
    };
    let index = PositionIndex::build(text).map_err(|e| {
        at(
            e.pos,
            String::new(),
            format!("not valid YAML: {}", e.message),
        )
    })?;
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        at(
            crate::framework::positions::Pos { line: 1, column: 1 },
            String::new(),
            format!("not valid YAML: {e}"),
        )
    })?;
    let raw: RawFile = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = crate::framework::serde_path(&[], &err);
        let message = crate::framework::strip_location(&err.inner().to_string());
        let (pos, hint) = crate::framework::locate_and_hint(&index, &path, &message);
        let mut d = at(pos, crate::framework::positions::render(&path), message);
        d.hint = hint.or_else(|| {
            Some(
                "a case has: control, name, records, set, remove, generated_at, status or refused, findings, note"
                    .into(),
            )
        });
        d
    })?;
    let mut cases = raw.cases;
    for (i, case) in cases.iter_mut().enumerate() {
        case.line = index.value(&[Seg::Key("cases".into()), Seg::Index(i)]).line;
    }
    Ok(CaseFile {
        file: file.to_owned(),
        framework: raw.framework,
        unreachable: raw.unreachable,
        cases,
    })
}

/// What a control came out with, for a failing case's message.
#[derive(Debug, Clone, PartialEq)]
pub struct Actual {
    pub status: Status,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

/// Why a case did not hold.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseFailure {
    /// The case cannot run: an unknown framework or control, records that do
    /// not exist or do not parse, a pointer that points nowhere.
    Invalid(String),
    /// The records were refused, but the case expected a status (or another
    /// refusal); or accepted, but the case expected them refused.
    Refusal {
        expected: Option<String>,
        got: Option<String>,
    },
    /// The control came out otherwise than the case says.
    Mismatch { why: String, actual: Actual },
}

impl fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseFailure::Invalid(why) => write!(f, "{why}"),
            CaseFailure::Refusal { expected, got } => match (expected, got) {
                (Some(e), None) => write!(
                    f,
                    "expected the records refused ({e:?}), but they were accepted"
                ),
                (Some(e), Some(g)) => write!(f, "refused, but not for {e:?}: {g}"),
                (None, Some(g)) => write!(f, "the records were refused: {g}"),
                (None, None) => write!(f, "a case needs `status` or `refused`"),
            },
            CaseFailure::Mismatch { why, actual } => {
                writeln!(f, "{why}")?;
                write!(f, "actual:   {}", actual.status.as_str())?;
                if actual.findings.is_empty() {
                    write!(f, ", no findings")?;
                }
                for finding in &actual.findings {
                    write!(
                        f,
                        "\n  finding: {} {} = {} (expected {})",
                        finding.resource, finding.field, finding.observed, finding.expected
                    )?;
                }
                for note in actual.notes.iter().take(5) {
                    write!(f, "\n  note: {note}")?;
                }
                if actual.notes.len() > 5 {
                    write!(f, "\n  ... and {} more notes", actual.notes.len() - 5)?;
                }
                Ok(())
            }
        }
    }
}

impl Case {
    /// When the case is evaluated: its `generated_at`, else
    /// [`DEFAULT_GENERATED_AT`] (the period is the month before).
    pub fn generated_at(&self) -> Result<Timestamp, String> {
        self.generated_at
            .as_deref()
            .unwrap_or(DEFAULT_GENERATED_AT)
            .parse()
            .map_err(|e| format!("generated_at: {e}"))
    }

    /// The expectation, in a few words: `exception, findings [svc-a tls_enabled = false]`.
    pub fn expected(&self) -> String {
        let mut out = match (&self.status, &self.refused) {
            (Some(s), _) => s.as_str().to_owned(),
            (None, Some(r)) => format!("refused ({r:?})"),
            (None, None) => "nothing".to_owned(),
        };
        if let Some(findings) = &self.findings {
            let list: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
            out.push_str(&format!(", findings [{}]", list.join("; ")));
        }
        if let Some(note) = &self.note {
            out.push_str(&format!(", a note containing {note:?}"));
        }
        out
    }
}

fn set_pointer(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if let Some(slot) = doc.pointer_mut(pointer) {
        *slot = value;
        return Ok(());
    }
    let (parent, key) = pointer
        .rsplit_once('/')
        .ok_or(format!("`{pointer}` is not a JSON Pointer"))?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key.replace("~1", "/").replace("~0", "~"), value);
            Ok(())
        }
        _ => Err(format!("set {pointer}: no object at `{parent}`")),
    }
}

fn remove_pointer(doc: &mut Value, pointer: &str) -> Result<(), String> {
    let (parent, key) = pointer
        .rsplit_once('/')
        .ok_or(format!("`{pointer}` is not a JSON Pointer"))?;
    let nothing = || format!("remove {pointer}: nothing there");
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(key).map(|_| ()).ok_or_else(nothing),
        Some(Value::Array(items)) => match key.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                Ok(())
            }
            _ => Err(nothing()),
        },
        _ => Err(nothing()),
    }
}

/// The records document a case is evaluated on: the example, with its
/// removals and changes applied.
pub fn case_records(file: &str, case: &Case, examples: &dyn Examples) -> Result<Value, String> {
    let text = examples.records(file, &case.records)?;
    let mut doc: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the records `{}` are not JSON: {e}", case.records))?;
    for p in &case.remove {
        remove_pointer(&mut doc, p)?;
    }
    for (p, v) in &case.set {
        set_pointer(&mut doc, p, v.clone())?;
    }
    Ok(doc)
}

/// Runs one case of `file` against `frameworks`.
pub fn run_case(
    frameworks: &FrameworkSet,
    file: &CaseFile,
    case: &Case,
    examples: &dyn Examples,
    host: &dyn PluginHost,
) -> Result<(), CaseFailure> {
    let fw = frameworks.get(&file.framework).ok_or_else(|| {
        CaseFailure::Invalid(unknown_name(
            "framework",
            &file.framework,
            &frameworks.ids(),
        ))
    })?;
    let control = fw.control(&case.control).ok_or_else(|| {
        CaseFailure::Invalid(unknown_name(
            &format!("control of {}", fw.framework),
            &case.control,
            &control_ids(fw),
        ))
    })?;
    let doc = case_records(&file.file, case, examples).map_err(CaseFailure::Invalid)?;
    let records = match (RecordsDocument::from_value(doc), &case.refused) {
        (Ok(_), Some(why)) => {
            return Err(CaseFailure::Refusal {
                expected: Some(why.clone()),
                got: None,
            })
        }
        (Err(e), Some(why)) if e.to_string().contains(why.as_str()) => return Ok(()),
        (Err(e), expected) => {
            return Err(CaseFailure::Refusal {
                expected: expected.clone(),
                got: Some(e.to_string()),
            })
        }
        (Ok(r), None) => r,
    };
    let Some(status) = case.status else {
        return Err(CaseFailure::Refusal {
            expected: None,
            got: None,
        });
    };
    let generated_at = case.generated_at().map_err(CaseFailure::Invalid)?;
    let period = Period::month_ending_at(generated_at);
    let packet = assemble_with(fw, &records, generated_at, Some(period), host)
        .map_err(|e| CaseFailure::Invalid(e.to_string()))?;
    let result = packet
        .controls
        .into_iter()
        .find(|c| c.control_id == control.control_id)
        .ok_or_else(|| CaseFailure::Invalid(format!("{} is not in the packet", case.control)))?;
    let actual = Actual {
        status: result.status,
        findings: result.findings,
        notes: result.notes,
    };
    let mismatch = |why: String| CaseFailure::Mismatch {
        why,
        actual: actual.clone(),
    };
    if actual.status != status {
        return Err(mismatch(format!("expected: {}", case.expected())));
    }
    if let Some(expected) = &case.findings {
        if expected.len() != actual.findings.len() {
            return Err(mismatch(format!(
                "expected: {} ({} findings, not {})",
                case.expected(),
                expected.len(),
                actual.findings.len()
            )));
        }
        for e in expected {
            let hit = actual.findings.iter().any(|f| {
                f.resource == e.resource
                    && e.field.as_ref().is_none_or(|x| &f.field == x)
                    && e.observed.as_ref().is_none_or(|x| &f.observed == x)
            });
            if !hit {
                return Err(mismatch(format!(
                    "expected: {} (no finding like {e})",
                    case.expected()
                )));
            }
        }
    }
    if let Some(note) = &case.note {
        if !actual.notes.iter().any(|n| n.contains(note.as_str())) {
            return Err(mismatch(format!(
                "expected: {} (no such note)",
                case.expected()
            )));
        }
    }
    Ok(())
}

fn control_ids(fw: &crate::Framework) -> Vec<&str> {
    fw.controls.iter().map(|c| c.control_id.as_str()).collect()
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: String,
    pub line: usize,
    pub framework: String,
    pub control: String,
    pub name: String,
    pub outcome: Result<(), CaseFailure>,
}

/// What the coverage rule found missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gap {
    /// A control has no case of a status it can reach.
    Missing {
        framework: String,
        control: String,
        status: &'static str,
    },
    /// A cases file declares something the coverage rule refuses: a status
    /// unreachable that has a case, an unreachable status without a reason,
    /// an unknown framework or control.
    Invalid { file: String, why: String },
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::Missing {
                framework,
                control,
                status,
            } => write!(f, "{framework} {control}: no {status} case"),
            Gap::Invalid { file, why } => write!(f, "{file}: {why}"),
        }
    }
}

/// Every case's result and the coverage rule's gaps.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub results: Vec<CaseResult>,
    pub gaps: Vec<Gap>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.outcome.is_ok()).count()
    }
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
    /// Whether every case holds and the coverage rule is met.
    pub fn ok(&self) -> bool {
        self.failed() == 0 && self.gaps.is_empty()
    }
}

/// Runs every case of `files` and the coverage rule over every framework
/// of `frameworks`.
pub fn run(
    frameworks: &FrameworkSet,
    files: &[CaseFile],
    examples: &dyn Examples,
    host: &dyn PluginHost,
) -> Report {
    let mut results = vec![];
    for file in files {
        for case in &file.cases {
            results.push(CaseResult {
                file: file.file.clone(),
                line: case.line,
                framework: file.framework.clone(),
                control: case.control.clone(),
                name: case.name.clone(),
                outcome: run_case(frameworks, file, case, examples, host),
            });
        }
    }
    Report {
        results,
        gaps: coverage(frameworks, files),
    }
}

/// The statuses a control must have a case of: attested, exception and
/// inconclusive, and not_applicable when it has `applies_if` or declares
/// `empty: { status: not_applicable }`.
pub fn reachable(control: &crate::framework::Control) -> Vec<&'static str> {
    let mut needed = vec!["attested", "exception", "inconclusive"];
    let declares_na = control
        .empty
        .as_ref()
        .is_some_and(|e| e.status == EmptyStatus::NotApplicable);
    if declares_na || !control.applies_if.is_empty() {
        needed.push("not_applicable");
    }
    needed
}

/// The coverage rule: every control of every framework has a case of each
/// status it can reach, or declares the status unreachable with a reason.
pub fn coverage(frameworks: &FrameworkSet, files: &[CaseFile]) -> Vec<Gap> {
    type Key = (String, String);
    let mut seen: BTreeMap<Key, BTreeSet<&'static str>> = BTreeMap::new();
    let mut excused: BTreeMap<Key, BTreeSet<&'static str>> = BTreeMap::new();
    let mut gaps = vec![];
    for file in files {
        let Some(fw) = frameworks.get(&file.framework) else {
            gaps.push(Gap::Invalid {
                file: file.file.clone(),
                why: unknown_name("framework", &file.framework, &frameworks.ids()),
            });
            continue;
        };
        for case in &file.cases {
            let outcome = case.status.map_or("refused", |s| s.as_str());
            seen.entry((file.framework.clone(), case.control.clone()))
                .or_default()
                .insert(outcome);
        }
        for (control, statuses) in &file.unreachable {
            if fw.control(control).is_none() {
                gaps.push(Gap::Invalid {
                    file: file.file.clone(),
                    why: format!(
                        "unreachable: {}",
                        unknown_name(
                            &format!("control of {}", fw.framework),
                            control,
                            &control_ids(fw)
                        )
                    ),
                });
            }
            for (status, why) in statuses {
                if why.trim().is_empty() {
                    gaps.push(Gap::Invalid {
                        file: file.file.clone(),
                        why: format!("{control}: say why {} is unreachable", status.as_str()),
                    });
                }
                excused
                    .entry((file.framework.clone(), control.clone()))
                    .or_default()
                    .insert(status.as_str());
            }
        }
    }
    for fw in frameworks.iter() {
        for c in &fw.controls {
            let key = (fw.framework.clone(), c.control_id.clone());
            let have = seen.get(&key).cloned().unwrap_or_default();
            let unreachable = excused.get(&key).cloned().unwrap_or_default();
            for status in &unreachable {
                if have.contains(status) {
                    gaps.push(Gap::Invalid {
                        file: fw.framework.clone(),
                        why: format!(
                            "{}: {status} is declared unreachable but has a case",
                            c.control_id
                        ),
                    });
                }
            }
            for status in reachable(c) {
                if !have.contains(status) && !unreachable.contains(status) {
                    gaps.push(Gap::Missing {
                        framework: fw.framework.clone(),
                        control: c.control_id.clone(),
                        status,
                    });
                }
            }
        }
    }
    gaps
}

/// The built-in cases, parsed.
pub fn builtin() -> Result<Vec<CaseFile>, Box<Diagnostic>> {
    BUILTIN_CASES
        .iter()
        .map(|(file, text)| parse_case_file(file, text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_cases_hold() {
        let frameworks = FrameworkSet::builtin().unwrap();
        let report = run(
            &frameworks,
            &builtin().unwrap(),
            &BuiltinExamples,
            &crate::NoPluginHost,
        );
        assert!(report.results.len() > 100);
        assert!(report.ok(), "{:?}", report.gaps);
    }

    #[test]
    fn a_case_knows_its_line_and_a_misspelt_status_is_named() {
        let text = "framework: soc2\ncases:\n  - { control: CC6.1, name: a, records: full, status: attested }\n\n  - control: CC6.1\n    name: b\n    records: full\n    status: attested\n";
        let f = parse_case_file("c.yaml", text).unwrap();
        assert_eq!(f.cases[0].line, 3);
        assert_eq!(f.cases[1].line, 5);
        let bad = text.replace("status: attested }", "status: atested }");
        let d = parse_case_file("c.yaml", &bad).unwrap_err();
        assert_eq!((d.line, d.path.as_str()), (3, "cases[0].status"), "{d}");
        assert_eq!(d.hint.as_deref(), Some("did you mean `attested`?"), "{d}");
    }
}
