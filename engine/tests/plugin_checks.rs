//! `plugin:` checks, with a stand-in host: the engine builds the input, judges
//! the output, records the plugin in the packet, and turns every failure into
//! `inconclusive` with the reason, never into an attestation or a crash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};
use vouch_engine::framework::{parse_framework_with, FrameworkSet, PluginCatalog};
use vouch_engine::{assemble_with, PluginHost, PluginInfo, Status};

const SHA: &str = "1111111111111111111111111111111111111111111111111111111111111111";

struct Catalog;
impl PluginCatalog for Catalog {
    fn sha256(&self, name: &str) -> Option<String> {
        (name == "fake").then(|| SHA.to_owned())
    }
    fn describe(&self) -> String {
        "the test catalog".into()
    }
}

/// Answers with a fixed output, and remembers the inputs it was given.
struct Host {
    answer: Result<Vec<u8>, String>,
    seen: std::sync::Mutex<Vec<Value>>,
}

impl PluginHost for Host {
    fn call(&self, _: &str, input: &[u8]) -> Result<Vec<u8>, String> {
        self.seen
            .lock()
            .unwrap()
            .push(serde_json::from_slice(input).unwrap());
        self.answer.clone()
    }
    fn info(&self, name: &str) -> Option<PluginInfo> {
        Some(PluginInfo {
            name: name.into(),
            version: "1.2.3".into(),
            sha256: SHA.into(),
            fuel: None,
        })
    }
}

fn framework(sha: &str) -> String {
    format!(
        "framework: t\nname: T\nversion: '1'\nstatement: S\nattests: T\nmonthly_price_eur: 1\nscope_boundary: T\ncontrols:\n  - control_id: P1\n    title: Plugin decided\n    reference: R\n    time_basis: as_of_generation\n    assertion: A\n    evidence_refs:\n      - services[*].backup_runs\n    scope: {{ each: services, id: service_id }}\n    checks:\n      - plugin: {{ name: fake, sha256: \"{sha}\", config: {{ days: 1 }}, path: backup_runs }}\n"
    )
}

