//! The well-known keys document (`GET /.well-known/compliance-signing-keys`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::signing::{public_key_base64, ALGORITHM};
use crate::time::Timestamp;

/// Every signing key the platform ever used, current and retired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeysDocument {
    pub algorithm: String,
    pub keys: Vec<PublishedKey>,
    /// The transparency log every packet and key event is appended to: the
    /// key its checkpoints are signed with, not a packet key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogKey>,
}

/// The public key of the transparency log's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogKey {
    /// The log's origin: the first line of its checkpoints, and the key name.
    pub origin: String,
    /// The C2SP signed-note verifier key, `origin+keyid+base64(0x01 ‖ key)`.
    pub vkey: String,
    /// Base64 (standard, padded) of the raw 32-byte Ed25519 public key.
    pub public_key: String,
}

/// One key of the keys document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PublishedKey {
    pub key_id: String,
    pub algorithm: String,
    /// Base64 (standard, padded) of the raw 32-byte Ed25519 public key.
    pub public_key: String,
    pub active: bool,
    /// The key signs packets generated at or after this instant.
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    /// Packets generated at or after this instant are not signed by this key.
    #[serde(default)]
    pub retired_at: Option<Timestamp>,
    /// The key was revoked: its packets do not verify, except those the
    /// transparency log holds from before `compromised_at`.
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
    /// When the revoked key was compromised, if the revocation said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compromised_at: Option<Timestamp>,
    /// The same key as an RFC 8037 JWK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Jwk>,
}

/// An RFC 8037 OKP public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// Base64url (no padding) of the raw public key.
    pub x: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
}

impl PublishedKey {
    /// The published form of `key`.
    pub fn new(
        key: &VerifyingKey,
        key_id: &str,
        valid_from: Option<Timestamp>,
        retired_at: Option<Timestamp>,
        revoked_at: Option<Timestamp>,
    ) -> Self {
        PublishedKey {
            key_id: key_id.to_owned(),
            algorithm: ALGORITHM.to_owned(),
            public_key: public_key_base64(key),
            active: retired_at.is_none() && revoked_at.is_none(),
            valid_from,
            retired_at,
            revoked_at,
            compromised_at: None,
            jwk: Some(Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: B64URL.encode(key.as_bytes()),
                kid: key_id.to_owned(),
                use_: "sig".into(),
                alg: "EdDSA".into(),
            }),
        }
    }
}

impl PublishedKey {
    /// The key as PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
    pub fn spki_pem(&self) -> Result<String, String> {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let raw: [u8; 32] =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &self.public_key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("key {} is not a 32-byte Ed25519 key", self.key_id))?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|e| e.to_string())?
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| e.to_string())
    }
}

impl KeysDocument {
    pub fn new(keys: Vec<PublishedKey>) -> Self {
        KeysDocument {
            algorithm: ALGORITHM.to_owned(),
            keys,
            log: None,
        }
    }

    pub fn find(&self, key_id: &str) -> Option<&PublishedKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }
}
