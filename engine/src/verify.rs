//! Verification of a packet body against a keys document, as an auditor does it.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature as EdSignature, VerifyingKey};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::canonical::is_canonical;
use crate::keys::{KeysDocument, PublishedKey};
use crate::signing::{sha256_hex, Signature, ALGORITHM};
use crate::time::Timestamp;
use crate::tlog::{Entry, InclusionProof, NoteVerifier};

/// Why a packet does not verify. Each reason is distinct so that scripts and
/// people can tell a tampered packet from an unknown or retired key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("malformed input: {0}")]
    Malformed(String),
    #[error("the packet is not in canonical form: its bytes are not what was signed")]
    NonCanonical,
    #[error("digest mismatch: the packet's SHA-256 is {actual}, the signature says {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("unknown key_id `{0}`: the keys document does not publish it")]
    UnknownKey(String),
    #[error("unsupported algorithm `{0}`: schema 1.0 packets are signed with Ed25519")]
    UnsupportedAlgorithm(String),
    #[error("key `{key_id}` was revoked at {revoked_at}: {}", match compromised_at {
        Some(c) => format!("it was compromised at {c}; only its packets the transparency log holds from before then stay valid (verify with --log and the packet's inclusion proof)"),
        None => "none of its packets can be trusted".to_owned(),
    })]
    KeyRevoked {
        key_id: String,
        revoked_at: Timestamp,
        compromised_at: Option<Timestamp>,
    },
    #[error("key `{key_id}` was compromised at {compromised_at} and this packet was logged at {logged_at}, not before: it cannot be trusted")]
    LoggedAfterCompromise {
        key_id: String,
        compromised_at: Timestamp,
        logged_at: Timestamp,
    },
    #[error("the keys document publishes no transparency log key (`log`)")]
    NoLogKey,
    #[error("transparency log: {0}")]
    Log(String),
    #[error("the log entry is not this packet's: {0}")]
    EntryMismatch(String),
    #[error("key `{key_id}` was not valid at generated_at {generated_at}: {why}")]
    KeyNotValidAt {
        key_id: String,
        generated_at: Timestamp,
        why: String,
    },
    #[error("key `{0}` in the keys document is not a 32-byte Ed25519 public key")]
    BadPublicKey(String),
    #[error("bad signature: the packet was not signed by key `{0}`")]
    BadSignature(String),
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub framework: String,
    pub generated_at: Timestamp,
    pub canonical_sha256: String,
    pub report_id: Option<String>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    packet: &'a RawValue,
    signature: Signature,
    #[serde(default)]
    report_id: Option<String>,
}

#[derive(Deserialize)]
struct PacketHead {
    framework: String,
    generated_at: Timestamp,
}

fn parse_body(body: &[u8]) -> Result<Body<'_>, VerifyError> {
    serde_json::from_slice(body)
        .map_err(|e| VerifyError::Malformed(format!("not a packet body: {e}")))
}

/// The exact packet bytes and the signature of a body
/// `{"packet":...,"signature":...}`, nothing checked.
pub fn body_parts(body: &[u8]) -> Result<(&[u8], Signature), VerifyError> {
    let body = parse_body(body)?;
    Ok((body.packet.get().as_bytes(), body.signature))
}

/// Verifies a body `{"packet":...,"signature":...}` (the CLI's output or the
/// server's answer, with or without `report_id`) against `keys`.
pub fn verify_body(body: &[u8], keys: &KeysDocument) -> Result<Verified, VerifyError> {
    let (verified, key) = check_body(body, keys)?;
    refuse_revoked(key, &verified.key_id)?;
    Ok(verified)
}

/// What [`verify_body_in_log`] established beyond the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub verified: Verified,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub origin: String,
    pub logged_at: Timestamp,
    /// The key was revoked with a compromise time after `logged_at`: the
    /// packet stands because the log held it before the compromise.
    pub before_compromise: Option<Timestamp>,
}

/// Verifies a body as [`verify_body`] does and that the transparency log
/// holds it: `proof` verifies against a checkpoint signed by the log key of
/// `keys`, and its entry names this packet (digest, key, framework, time and,
/// when the body has one, report id). A revoked key whose revocation names a
/// compromise time verifies the packets logged before that time.
pub fn verify_body_in_log(
    body: &[u8],
    keys: &KeysDocument,
    proof: &InclusionProof,
) -> Result<Logged, VerifyError> {
    let (verified, key) = check_body(body, keys)?;
    let log = keys.log.as_ref().ok_or(VerifyError::NoLogKey)?;
    let verifier = NoteVerifier::parse(&log.vkey).map_err(|e| VerifyError::Log(e.to_string()))?;
    if verifier.name != log.origin {
        return Err(VerifyError::Log(format!(
            "the log key is named `{}`, the log's origin is `{}`",
            verifier.name, log.origin
        )));
    }
    let (entry, checkpoint) = proof
        .verify(&verifier)
        .map_err(|e| VerifyError::Log(e.to_string()))?;
    let Entry::Packet {
        report_id,
        framework,
        generated_at,
        key_id,
        canonical_sha256,
        logged_at,
        ..
    } = entry
    else {
        return Err(VerifyError::EntryMismatch(
            "it records a key event, not a packet".into(),
        ));
    };
    let mismatch = |what: &str, want: &str, got: &str| {
        VerifyError::EntryMismatch(format!("its {what} is `{got}`, the packet's is `{want}`"))
    };
    if canonical_sha256 != verified.canonical_sha256 {
        return Err(mismatch(
            "canonical_sha256",
            &verified.canonical_sha256,
            &canonical_sha256,
        ));
    }
    if key_id != verified.key_id {
        return Err(mismatch("key_id", &verified.key_id, &key_id));
    }
    if framework != verified.framework {
        return Err(mismatch("framework", &verified.framework, &framework));
    }
    if generated_at != verified.generated_at {
        return Err(mismatch(
            "generated_at",
            &verified.generated_at.to_string(),
            &generated_at.to_string(),
        ));
    }
    if let Some(r) = &verified.report_id {
        if *r != report_id {
            return Err(mismatch("report_id", r, &report_id));
        }
    }
    let before_compromise = match (key.revoked_at, key.compromised_at) {
        (None, _) => None,
        (Some(_), Some(c)) if logged_at < c => Some(c),
        (Some(_), Some(c)) => {
            return Err(VerifyError::LoggedAfterCompromise {
                key_id: verified.key_id,
                compromised_at: c,
                logged_at,
            })
        }
        (Some(_), None) => {
            refuse_revoked(key, &verified.key_id)?;
            None
        }
    };
    Ok(Logged {
        verified,
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        origin: checkpoint.origin,
        logged_at,
        before_compromise,
    })
}