fn run(answer: Result<Vec<u8>, String>) -> (vouch_engine::ControlResult, Vec<Value>) {
    let fw = parse_framework_with("t.yaml", &framework(SHA), &Catalog).unwrap();
    let host = Host {
        answer,
        seen: Default::default(),
    };
    let records = vouch_engine::RecordsDocument::from_json_slice(
        &std::fs::read(format!(
            "{}/../examples/records/full.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let packet = assemble_with(&fw, &records, ts("2026-06-22T10:00:00Z"), None, &host).unwrap();
    let seen = host.seen.lock().unwrap().clone();
    (packet.controls[0].clone(), seen)
}

#[test]
fn a_passing_plugin_attests_and_is_recorded() {
    let (c, seen) = run(Ok(br#"{"status":"pass"}"#.to_vec()));
    assert_eq!(c.status, Status::Attested);
    assert_eq!(
        c.plugins,
        vec![PluginInfo {
            name: "fake".into(),
            version: "1.2.3".into(),
            sha256: SHA.into(),
            fuel: None,
        }]
    );
    assert_eq!(seen.len(), 3, "one call per service");
    assert_eq!(seen[0]["abi_version"], 1);
    assert_eq!(seen[0]["config"], json!({"days": 1}));
    assert_eq!(seen[0]["resource_id"], "svc-orders");
    assert_eq!(seen[0]["control"]["control_id"], "P1");
    assert_eq!(seen[0]["period"]["end"], "2026-06-22T10:00:00Z");
    assert!(
        seen[0]["evidence"].is_array(),
        "the evidence is what `path` selects"
    );
}

#[test]
fn a_failing_plugin_names_the_resource() {
    let (c, _) = run(Ok(br#"{"status":"fail","findings":[{"field":"backup_runs","observed":3,"expected":"a backup on every day"}]}"#.to_vec()));
    assert_eq!(c.status, Status::Exception);
    assert_eq!(c.findings.len(), 3);
    assert_eq!(c.findings[0].resource, "svc-orders");
    assert_eq!(c.findings[0].expected, "a backup on every day");
}

#[test]
fn every_plugin_failure_is_inconclusive_with_its_reason() {
    let cases: Vec<(Result<Vec<u8>, String>, &str)> = vec![
        (Err("trapped: unreachable".into()), "trapped: unreachable"),
        (Err("timed out after 50 ms".into()), "timed out"),
        (Ok(b"\xff\xfe not utf-8".to_vec()), "malformed output"),
        (Ok(b"{\"status\":".to_vec()), "malformed output"),
        (Ok(br#"{"status":"maybe"}"#.to_vec()), "malformed output"),
        (
            Ok(br#"{"status":"pass","extra":1}"#.to_vec()),
            "unknown field `extra`",
        ),
        (
            Ok(
                br#"{"status":"fail","findings":[{"field":"x","observed":1.5,"expected":"y"}]}"#
                    .to_vec(),
            ),
            "floating-point",
        ),
        (
            Ok(b"{\"status\":\"inconclusive\",\"note\":\"bell \\u0007\"}".to_vec()),
            "control character",
        ),
        (
            Ok(br#"{"status":"inconclusive","note":"no runs to judge"}"#.to_vec()),
            "no runs to judge",
        ),
    ];
    for (answer, why) in cases {
        let label = format!("{answer:?}");
        let (c, _) = run(answer);
        assert_eq!(c.status, Status::Inconclusive, "{label}");
        assert!(
            c.notes.iter().any(|n| n.contains(why)),
            "{label}: {:?}",
            c.notes
        );
        assert_eq!(
            c.plugins.len(),
            1,
            "the plugin is recorded even when it failed"
        );
    }
}

#[test]
fn loading_checks_the_pinned_sha256() {
    let other = "2222222222222222222222222222222222222222222222222222222222222222";
    let err = parse_framework_with("t.yaml", &framework(other), &Catalog).unwrap_err();
    assert!(err[0].message.contains("the framework pins"), "{err:?}");
    let err = FrameworkSet::from_sources([("t.yaml", framework(SHA).as_str())]).unwrap_err();
    assert!(
        err.diagnostics[0]
            .message
            .contains("plugin `fake` is not available"),
        "{err}"
    );
    let err = parse_framework_with("t.yaml", &framework("ABC"), &Catalog).unwrap_err();
    assert!(
        err[0].message.contains("is not a lowercase hex SHA-256"),
        "{err:?}"
    );
}

/// A plugin's answers judged with the services split across threads (the
/// host called from each) come out as on one thread, the plugin recorded once.
#[test]
fn plugin_checks_split_across_threads_judge_as_on_one() {
    let fw = parse_framework_with("t.yaml", &framework(SHA), &Catalog).unwrap();
    let records = vouch_engine::RecordsDocument::from_json_slice(
        &std::fs::read(format!(
            "{}/../examples/records/full.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
    .to_value();
    let period = vouch_engine::Period::month_ending_at(ts("2026-06-22T10:00:00Z"));
    for (answer, status) in [
        (br#"{"status":"pass"}"#.to_vec(), Status::Attested),
        (
            br#"{"status":"fail","findings":[{"field":"backup_runs","observed":0,"expected":"a run"}]}"#.to_vec(),
            Status::Exception,
        ),
    ] {
        let host = Host {
            answer: Ok(answer),
            seen: Default::default(),
        };
        let judge = |parts| {
            vouch_engine::eval::evaluate_controls_in_parts(&fw.controls, &records, &period, &host, parts)
        };
        let one = judge(1);
        assert_eq!(one[0].status, status);
        assert_eq!(one[0].plugins.len(), 1);
        for parts in [2, 3] {
            assert_eq!(judge(parts), one, "in {parts} parts");
        }
        assert_eq!(host.seen.lock().unwrap().len(), 3 * 3, "one call per service and run");
    }
}
