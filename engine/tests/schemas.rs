//! The committed JSON Schemas are generated from the Rust types; these tests fail
//! when a type changed and the committed file did not. Regenerate with
//! `UPDATE_SCHEMAS=1 cargo test -p vouch-engine --test schemas`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn check(relative: &str, schema: serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let generated = format!("{}\n", serde_json::to_string_pretty(&schema).unwrap());
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{relative} is stale: regenerate it with `UPDATE_SCHEMAS=1 cargo test -p vouch-engine --test schemas` and commit it"
    );
}

#[test]
fn records_schema_is_current() {
    check(
        "engine/schema/records.schema.json",
        vouch_engine::records::json_schema(),
    );
}

#[test]
fn packet_schema_is_current() {
    check(
        "engine/schema/packet.schema.json",
        vouch_engine::packet::json_schema(),
    );
}

#[test]
fn framework_schema_is_current() {
    check(
        "frameworks/framework.schema.json",
        vouch_engine::framework::json_schema(),
    );
}

#[test]
fn example_records_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/records");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&path).unwrap();
            vouch_engine::RecordsDocument::from_json_slice(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n > 0);
}

/// Editors show a check's description and examples on hover and complete
/// from them: every check has both, on its operator key, and every argument
/// of every check has a description.
#[test]
fn every_check_and_argument_is_described_for_editors() {
    let schema = vouch_engine::framework::json_schema();
    let checks = schema["$defs"]["Check"]["oneOf"].as_array().unwrap();
    assert_eq!(checks.len(), vouch_engine::framework::OPERATORS.len());
    for check in checks {
        let (op, key) = check["properties"]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        for node in [check, key] {
            assert!(
                node["description"].as_str().is_some_and(|d| d.len() > 10),
                "{op}: no description"
            );
            let examples = node["examples"]
                .as_array()
                .unwrap_or_else(|| panic!("{op}: no examples"));
            for e in examples {
                assert!(e.get(op.as_str()).is_some(), "{op}: {e}");
                // The example is a check the loader reads.
                serde_json::from_value::<vouch_engine::framework::Check>(e.clone())
                    .unwrap_or_else(|err| panic!("{op}: {e}: {err}"));
            }
        }
    }
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if !name.ends_with("Args") {
            continue;
        }
        for (field, prop) in def["properties"].as_object().unwrap() {
            assert!(
                prop["description"].is_string(),
                "{name}.{field}: no description"
            );
        }
    }
}
