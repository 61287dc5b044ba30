//! Verification: a genuine packet verifies; every single-field tamper, a
//! non-canonical packet, an unknown, retired or revoked key each fail with
//! their own reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use vouch_engine::canonical::to_canonical_bytes;
use vouch_engine::keys::{KeysDocument, PublishedKey};
use vouch_engine::signing::{body_from_parts, sha256_hex, Signature};
use vouch_engine::verify::{verify_body, VerifyError};
use vouch_engine::{assemble, Timestamp};

struct Fixture {
    canonical: Vec<u8>,
    signature: Signature,
    keys: KeysDocument,
}

fn fixture() -> Fixture {
    let fw = builtin();
    let signer = rfc8032_signer();
    let packet = assemble(
        fw.get("soc2").unwrap(),
        &seed_records(),
        ts("2026-06-22T10:00:00Z"),
        None,
    )
    .unwrap();
    let signed = signer.sign(packet).unwrap();
    Fixture {
        canonical: signed.canonical,
        signature: signed.signature,
        keys: keys_for(&signer),
    }
}

fn body(canonical: &[u8], sig: &Signature) -> Vec<u8> {
    body_from_parts(Some("r-1"), canonical, sig)
}

#[test]
fn genuine_packet_verifies() {
    let f = fixture();
    let ok = verify_body(&body(&f.canonical, &f.signature), &f.keys).unwrap();
    assert_eq!(ok.key_id, "key-2026-06-rfc8032");
    assert_eq!(ok.report_id.as_deref(), Some("r-1"));
}

/// Every leaf of the packet, changed one at a time.
fn leaves(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| leaves(x, format!("{path}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| leaves(x, format!("{path}/{i}"), out)),
        _ => out.push(path),
    }
}

fn tampered(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) => Value::from(n.as_u64().unwrap_or(0) + 1),
        Value::String(s) if s == "attested" => Value::String("exception".into()),
        Value::String(s) => Value::String(format!("{s}x")),
        _ => Value::String("x".into()),
    }
}

#[test]
fn changing_any_single_packet_field_fails() {
    let f = fixture();
    let original: Value = serde_json::from_slice(&f.canonical).unwrap();
    let mut paths = vec![];
    leaves(&original, String::new(), &mut paths);
    assert!(
        paths.len() > 20,
        "the fixture packet has {} leaves",
        paths.len()
    );
    for p in paths {
        let mut v = original.clone();
        let leaf = v.pointer_mut(&p).unwrap();
        *leaf = tampered(leaf);
        let bytes = to_canonical_bytes(&v).unwrap();
        // As received: the digest no longer matches.
        let err = verify_body(&body(&bytes, &f.signature), &f.keys).unwrap_err();
        assert!(
            matches!(err, VerifyError::DigestMismatch { .. }),
            "{p}: {err}"
        );
        // A forger who also fixes the digest still lacks the signature.
        let mut sig = f.signature.clone();
        sig.canonical_sha256 = sha256_hex(&bytes);
        let err = verify_body(&body(&bytes, &sig), &f.keys).unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature(_)), "{p}: {err}");
    }
}

