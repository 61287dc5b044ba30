//! OLPC canonical JSON, as the olpc-cjson crate writes it.
//!
//! Packets hold no floats, only NFC strings without control characters, and no
//! object key taken from user data, so these bytes are also what Python's
//! `json.dumps(p, sort_keys=True, separators=(",",":"), ensure_ascii=False)` gives.

use olpc_cjson::CanonicalFormatter;
use serde::Serialize;

/// A value that has no canonical form (a float, most likely).
#[derive(Debug, thiserror::Error)]
#[error("cannot write canonical JSON: {0}")]
pub struct CanonicalError(#[from] serde_json::Error);

/// The canonical bytes of `value`.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, CanonicalFormatter::new());
    value.serialize(&mut ser)?;
    Ok(buf)
}

/// Whether `bytes` are JSON already in canonical form.
pub fn is_canonical(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| to_canonical_bytes(&v).ok())
        .is_some_and(|c| c == bytes)
}
