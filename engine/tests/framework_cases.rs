//! Test cases as data: `frameworks/cases/*.yaml` hold, for every control of the
//! built-in frameworks, records in (an example document with changes) and the
//! status and findings out. Adding a case needs no Rust: drop it in a file.
//!
//! A case may instead expect the records to be `refused` as contradictory.
//!
//! A second test checks coverage: every control has at least one case of each
//! status it can reach (attested, exception, inconclusive; not_applicable too
//! when it has `applies_if` or declares `empty: { status: not_applicable }`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use serde::Deserialize;
use serde_json::Value;
use vouch_engine::framework::EmptyStatus;
use vouch_engine::{assemble, FrameworkSet, Period, RecordsDocument, Status};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    framework: String,
    /// control_id -> status -> why no records document can produce it.
    #[serde(default)]
    unreachable: BTreeMap<String, BTreeMap<Status, String>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    control: String,
    name: String,
    /// An example document: `examples/records/<records>.json`.
    records: String,
    /// JSON Pointer -> new value (the last key is created if absent).
    #[serde(default)]
    set: BTreeMap<String, Value>,
    /// JSON Pointers to delete.
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    generated_at: Option<String>,
    /// The status the control must come out with; or, with `refused`, none:
    /// the records contradict themselves and are refused where they enter.
    #[serde(default)]
    status: Option<Status>,
    /// A text the refusal must contain (e.g. the JSONPath of both values).
    #[serde(default)]
    refused: Option<String>,
    /// When given, exactly these findings (each field given must match).
    #[serde(default)]
    findings: Option<Vec<ExpectedFinding>>,
    /// A text the notes must contain.
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ExpectedFinding {
    resource: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    observed: Option<Value>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn case_files() -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![repo().join("frameworks/cases")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn load_files() -> Vec<(PathBuf, CaseFile)> {
    case_files()
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let file: CaseFile =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, file)
        })
        .collect()
}

fn load_cases() -> Vec<(PathBuf, String, Case)> {
    let mut all = vec![];
    for (path, file) in load_files() {
        for case in file.cases {
            all.push((path.clone(), file.framework.clone(), case));
        }
    }
    all
}

fn set_pointer(doc: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if let Some(slot) = doc.pointer_mut(pointer) {
        *slot = value;
        return Ok(());
    }
    let (parent, key) = pointer.rsplit_once('/').ok_or("not a JSON pointer")?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key.replace("~1", "/").replace("~0", "~"), value);
            Ok(())
        }
        _ => Err(format!("no object at {parent}")),
    }
}

fn remove_pointer(doc: &mut Value, pointer: &str) -> Result<(), String> {
    let (parent, key) = pointer.rsplit_once('/').ok_or("not a JSON pointer")?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => map
            .remove(key)
            .map(|_| ())
            .ok_or(format!("nothing at {pointer}")),
        Some(Value::Array(items)) => {
            let i: usize = key.parse().map_err(|_| format!("bad index in {pointer}"))?;
            (i < items.len())
                .then(|| {
                    items.remove(i);
                })
                .ok_or(format!("nothing at {pointer}"))
        }
        _ => Err(format!("nothing at {pointer}")),
    }
}

