//! Golden files: the canonical bytes and signature of a fixed packet, signed with
//! the RFC 8032 TEST 1 key. Any change to canonicalization, packet shape or
//! signing shows up here as a byte difference. Regenerate deliberately with
//! `UPDATE_GOLDEN=1 cargo test -p vouch-engine --test golden`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::*;
use vouch_engine::assemble;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check(name: &str, actual: &[u8]) {
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        expected == actual,
        "{name} differs from the golden file:\n  expected: {}\n  actual:   {}",
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}

#[test]
fn rfc8032_key_is_the_published_one() {
    let signer = rfc8032_signer();
    assert_eq!(
        signer.verifying_key().to_bytes(),
        hex32(RFC8032_TEST1_PUBLIC)
    );
}

#[test]
fn seed_packet_canonical_bytes_and_signature() {
    // A framework fixture of its own, so that editing frameworks/soc2.yaml does
    // not move these bytes.
    let text = std::fs::read_to_string(golden("soc2-fixture.yaml")).unwrap();
    let fw = vouch_engine::framework::parse_framework("soc2.yaml", &text).unwrap();
    let packet = assemble(&fw, &seed_records(), ts("2026-06-22T10:00:00Z"), None).unwrap();
    let signed = rfc8032_signer().sign(packet).unwrap();
    check("soc2-seed-only.canonical.json", &signed.canonical);
    check(
        "soc2-seed-only.signature.json",
        &serde_json::to_vec_pretty(&signed.signature).unwrap(),
    );
    check("soc2-seed-only.body.json", &signed.body(None));
}

#[test]
fn fixed_packet_matches_the_seed_shape() {
    // The packet of seed 000, one control: these canonical bytes are fixed by
    // hand, so they do not depend on any framework file.
    let text = r#"{"controls":[{"assertion":"All database connections require TLS and authenticated credentials.","control_id":"CC6.1","evidence_refs":["services[*].tls_enabled","services[*].storage_encrypted"],"reference":"TSC 2017 CC6.1","status":"attested","title":"Logical and Physical Access Controls"}],"framework":"soc2","generated_at":"2026-06-22T10:00:00Z","organization":{"billing_email":"billing@acme.com","id":"o1000000-0000-0000-0000-000000000001","name":"Acme Engineering"},"period_end":"2026-06-22T10:00:00Z","period_start":"2026-05-22T10:00:00Z","schema_version":"1.0","scope_boundary":"All managed database services operated by the platform on behalf of the organization.","summary":{"all_services_eu_residency":true,"audit_log":{"entry_count":14823,"oldest_entry_at":"2026-03-01T08:00:00Z","retention_policy":"indefinite"},"service_count":3}}"#;
    let packet: vouch_engine::Packet = serde_json::from_str(text).unwrap();
    let signed = rfc8032_signer().sign(packet).unwrap();
    assert_eq!(
        signed.canonical,
        text.as_bytes(),
        "canonical form of the seed packet"
    );
    check(
        "seed000-packet.signature.json",
        &serde_json::to_vec_pretty(&signed.signature).unwrap(),
    );
}
