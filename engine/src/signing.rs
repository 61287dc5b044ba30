//! Ed25519 signatures over canonical packet bytes, key ids and PEM keys.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::{to_canonical_bytes, CanonicalError};
use crate::packet::Packet;
use crate::time::Timestamp;

/// The only signature algorithm of schema 1.0.
pub const ALGORITHM: &str = "Ed25519";

/// The `signature` object of a packet body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub algorithm: String,
    pub key_id: String,
    /// Base64 (standard, padded) of the 64-byte signature over the canonical packet bytes.
    pub value: String,
    /// Lowercase hex SHA-256 of the canonical packet bytes.
    pub canonical_sha256: String,
}

/// A signed packet: the canonical bytes that were signed and the signature.
#[derive(Debug, Clone)]
pub struct SignedPacket {
    pub packet: Packet,
    /// The exact bytes that were signed; the body embeds them verbatim.
    pub canonical: Vec<u8>,
    pub signature: Signature,
}

impl SignedPacket {
    /// The response body: `{"report_id":...,"packet":<canonical bytes>,"signature":{...}}`,
    /// compact, with the packet bytes embedded verbatim.
    pub fn body(&self, report_id: Option<&str>) -> Vec<u8> {
        body_from_parts(report_id, &self.canonical, &self.signature)
    }
}

/// Assembles a body from stored parts, so a download is byte-identical to the generation answer.
pub fn body_from_parts(
    report_id: Option<&str>,
    canonical: &[u8],
    signature: &Signature,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len() + 256);
    out.push(b'{');
    if let Some(id) = report_id {
        out.extend_from_slice(b"\"report_id\":");
        out.extend_from_slice(json_string(id).as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(b"\"packet\":");
    out.extend_from_slice(canonical);
    out.extend_from_slice(b",\"signature\":");
    // A struct of strings always serializes.
    out.extend_from_slice(&serde_json::to_vec(signature).unwrap_or_default());
    out.push(b'}');
    out
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// A signing key with its key id.
pub struct PacketSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for PacketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("PacketSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl PacketSigner {
    pub fn new(key: SigningKey, key_id: String) -> Self {
        PacketSigner { key, key_id }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// For the envelopes of [`crate::attest`], signed with the same key.
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Canonicalizes and signs `packet`.
    pub fn sign(&self, packet: Packet) -> Result<SignedPacket, CanonicalError> {
        let canonical = to_canonical_bytes(&packet)?;
        let signature = self.sign_bytes(&canonical);
        Ok(SignedPacket {
            packet,
            canonical,
            signature,
        })
    }

    /// Signs canonical bytes as they are.
    pub fn sign_bytes(&self, canonical: &[u8]) -> Signature {
        let sig = self.key.sign(canonical);
        Signature {
            algorithm: ALGORITHM.to_owned(),
            key_id: self.key_id.clone(),
            value: B64.encode(sig.to_bytes()),
            canonical_sha256: sha256_hex(canonical),
        }
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `key-YYYY-MM-<first 8 hex of SHA-256 of the raw public key>`, YYYY-MM from `created`.
pub fn default_key_id(public: &VerifyingKey, created: Timestamp) -> String {
    let hex = sha256_hex(public.as_bytes());
    format!("key-{}-{}", created.year_month(), &hex[..8])
}

/// Why a key file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("no `-----BEGIN PRIVATE KEY-----` block: expected an Ed25519 key in PKCS#8 PEM (e.g. from `vouch keys generate` or `openssl genpkey -algorithm ed25519`)")]
    NoPem,
    #[error("not an Ed25519 PKCS#8 private key: {0}")]
    Pkcs8(String),
    #[error("key_id `{0}` must be 1 to 128 characters of letters, digits, `-`, `_` and `.`")]
    BadKeyId(String),
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const KEY_ID_LINE: &str = "key_id:";

/// A private key as PKCS#8 v1 PEM (what OpenSSL and Python's `cryptography`
/// read), preceded by a `key_id:` line of explanatory text, which PEM readers skip.
pub fn key_to_pem(key: &SigningKey, key_id: &str) -> Result<String, KeyError> {
    check_key_id(key_id)?;
    let v1 = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let pem = v1
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Pkcs8(e.to_string()))?;
    Ok(format!("{KEY_ID_LINE} {key_id}\n{}", pem.as_str()))
}

/// Reads a PKCS#8 PEM Ed25519 key and the `key_id:` line written before it, if any.
pub fn key_from_pem(text: &str) -> Result<(SigningKey, Option<String>), KeyError> {
    let start = text.find(PEM_BEGIN).ok_or(KeyError::NoPem)?;
    let key_id = text[..start]
        .lines()
        .find_map(|l| l.trim().strip_prefix(KEY_ID_LINE))
        .map(|id| id.trim().to_owned());
    if let Some(id) = &key_id {
        check_key_id(id)?;
    }
    let key = SigningKey::from_pkcs8_pem(text[start..].trim_end())
        .map_err(|e| KeyError::Pkcs8(e.to_string()))?;
    Ok((key, key_id))
}

/// Key ids travel in URLs and file names: keep them plain.
pub fn check_key_id(id: &str) -> Result<(), KeyError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadKeyId(id.to_owned()))
    }
}

/// Base64 of the raw 32-byte public key, as the well-known document publishes it.
pub fn public_key_base64(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_key_and_id() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let pem = key_to_pem(&key, "key-2026-06-test").unwrap();
        assert!(pem.starts_with("key_id: key-2026-06-test\n-----BEGIN PRIVATE KEY-----\n"));
        let (back, id) = key_from_pem(&pem).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        assert_eq!(id.as_deref(), Some("key-2026-06-test"));
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        assert!(matches!(key_from_pem("hello"), Err(KeyError::NoPem)));
        let broken = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(key_from_pem(broken), Err(KeyError::Pkcs8(_))));
        assert!(check_key_id("a b").is_err());
    }
}
