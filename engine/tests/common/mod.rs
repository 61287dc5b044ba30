//! Shared fixtures for the engine's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use vouch_engine::keys::{KeysDocument, PublishedKey};
use vouch_engine::signing::PacketSigner;
use vouch_engine::{FrameworkSet, RecordsDocument, Timestamp};

/// RFC 8032 section 7.1, TEST 1 secret key.
pub const RFC8032_TEST1_SECRET: &str =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
pub const RFC8032_TEST1_PUBLIC: &str =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

pub fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

pub fn rfc8032_signer() -> PacketSigner {
    PacketSigner::new(
        SigningKey::from_bytes(&hex32(RFC8032_TEST1_SECRET)),
        "key-2026-06-rfc8032".into(),
    )
}

pub fn keys_for(signer: &PacketSigner) -> KeysDocument {
    KeysDocument::new(vec![PublishedKey::new(
        &signer.verifying_key(),
        signer.key_id(),
        None,
        None,
        None,
    )])
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn seed_records() -> RecordsDocument {
    RecordsDocument::from_json_slice(include_bytes!("../../../examples/records/seed-only.json"))
        .unwrap()
}

pub fn builtin() -> FrameworkSet {
    FrameworkSet::builtin().unwrap()
}
