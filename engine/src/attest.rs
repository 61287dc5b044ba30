//! The signed packet in the supply-chain world's forms: an in-toto Statement
//! v1 whose subject is the packet, in a DSSE envelope signed with the
//! packet's own Ed25519 key, and the Sigstore bundle v0.3 that carries that
//! envelope with a public-key hint. Nothing here re-judges anything: the
//! Statement only restates, by digest, what the signed packet already says.
//!
//! Two predicates: vouch's own ([`PREDICATE_TYPE`], documented in
//! `docs/predicates/compliance-packet-v1.md`), which `vouch verify` and
//! Sigstore verifiers take, and compliance-trestle's JSON-signing predicate
//! ([`TRESTLE_PREDICATE_TYPE`]), the only one `trestle verify` accepts.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature as EdSignature, Signer as _};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::canonical::to_canonical_bytes;
use crate::keys::KeysDocument;
use crate::packet::Packet;
use crate::signing::{sha256_hex, PacketSigner, SignedPacket};
use crate::time::Timestamp;
use crate::verify::{key_valid_at, published_key, VerifyError};

/// The DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// vouch's predicate, version 1: what the packet attests, control by control.
pub const PREDICATE_TYPE: &str = "https://example.invalid/vouch/predicates/compliance-packet/v1";
/// compliance-trestle's predicate for a detached signature over a JSON file
/// (RFC 8785 canonical form, digested).
pub const TRESTLE_PREDICATE_TYPE: &str =
    "https://oscal-compass.github.io/compliance-trestle/predicates/oscal-signing/v1";
/// The subject's name: the file name under which the packet's canonical
/// bytes travel (the PDF's attachment, and what `trestle verify` expects
/// by default of a file `packet.json`).
pub const SUBJECT_NAME: &str = "packet.json";
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Which predicate a Statement carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predicate {
    Vouch,
    Trestle,
}

impl Predicate {
    pub fn parse(s: &str) -> Option<Predicate> {
        match s {
            "vouch" => Some(Predicate::Vouch),
            "trestle" => Some(Predicate::Trestle),
            _ => None,
        }
    }
}

/// A DSSE envelope (JSON serialization).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Base64 of the Statement's bytes.
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    pub keyid: String,
    /// Base64 of the Ed25519 signature over the PAE.
    pub sig: String,
}

/// Why an attestation could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    #[error("malformed input: {0}")]
    Malformed(String),
    #[error("the envelope's payloadType is `{0}`, not {PAYLOAD_TYPE}")]
    PayloadType(String),
    #[error("the envelope's payload is not base64: {0}")]
    Payload(String),
    #[error("the envelope carries {0} signatures; a vouch attestation has exactly one")]
    SignatureCount(usize),
    #[error("the envelope's signature is not a 64-byte Ed25519 signature in base64")]
    SignatureEncoding,
    #[error("bad signature: the envelope was not signed by key `{0}`")]
    BadSignature(String),
    #[error("the payload is not an in-toto Statement v1: {0}")]
    Statement(String),
    #[error("the Statement's predicate is `{0}`; vouch verifies its own ({PREDICATE_TYPE}); a trestle envelope is for `trestle verify`")]
    PredicateType(String),
    #[error("the Statement's subject is not one packet with a SHA-256 digest: {0}")]
    Subject(String),
    #[error("the subject's digest {subject} is not the packet's SHA-256 {packet}")]
    SubjectDigest { subject: String, packet: String },
    #[error("the bundle's mediaType is `{0}`, not {BUNDLE_MEDIA_TYPE}")]
    BundleMediaType(String),
    #[error("the bundle's public-key hint `{hint}` is not the envelope's key id `{keyid}`")]
    BundleHint { hint: String, keyid: String },
    #[error(transparent)]
    Key(#[from] VerifyError),
}

/// DSSE's pre-authentication encoding: what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The in-toto Statement about a signed packet, as canonical JSON bytes: its
/// subject is the packet's canonical bytes, by digest.
pub fn statement(signed: &SignedPacket, predicate: Predicate) -> Result<Vec<u8>, AttestError> {
    let key_id = &signed.signature.key_id;
    let (predicate_type, body) = match predicate {
        Predicate::Vouch => (PREDICATE_TYPE, vouch_predicate(&signed.packet, key_id)),
        Predicate::Trestle => (
            TRESTLE_PREDICATE_TYPE,
            json!({
                "canonicalization": "RFC8785",
                "digestAlgorithm": "sha256",
                "digestSource": "canonical-json",
                "tool": "vouch",
            }),
        ),
    };
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": SUBJECT_NAME, "digest": {"sha256": sha256_hex(&signed.canonical)}}],
        "predicateType": predicate_type,
        "predicate": body,
    });
    to_canonical_bytes(&statement).map_err(|e| AttestError::Malformed(e.to_string()))
}

