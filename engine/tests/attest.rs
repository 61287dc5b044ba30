//! The in-toto Statement, its DSSE envelope and the Sigstore bundle: a
//! genuine one verifies, its subject is the packet's digest, and every
//! tampered part fails with its own reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use vouch_engine::assemble;
use vouch_engine::attest::{
    bundle, envelope, statement, verify_bundle, verify_envelope, AttestError, Envelope, Predicate,
};
use vouch_engine::verify::VerifyError;

struct Fixture {
    signed: vouch_engine::signing::SignedPacket,
    canonical_sha256: String,
    envelope: Envelope,
    keys: vouch_engine::keys::KeysDocument,
    signer: vouch_engine::signing::PacketSigner,
}

fn fixture() -> Fixture {
    let signer = rfc8032_signer();
    let packet = assemble(
        builtin().get("soc2").unwrap(),
        &seed_records(),
        ts("2026-06-22T10:00:00Z"),
        None,
    )
    .unwrap();
    let signed = signer.sign(packet).unwrap();
    let st = statement(&signed, Predicate::Vouch).unwrap();
    Fixture {
        envelope: envelope(&signer, &st),
        canonical_sha256: signed.signature.canonical_sha256.clone(),
        signed,
        keys: keys_for(&signer),
        signer,
    }
}

fn payload(e: &Envelope) -> Value {
    serde_json::from_slice(&B64.decode(&e.payload).unwrap()).unwrap()
}

#[test]
fn the_statement_names_the_packet_and_restates_its_verdicts() {
    let f = fixture();
    let ok = verify_envelope(&f.envelope, &f.keys).unwrap();
    assert_eq!(ok.packet_sha256, f.canonical_sha256);
    assert_eq!(ok.framework, "soc2");
    let st = payload(&f.envelope);
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        json!(f.canonical_sha256)
    );
    assert_eq!(st["subject"][0]["name"], "packet.json");
    let packet: Value = serde_json::from_slice(&f.signed.canonical).unwrap();
    let statuses: Vec<&Value> = packet["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["status"])
        .collect();
    let restated: Vec<&Value> = st["predicate"]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["status"])
        .collect();
    assert_eq!(statuses, restated);
    assert_eq!(st["predicate"]["key_id"], json!(f.signer.key_id()));
    assert_eq!(
        st["predicate"]["records_sha256"],
        packet["inputs"]["records_sha256"]
    );
    // The same packet and key give the same envelope (Ed25519 is deterministic).
    let again = statement(&f.signed, Predicate::Vouch).unwrap();
    assert_eq!(envelope(&f.signer, &again), f.envelope);
    // The bundle carries the envelope unchanged and verifies.
    let b = serde_json::to_vec(&bundle(&f.envelope)).unwrap();
    assert_eq!(verify_bundle(&b, &f.keys).unwrap(), ok);
}

#[test]
fn every_tampered_part_fails_with_its_own_reason() {
    let f = fixture();
    let check = |e: Envelope, expected: &dyn Fn(&AttestError) -> bool| {
        let err = verify_envelope(&e, &f.keys).unwrap_err();
        assert!(expected(&err), "{err:?}");
    };
    let mut e = f.envelope.clone();
    e.payload_type = "application/json".into();
    check(e, &|x| matches!(x, AttestError::PayloadType(_)));

    // One byte of the Statement changed: the signature no longer holds.
    let mut bytes = B64.decode(&f.envelope.payload).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    let mut e = f.envelope.clone();
    e.payload = B64.encode(&bytes);
    check(e, &|x| matches!(x, AttestError::BadSignature(_)));

    let mut e = f.envelope.clone();
    e.payload = "not base64!".into();
    check(e, &|x| matches!(x, AttestError::Payload(_)));

    let mut e = f.envelope.clone();
    let mut sig = B64.decode(&e.signatures[0].sig).unwrap();
    sig[0] ^= 1;
    e.signatures[0].sig = B64.encode(sig);
    check(e, &|x| matches!(x, AttestError::BadSignature(_)));

    let mut e = f.envelope.clone();
    e.signatures[0].sig = B64.encode([1u8; 10]);
    check(e, &|x| matches!(x, AttestError::SignatureEncoding));

    let mut e = f.envelope.clone();
    e.signatures[0].keyid = "key-unknown".into();
    check(e, &|x| {
        matches!(x, AttestError::Key(VerifyError::UnknownKey(_)))
    });

    let mut e = f.envelope.clone();
    e.signatures.push(e.signatures[0].clone());
    check(e, &|x| matches!(x, AttestError::SignatureCount(2)));

    let mut e = f.envelope.clone();
    e.signatures.clear();
    check(e, &|x| matches!(x, AttestError::SignatureCount(0)));

    // Genuinely signed, but trestle's predicate: vouch says so.
    let trestle = statement(&f.signed, Predicate::Trestle).unwrap();
    check(envelope(&f.signer, &trestle), &|x| {
        matches!(x, AttestError::PredicateType(_))
    });
    // Genuinely signed, but not a Statement.
    check(envelope(&f.signer, br#"{"_type":"x"}"#), &|x| {
        matches!(x, AttestError::Statement(_))
    });
    let mut st = payload(&f.envelope);
    st["subject"] = json!([]);
    let st = serde_json::to_vec(&st).unwrap();
    check(envelope(&f.signer, &st), &|x| {
        matches!(x, AttestError::Subject(_))
    });

    // The bundle's own parts.
    let mut b = bundle(&f.envelope);
    b["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.1");
    let err = verify_bundle(&serde_json::to_vec(&b).unwrap(), &f.keys).unwrap_err();
    assert!(matches!(err, AttestError::BundleMediaType(_)), "{err:?}");
    let mut b = bundle(&f.envelope);
    b["verificationMaterial"]["publicKey"]["hint"] = json!("key-other");
    let err = verify_bundle(&serde_json::to_vec(&b).unwrap(), &f.keys).unwrap_err();
    assert!(matches!(err, AttestError::BundleHint { .. }), "{err:?}");
    let err = verify_bundle(b"[]", &f.keys).unwrap_err();
    assert!(matches!(err, AttestError::Malformed(_)), "{err:?}");
}
