//! Property test: for many generated records documents (hostile strings
//! included), the canonical packet bytes are olpc-cjson's fixed point and equal
//! Python's `json.dumps(p, sort_keys=True, separators=(",",":"), ensure_ascii=False)`
//! and RFC 8785 (JCS) as Trail of Bits' `rfc8785` package writes it: an
//! independent implementation, so the packet bytes are JCS too, and tools
//! that canonicalize with RFC 8785 (`trestle verify`) digest the same bytes.
//!
//! Python runs once over all generated packets. Without python3 (or its
//! `rfc8785`) the comparison is skipped with a message, except under CI
//! (`CI` set), where it must run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use vouch_engine::canonical::{is_canonical, olpc_reference_bytes, to_canonical_bytes};
use vouch_engine::{assemble, RecordsDocument};

fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "\\PC{0,12}",
        1 => Just("\"".to_owned()),
        1 => Just("\\".to_owned()),
        1 => Just("\",\"signature\"".to_owned()),
        1 => Just("e\u{301}".to_owned()),       // NFD: normalized to NFC on entry
        1 => Just("\u{1F600}\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}".to_owned()),
        1 => Just("</script><b>".to_owned()),
        1 => Just("\u{2028}\u{2029}".to_owned()),
        1 => Just("#panic() *x* $ @label ]".to_owned()),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|v| v.concat())
}

fn timestamp() -> impl Strategy<Value = Option<String>> {
    prop::option::of((1_700_000_000i64..1_790_000_000).prop_map(|s| {
        chrono::DateTime::from_timestamp(s, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }))
}

fn service(i: usize) -> impl Strategy<Value = Value> {
    (
        text(),
        any::<[bool; 6]>(),
        timestamp(),
        prop::option::of(0u32..4000),
        prop::collection::vec("[a-z]{2}-[a-z]{3}[0-9]", 1..3),
    )
        .prop_map(move |(name, b, last, retention, zones)| {
            json!({
                "service_id": format!("svc-{i}"),
                "name": name,
                "database_type": "postgresql",
                "version": "17",
                "status": "running",
                "zones": zones,
                "region": "europe",
                "eu_residency": b[0],
                "storage_region": "de-fra1",
                "storage_encrypted": b[1],
                "backup_encryption_enabled": b[2],
                "tls_enabled": b[3],
                "backups": {
                    "last_completed_at": last,
                    "last_backup_type": "full",
                    // One fact in two places (the seed's): they agree, or the records are refused.
                    "encryption_enabled": b[2],
                    "encryption_algorithm": if b[2] { Some("AES-256-GCM") } else { None },
                    "schedule_enabled": b[5],
                    "schedule_cron": "0 2 * * *",
                    "retention_days": retention
                }
            })
        })
}

fn records() -> impl Strategy<Value = Value> {
    (0usize..5)
        .prop_flat_map(|n| {
            let services: Vec<_> = (0..n).map(service).collect();
            (text(), text(), services, timestamp(), any::<u32>())
        })
        .prop_map(|(org, policy, services, oldest, count)| {
            json!({
                "organization": {"id": "o-1", "name": org, "billing_email": "billing@example.com"},
                "services": services,
                // An oldest entry exactly when there are entries, or the records are refused.
                "audit_log": {"retention_policy": policy, "oldest_entry_at": oldest, "entry_count": if oldest.is_some() { count.max(1) } else { 0 }}
            })
        })
}

#[test]
fn canonical_bytes_match_olpc_and_python() {
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let strategy = records();
    let frameworks = builtin();
    let mut lines: Vec<u8> = Vec::new();
    let mut packets = 0;
    for _ in 0..200 {
        let value = strategy.new_tree(&mut runner).unwrap().current();
        let doc = RecordsDocument::from_value(value).expect("generated records are valid");
        for fw in frameworks.iter() {
            let packet = assemble(fw, &doc, ts("2026-06-22T10:00:00Z"), None).unwrap();
            let bytes = to_canonical_bytes(&packet).unwrap();
            // vouch's writer writes olpc-cjson's bytes.
            assert_eq!(bytes, olpc_reference_bytes(&packet).unwrap());
            // olpc-cjson's fixed point: parsing and re-canonicalizing changes nothing.
            assert!(is_canonical(&bytes), "{}", String::from_utf8_lossy(&bytes));
            assert!(!bytes.contains(&b'\n'), "canonical packets are one line");
            lines.extend_from_slice(&bytes);
            lines.push(b'\n');
            packets += 1;
        }
    }
    assert!(packets >= 200);
    compare_with_python(&lines, packets);
}

const PYTHON: &str = r#"
import json, sys
import rfc8785
bad = 0
n = 0
for line in sys.stdin.buffer.read().split(b"\n"):
    if not line:
        continue
    n += 1
    value = json.loads(line)
    again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    jcs = rfc8785.dumps(value)
    for name, other in (("json.dumps", again), ("rfc8785", jcs)):
        if other != line:
            bad += 1
            if bad <= 3:
                print("MISMATCH", name, line[:300], other[:300], file=sys.stderr)
print(n, bad)
"#;

fn compare_with_python(lines: &[u8], expected: usize) {
    let has_jcs = Command::new("python3")
        .args(["-c", "import rfc8785"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_jcs && std::env::var_os("CI").is_none() {
        eprintln!("SKIPPED: python3 with rfc8785 is not available; .ci/run provides it");
        return;
    }
    let child = Command::new("python3")
        .args(["-c", PYTHON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: python3 is not available ({e}); .ci/run provides it");
            return;
        }
        Err(e) => panic!("python3 is required under CI: {e}"),
    };
    child.stdin.take().unwrap().write_all(lines).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        format!("{expected} 0"),
        "packets compared, mismatches; {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