fn vouch_predicate(p: &Packet, key_id: &str) -> Value {
    let controls: Vec<Value> = p
        .controls
        .iter()
        .map(|c| json!({"control_id": c.control_id, "status": c.status}))
        .collect();
    let mut v = json!({
        "schema_version": p.schema_version,
        "framework": p.framework,
        "organization_id": p.organization.id,
        "period": {"start": p.period_start, "end": p.period_end},
        "generated_at": p.generated_at,
        "key_id": key_id,
        "controls": controls,
    });
    if let Some(version) = &p.framework_version {
        v["framework_version"] = json!(version);
    }
    if let Some(inputs) = &p.inputs {
        v["records_sha256"] = json!(inputs.records_sha256);
    }
    v
}

/// Signs `statement` (its exact bytes) into a DSSE envelope.
pub fn envelope(signer: &PacketSigner, statement: &[u8]) -> Envelope {
    let sig = signer.signing_key().sign(&pae(PAYLOAD_TYPE, statement));
    Envelope {
        payload: B64.encode(statement),
        payload_type: PAYLOAD_TYPE.to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: signer.key_id().to_owned(),
            sig: B64.encode(sig.to_bytes()),
        }],
    }
}

/// The Sigstore bundle v0.3 carrying `envelope`, its key named by the hint.
/// No transparency-log entry or timestamp: verifiers are told to trust the
/// platform's published key (thresholds 0), as for any key-based bundle.
pub fn bundle(envelope: &Envelope) -> Value {
    let hint = envelope
        .signatures
        .first()
        .map(|s| s.keyid.clone())
        .unwrap_or_default();
    json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": hint},
            "tlogEntries": [],
            "timestampVerificationData": {"rfc3161Timestamps": []},
        },
        "dsseEnvelope": envelope,
    })
}

/// What a verified attestation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    pub key_id: String,
    /// The subject's digest: the signed packet's `canonical_sha256`.
    pub packet_sha256: String,
    pub framework: String,
    pub organization_id: String,
    pub generated_at: Timestamp,
}

/// Verifies a DSSE envelope with vouch's predicate against `keys`: the
/// signature over the PAE, then (only then) the Statement, then the key's
/// validity at the predicate's `generated_at`.
pub fn verify_envelope(
    envelope: &Envelope,
    keys: &KeysDocument,
) -> Result<VerifiedAttestation, AttestError> {
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(AttestError::PayloadType(envelope.payload_type.clone()));
    }
    let payload = B64
        .decode(&envelope.payload)
        .map_err(|e| AttestError::Payload(e.to_string()))?;
    let [sig] = envelope.signatures.as_slice() else {
        return Err(AttestError::SignatureCount(envelope.signatures.len()));
    };
    let (entry, public) = published_key(keys, &sig.keyid)?;
    let bytes: [u8; 64] = B64
        .decode(&sig.sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(AttestError::SignatureEncoding)?;
    public
        .verify_strict(
            &pae(PAYLOAD_TYPE, &payload),
            &EdSignature::from_bytes(&bytes),
        )
        .map_err(|_| AttestError::BadSignature(sig.keyid.clone()))?;
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|e| AttestError::Statement(e.to_string()))?;
    if statement.kind != STATEMENT_TYPE {
        return Err(AttestError::Statement(format!(
            "_type is `{}`",
            statement.kind
        )));
    }
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(AttestError::PredicateType(statement.predicate_type));
    }
    let digest = match statement.subject.as_slice() {
        [one] => one
            .digest
            .get("sha256")
            .cloned()
            .ok_or_else(|| AttestError::Subject("no sha256 digest".into()))?,
        more => return Err(AttestError::Subject(format!("{} subjects", more.len()))),
    };
    let p: VouchPredicate = serde_json::from_value(statement.predicate)
        .map_err(|e| AttestError::Statement(format!("predicate: {e}")))?;
    key_valid_at(entry, &sig.keyid, p.generated_at)?;
    Ok(VerifiedAttestation {
        key_id: sig.keyid.clone(),
        packet_sha256: digest,
        framework: p.framework,
        organization_id: p.organization_id,
        generated_at: p.generated_at,
    })
}

/// Verifies a Sigstore bundle: its media type, that its hint names the
/// envelope's key, and the envelope.
pub fn verify_bundle(
    bundle: &[u8],
    keys: &KeysDocument,
) -> Result<VerifiedAttestation, AttestError> {
    let b: Bundle = serde_json::from_slice(bundle)
        .map_err(|e| AttestError::Malformed(format!("not a Sigstore bundle: {e}")))?;
    if b.media_type != BUNDLE_MEDIA_TYPE {
        return Err(AttestError::BundleMediaType(b.media_type));
    }
    let keyid = b
        .dsse_envelope
        .signatures
        .first()
        .map(|s| s.keyid.clone())
        .unwrap_or_default();
    if b.verification_material.public_key.hint != keyid {
        return Err(AttestError::BundleHint {
            hint: b.verification_material.public_key.hint,
            keyid,
        });
    }
    verify_envelope(&b.dsse_envelope, keys)
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: Value,
}

#[derive(Deserialize)]
struct Subject {
    digest: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct VouchPredicate {
    framework: String,
    organization_id: String,
    generated_at: Timestamp,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: VerificationMaterial,
    dsse_envelope: Envelope,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationMaterial {
    public_key: PublicKeyHint,
}

#[derive(Deserialize)]
struct PublicKeyHint {
    hint: String,
}