fn refuse_revoked(key: &PublishedKey, key_id: &str) -> Result<(), VerifyError> {
    match key.revoked_at {
        Some(revoked_at) => Err(VerifyError::KeyRevoked {
            key_id: key_id.to_owned(),
            revoked_at,
            compromised_at: key.compromised_at,
        }),
        None => Ok(()),
    }
}

/// Every check of a body but the key's revocation; the key it names.
fn check_body<'k>(
    body: &[u8],
    keys: &'k KeysDocument,
) -> Result<(Verified, &'k PublishedKey), VerifyError> {
    let body = parse_body(body)?;
    let bytes = body.packet.get().as_bytes();
    if !bytes.starts_with(b"{") {
        return Err(VerifyError::Malformed(
            "`packet` is not a JSON object".into(),
        ));
    }
    if !is_canonical(bytes) {
        return Err(VerifyError::NonCanonical);
    }
    let sig = body.signature;
    let actual = sha256_hex(bytes);
    if actual != sig.canonical_sha256 {
        return Err(VerifyError::DigestMismatch {
            expected: sig.canonical_sha256,
            actual,
        });
    }
    if sig.algorithm != ALGORITHM {
        return Err(VerifyError::UnsupportedAlgorithm(sig.algorithm));
    }
    let (entry, public) = any_published_key(keys, &sig.key_id)?;
    let sig_bytes: [u8; 64] = B64
        .decode(&sig.value)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| VerifyError::BadSignature(sig.key_id.clone()))?;
    public
        .verify_strict(bytes, &EdSignature::from_bytes(&sig_bytes))
        .map_err(|_| VerifyError::BadSignature(sig.key_id.clone()))?;
    // Only now that the bytes are known to be signed is their content trusted.
    let head: PacketHead = serde_json::from_slice(bytes)
        .map_err(|e| VerifyError::Malformed(format!("packet: {e}")))?;
    key_valid_at(entry, &sig.key_id, head.generated_at)?;
    Ok((
        Verified {
            key_id: sig.key_id,
            framework: head.framework,
            generated_at: head.generated_at,
            canonical_sha256: actual,
            report_id: body.report_id,
        },
        entry,
    ))
}

/// The published Ed25519 key `key_id` of `keys`, refused when unknown,
/// revoked or malformed.
pub(crate) fn published_key<'k>(
    keys: &'k KeysDocument,
    key_id: &str,
) -> Result<(&'k PublishedKey, VerifyingKey), VerifyError> {
    let (entry, public) = any_published_key(keys, key_id)?;
    refuse_revoked(entry, key_id)?;
    Ok((entry, public))
}

/// The published Ed25519 key `key_id` of `keys`, revoked or not.
fn any_published_key<'k>(
    keys: &'k KeysDocument,
    key_id: &str,
) -> Result<(&'k PublishedKey, VerifyingKey), VerifyError> {
    let entry = keys
        .find(key_id)
        .ok_or_else(|| VerifyError::UnknownKey(key_id.to_owned()))?;
    if entry.algorithm != ALGORITHM {
        return Err(VerifyError::UnsupportedAlgorithm(entry.algorithm.clone()));
    }
    let raw: [u8; 32] = B64
        .decode(&entry.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| VerifyError::BadPublicKey(key_id.to_owned()))?;
    let public =
        VerifyingKey::from_bytes(&raw).map_err(|_| VerifyError::BadPublicKey(key_id.to_owned()))?;
    Ok((entry, public))
}

/// Whether the key could sign at `generated_at`: not before its
/// `valid_from`, not at or after its retirement.
pub(crate) fn key_valid_at(
    entry: &PublishedKey,
    key_id: &str,
    generated_at: Timestamp,
) -> Result<(), VerifyError> {
    let not_valid = |why: String| VerifyError::KeyNotValidAt {
        key_id: key_id.to_owned(),
        generated_at,
        why,
    };
    if let Some(from) = entry.valid_from {
        if generated_at < from {
            return Err(not_valid(format!("the key is valid from {from}")));
        }
    }
    if let Some(retired) = entry.retired_at {
        if generated_at >= retired {
            return Err(not_valid(format!("the key was retired at {retired}")));
        }
    }
    Ok(())
}