#[test]
fn tampered_signature_fields_fail_with_their_reason() {
    let f = fixture();
    let mut s = f.signature.clone();
    s.key_id = "key-2026-06-unpublished".into();
    assert_eq!(
        verify_body(&body(&f.canonical, &s), &f.keys).unwrap_err(),
        VerifyError::UnknownKey("key-2026-06-unpublished".into())
    );
    // One character of the signature changed (to `A`, or to `B` where it
    // was `A`: replacing the first letter with `A` and then the first `A`
    // with `B` was no change at all when the first letter was a `B`).
    let mut s = f.signature.clone();
    let first = s.value.chars().next().unwrap();
    let other = if first == 'A' { "B" } else { "A" };
    s.value = format!("{other}{}", &s.value[first.len_utf8()..]);
    assert!(matches!(
        verify_body(&body(&f.canonical, &s), &f.keys),
        Err(VerifyError::BadSignature(_))
    ));
    let mut s = f.signature.clone();
    s.value = "not base64!".into();
    assert!(matches!(
        verify_body(&body(&f.canonical, &s), &f.keys),
        Err(VerifyError::BadSignature(_))
    ));
    let mut s = f.signature.clone();
    s.canonical_sha256 = sha256_hex(b"something else");
    assert!(matches!(
        verify_body(&body(&f.canonical, &s), &f.keys),
        Err(VerifyError::DigestMismatch { .. })
    ));
    let mut s = f.signature.clone();
    s.algorithm = "RS256".into();
    assert!(matches!(
        verify_body(&body(&f.canonical, &s), &f.keys),
        Err(VerifyError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn non_canonical_packet_is_refused() {
    let f = fixture();
    let v: Value = serde_json::from_slice(&f.canonical).unwrap();
    let pretty = serde_json::to_vec_pretty(&v).unwrap();
    let mut s = f.signature.clone();
    s.canonical_sha256 = sha256_hex(&pretty);
    assert_eq!(
        verify_body(&body(&pretty, &s), &f.keys).unwrap_err(),
        VerifyError::NonCanonical
    );
}

#[test]
fn packet_signed_by_an_unpublished_key_is_unknown() {
    let f = fixture();
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let keys = KeysDocument::new(vec![PublishedKey::new(
        &other.verifying_key(),
        "key-2026-06-other",
        None,
        None,
        None,
    )]);
    assert!(matches!(
        verify_body(&body(&f.canonical, &f.signature), &keys),
        Err(VerifyError::UnknownKey(_))
    ));
}

#[test]
fn same_key_id_with_another_public_key_is_a_bad_signature() {
    let f = fixture();
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let keys = KeysDocument::new(vec![PublishedKey::new(
        &other.verifying_key(),
        "key-2026-06-rfc8032",
        None,
        None,
        None,
    )]);
    assert!(matches!(
        verify_body(&body(&f.canonical, &f.signature), &keys),
        Err(VerifyError::BadSignature(_))
    ));
}

fn with_key_times(
    valid_from: Option<Timestamp>,
    retired: Option<Timestamp>,
    revoked: Option<Timestamp>,
) -> KeysDocument {
    let signer = rfc8032_signer();
    KeysDocument::new(vec![PublishedKey::new(
        &signer.verifying_key(),
        signer.key_id(),
        valid_from,
        retired,
        revoked,
    )])
}

#[test]
fn retired_key_still_verifies_older_packets() {
    let f = fixture();
    let keys = with_key_times(
        Some(ts("2026-01-01T00:00:00Z")),
        Some(ts("2026-07-01T00:00:00Z")),
        None,
    );
    assert!(!keys.keys[0].active);
    verify_body(&body(&f.canonical, &f.signature), &keys).unwrap();
}

#[test]
fn retired_key_does_not_verify_packets_generated_after_retirement() {
    let f = fixture();
    let keys = with_key_times(None, Some(ts("2026-06-01T00:00:00Z")), None);
    let err = verify_body(&body(&f.canonical, &f.signature), &keys).unwrap_err();
    assert!(matches!(err, VerifyError::KeyNotValidAt { .. }), "{err}");
    assert!(
        err.to_string().contains("retired at 2026-06-01T00:00:00Z"),
        "{err}"
    );
}

#[test]
fn key_not_yet_valid_at_generated_at_fails() {
    let f = fixture();
    let keys = with_key_times(Some(ts("2026-07-01T00:00:00Z")), None, None);
    assert!(matches!(
        verify_body(&body(&f.canonical, &f.signature), &keys),
        Err(VerifyError::KeyNotValidAt { .. })
    ));
}

#[test]
fn revoked_key_verifies_nothing() {
    let f = fixture();
    let keys = with_key_times(None, None, Some(ts("2026-09-01T00:00:00Z")));
    assert!(matches!(
        verify_body(&body(&f.canonical, &f.signature), &keys),
        Err(VerifyError::KeyRevoked { .. })
    ));
}

#[test]
fn malformed_bodies_are_malformed_not_panics() {
    let f = fixture();
    for bad in [
        &b""[..],
        b"{",
        b"[]",
        b"{\"packet\":{}}",
        b"{\"packet\":{},\"signature\":{}}",
        b"{\"packet\":1,\"signature\":{\"algorithm\":\"Ed25519\",\"key_id\":\"k\",\"value\":\"\",\"canonical_sha256\":\"\"}}",
    ] {
        let err = verify_body(bad, &f.keys).unwrap_err();
        assert!(matches!(err, VerifyError::Malformed(_)), "{}: {err}", String::from_utf8_lossy(bad));
    }
    let mut truncated = body(&f.canonical, &f.signature);
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        verify_body(&truncated, &f.keys),
        Err(VerifyError::Malformed(_))
    ));
}