fn run(frameworks: &FrameworkSet, case: &Case, framework: &str) -> Result<(), String> {
    let fw = frameworks
        .get(framework)
        .ok_or(format!("unknown framework {framework}"))?;
    let control = fw
        .control(&case.control)
        .ok_or(format!("unknown control {}", case.control))?;
    let path = repo()
        .join("examples/records")
        .join(format!("{}.json", case.records));
    let mut doc: Value = serde_json::from_slice(
        &std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?,
    )
    .unwrap();
    for p in &case.remove {
        remove_pointer(&mut doc, p)?;
    }
    for (p, v) in &case.set {
        set_pointer(&mut doc, p, v.clone())?;
    }
    let records = match (RecordsDocument::from_value(doc), &case.refused) {
        (Ok(_), Some(why)) => {
            return Err(format!(
                "expected the records refused ({why}), but they were accepted"
            ))
        }
        (Err(e), Some(why)) if e.to_string().contains(why.as_str()) => return Ok(()),
        (Err(e), Some(why)) => return Err(format!("refused, but not for {why:?}: {e}")),
        (Err(e), None) => return Err(format!("records refused: {e}")),
        (Ok(r), None) => r,
    };
    let Some(status) = case.status else {
        return Err("a case needs `status` or `refused`".into());
    };
    let generated_at = ts(case
        .generated_at
        .as_deref()
        .unwrap_or("2026-06-22T10:00:00Z"));
    let period = Period::month_ending_at(generated_at);
    let packet = assemble(fw, &records, generated_at, Some(period)).map_err(|e| e.to_string())?;
    let result = packet
        .controls
        .iter()
        .find(|c| c.control_id == control.control_id)
        .unwrap();
    let describe = || {
        format!(
            "{:?} findings={:?} notes={:?}",
            result.status, result.findings, result.notes
        )
    };
    if result.status != status {
        return Err(format!("expected {status:?}, got {}", describe()));
    }
    if let Some(expected) = &case.findings {
        if expected.len() != result.findings.len() {
            return Err(format!(
                "expected {} findings, got {}",
                expected.len(),
                describe()
            ));
        }
        for e in expected {
            let hit = result.findings.iter().any(|f| {
                f.resource == e.resource
                    && e.field.as_ref().is_none_or(|x| &f.field == x)
                    && e.observed.as_ref().is_none_or(|x| &f.observed == x)
            });
            if !hit {
                return Err(format!("no finding like {e:?}; got {}", describe()));
            }
        }
    }
    if let Some(note) = &case.note {
        if !result.notes.iter().any(|n| n.contains(note.as_str())) {
            return Err(format!("no note containing {note:?}; got {}", describe()));
        }
    }
    Ok(())
}

#[test]
fn every_case_holds() {
    let cases = load_cases();
    let frameworks = builtin();
    assert!(cases.len() > 100, "only {} cases found", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(file, fw, case)| {
            run(&frameworks, case, fw).err().map(|e| {
                format!(
                    "{} [{fw} {}] {}: {e}",
                    file.display(),
                    case.control,
                    case.name
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_control_has_a_case_for_each_status_it_can_reach() {
    let mut seen: BTreeMap<(String, String), BTreeSet<&'static str>> = BTreeMap::new();
    let mut excused: BTreeMap<(String, String), BTreeSet<&'static str>> = BTreeMap::new();
    for (_, file) in load_files() {
        for case in &file.cases {
            let outcome = match case.status {
                Some(s) => s.as_str(),
                None => "refused",
            };
            seen.entry((file.framework.clone(), case.control.clone()))
                .or_default()
                .insert(outcome);
        }
        for (control, statuses) in &file.unreachable {
            for (status, why) in statuses {
                assert!(
                    !why.trim().is_empty(),
                    "{control}: say why {status:?} is unreachable"
                );
                excused
                    .entry((file.framework.clone(), control.clone()))
                    .or_default()
                    .insert(status.as_str());
            }
        }
    }
    let mut missing = vec![];
    for fw in builtin().iter() {
        for c in &fw.controls {
            let mut needed = vec!["attested", "exception", "inconclusive"];
            let declares_na = c
                .empty
                .as_ref()
                .is_some_and(|e| e.status == EmptyStatus::NotApplicable);
            if declares_na || !c.applies_if.is_empty() {
                needed.push("not_applicable");
            }
            let key = (fw.framework.clone(), c.control_id.clone());
            let have = seen.get(&key).cloned().unwrap_or_default();
            let unreachable = excused.get(&key).cloned().unwrap_or_default();
            for status in &unreachable {
                assert!(
                    !have.contains(status),
                    "{key:?}: {status} is declared unreachable but has a case"
                );
            }
            for status in needed {
                if !have.contains(status) && !unreachable.contains(status) {
                    missing.push(format!(
                        "{} {}: no {status} case",
                        fw.framework, c.control_id
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
