//! What the log holds: one entry per complete packet and per key event,
//! digests and ids only (never a packet's content), and the inclusion proof
//! a packet is served with.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::merkle::{leaf_hash, verify_inclusion, Hash, ProofError};
use super::note::{Checkpoint, NoteError, NoteVerifier};
use crate::canonical::{is_canonical, to_canonical_bytes, CanonicalError};
use crate::time::Timestamp;

/// One log entry. Its leaf is its OLPC canonical JSON bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    /// A complete packet was stored.
    Packet {
        report_id: String,
        organization_id: String,
        framework: String,
        generated_at: Timestamp,
        key_id: String,
        /// The packet's canonical_sha256.
        canonical_sha256: String,
        /// When the log appended the entry; never earlier than the entry before.
        logged_at: Timestamp,
    },
    /// A signing key changed state.
    Key {
        event: KeyEvent,
        key_id: String,
        /// Base64 of the raw 32-byte Ed25519 public key.
        public_key: String,
        /// When the event took effect (`retired_at`, `revoked_at`, `valid_from`).
        at: Timestamp,
        /// A revoked key's packets logged before this instant stay valid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compromised_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        logged_at: Timestamp,
    },
}

/// The key events the log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyEvent {
    /// The first key, or a key registered while none was active.
    Registered,
    /// A key that replaced the active one (which is retired by the same change).
    Rotated,
    Retired,
    Revoked,
}

impl KeyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEvent::Registered => "registered",
            KeyEvent::Rotated => "rotated",
            KeyEvent::Retired => "retired",
            KeyEvent::Revoked => "revoked",
        }
    }
}

impl Entry {
    /// The leaf bytes: the canonical JSON of the entry.
    pub fn leaf(&self) -> Result<Vec<u8>, CanonicalError> {
        to_canonical_bytes(self)
    }

    pub fn logged_at(&self) -> Timestamp {
        match self {
            Entry::Packet { logged_at, .. } | Entry::Key { logged_at, .. } => *logged_at,
        }
    }

    /// A unique name for what the entry records, so nothing is logged twice:
    /// `packet:REPORT`, `key:KEY:EVENT`.
    pub fn subject(&self) -> String {
        match self {
            Entry::Packet { report_id, .. } => packet_subject(report_id),
            Entry::Key { key_id, event, .. } => key_subject(key_id, *event),
        }
    }
}

/// The subject of a packet's entry (what `store::log` looks it up by).
pub fn packet_subject(report_id: &str) -> String {
    format!("packet:{report_id}")
}

/// The subject of a key event's entry.
pub fn key_subject(key_id: &str, event: KeyEvent) -> String {
    format!("key:{key_id}:{}", event.as_str())
}

impl Entry {}

/// A packet's inclusion proof, as `GET …/{reportId}/inclusion` serves it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The entry, as its canonical JSON: the leaf is exactly these bytes.
    #[schemars(with = "serde_json::Value")]
    pub entry: Box<RawValue>,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Lowercase hex of SHA-256(0x00 ‖ entry bytes).
    pub leaf_hash: String,
    /// The audit path, leaf side first, lowercase hex.
    pub hashes: Vec<String>,
    /// The signed checkpoint of the tree of `tree_size` leaves.
    pub checkpoint: String,
}

/// Why a proof document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("malformed proof: {0}")]
    Malformed(String),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("the proof is for a tree of {proof} leaves, its checkpoint for {checkpoint}")]
    SizeMismatch { proof: u64, checkpoint: u64 },
    #[error("the entry does not hash to the leaf hash the proof names")]
    LeafMismatch,
    #[error("inclusion: {0}")]
    Proof(#[from] ProofError),
}

/// Lowercase hex of a hash.
pub fn hex(h: &Hash) -> String {
    crate::signing::hex(h)
}

/// A hash from lowercase (or uppercase) hex.
pub fn from_hex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Hashes from lowercase (or uppercase) hex; the first that is not one is
/// the error.
pub fn hashes_from_hex(list: &[String]) -> Result<Vec<Hash>, String> {
    list.iter()
        .map(|h| from_hex(h).ok_or_else(|| format!("`{h}` is not a hex SHA-256")))
        .collect()
}

impl InclusionProof {
    /// Checks the checkpoint's signature, the entry's hash and the path to
    /// the checkpoint's root; returns the entry and the checkpoint.
    pub fn verify(&self, log: &NoteVerifier) -> Result<(Entry, Checkpoint), LogError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, log)?;
        if checkpoint.size != self.tree_size {
            return Err(LogError::SizeMismatch {
                proof: self.tree_size,
                checkpoint: checkpoint.size,
            });
        }
        let bytes = self.entry.get().as_bytes();
        if !is_canonical(bytes) {
            return Err(LogError::Malformed(
                "the entry is not in canonical form".into(),
            ));
        }
        let entry: Entry = serde_json::from_slice(bytes)
            .map_err(|e| LogError::Malformed(format!("entry: {e}")))?;
        let leaf = leaf_hash(bytes);
        if from_hex(&self.leaf_hash) != Some(leaf) {
            return Err(LogError::LeafMismatch);
        }
        let path = hashes_from_hex(&self.hashes).map_err(LogError::Malformed)?;
        verify_inclusion(
            &leaf,
            self.leaf_index,
            self.tree_size,
            &path,
            &checkpoint.root,
        )?;
        Ok((entry, checkpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_canonical_and_refuse_unknown_members() {
        let at: Timestamp = "2026-06-22T10:00:00Z".parse().unwrap();
        let e = Entry::Key {
            event: KeyEvent::Revoked,
            key_id: "k1".into(),
            public_key: "AAAA".into(),
            at,
            compromised_at: Some(at),
            reason: None,
            logged_at: at,
        };
        let bytes = e.leaf().unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"at":"2026-06-22T10:00:00Z","compromised_at":"2026-06-22T10:00:00Z","event":"revoked","key_id":"k1","kind":"key","logged_at":"2026-06-22T10:00:00Z","public_key":"AAAA"}"#
        );
        assert_eq!(serde_json::from_slice::<Entry>(&bytes).unwrap(), e);
        assert_eq!(e.subject(), "key:k1:revoked");
        let extra = String::from_utf8(bytes)
            .unwrap()
            .replace("\"kind\"", "\"x\":1,\"kind\"");
        assert!(serde_json::from_str::<Entry>(&extra).is_err());
        assert_eq!(from_hex(&hex(&[0xab; 32])), Some([0xab; 32]));
        assert_eq!(from_hex("zz"), None);
    }
}
