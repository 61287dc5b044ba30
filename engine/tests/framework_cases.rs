//! Test cases as data: `frameworks/cases/*.yaml` hold, for every control of the
//! built-in frameworks, records in (an example document with changes) and the
//! status and findings out. Adding a case needs no Rust: drop it in a file.
//! `vouch frameworks test` runs the same files with the same code
//! (`vouch_engine::cases`); `tests/authoring.rs` checks that both count alike.
//!
//! A case may instead expect the records to be `refused` as contradictory.
//!
//! A second test checks coverage: every control has at least one case of each
//! status it can reach (attested, exception, inconclusive; not_applicable too
//! when it has `applies_if` or declares `empty: { status: not_applicable }`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use vouch_engine::cases::{self, CaseFile, Examples};
use vouch_engine::NoPluginHost;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The example records as they are on disk (the binary embeds the same files).
struct OnDisk;

impl Examples for OnDisk {
    fn records(&self, _file: &str, name: &str) -> Result<String, String> {
        let path = repo().join("examples/records").join(format!("{name}.json"));
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Every cases file under `frameworks/cases`, read from disk.
fn load_files() -> Vec<CaseFile> {
    let mut paths = vec![];
    let mut stack = vec![repo().join("frameworks/cases")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let name = path.strip_prefix(repo()).unwrap().display().to_string();
            cases::parse_case_file(&name, &text).unwrap_or_else(|d| panic!("{d}"))
        })
        .collect()
}

#[test]
fn every_case_holds() {
    let files = load_files();
    let report = cases::run(&builtin(), &files, &OnDisk, &NoPluginHost);
    assert!(
        report.results.len() > 100,
        "only {} cases found",
        report.results.len()
    );
    let failures: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| {
            r.outcome.as_ref().err().map(|e| {
                format!(
                    "{}:{} [{} {}] {}: {e}",
                    r.file, r.line, r.framework, r.control, r.name
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        report.results.len(),
        failures.join("\n")
    );
}

#[test]
fn every_control_has_a_case_for_each_status_it_can_reach() {
    let gaps = cases::coverage(&builtin(), &load_files());
    let lines: Vec<String> = gaps.iter().map(|g| g.to_string()).collect();
    assert!(gaps.is_empty(), "{}", lines.join("\n"));
}

/// The binary runs the cases and examples it embeds: they are these files.
#[test]
fn the_binary_embeds_every_cases_file_and_example() {
    let on_disk: Vec<String> = load_files().into_iter().map(|f| f.file).collect();
    let embedded: Vec<&str> = cases::BUILTIN_CASES.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        on_disk, embedded,
        "list each cases file in cases::BUILTIN_CASES"
    );
    for (name, text) in cases::BUILTIN_EXAMPLES {
        assert_eq!(OnDisk.records("", name).unwrap(), *text);
    }
    let mut examples: Vec<String> = std::fs::read_dir(repo().join("examples/records"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    examples.sort();
    let embedded: Vec<&str> = cases::BUILTIN_EXAMPLES.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        examples, embedded,
        "list each example in cases::BUILTIN_EXAMPLES"
    );
}

/// A failing case says what was expected and what came out, at its line.
#[test]
fn a_failing_case_names_expected_and_actual() {
    let text = "framework: soc2\ncases:\n  - control: CC6.1\n    name: wrong on purpose\n    records: full\n    status: exception\n";
    let file = cases::parse_case_file("x.yaml", text).unwrap();
    let report = cases::run(&builtin(), &[file], &OnDisk, &NoPluginHost);
    let r = &report.results[0];
    assert_eq!(r.line, 3);
    let e = r.outcome.as_ref().unwrap_err().to_string();
    assert!(
        e.starts_with("expected: exception\nactual:   attested, no findings"),
        "{e}"
    );
    // The other controls of soc2 have no case in this file.
    assert!(report
        .gaps
        .iter()
        .any(|g| g.to_string() == "soc2 CC6.1: no inconclusive case"));
}
