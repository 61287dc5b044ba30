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
