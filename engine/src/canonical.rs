//! OLPC canonical JSON, byte for byte as the olpc-cjson crate writes it, by
//! a serializer of vouch's own ([`writer`]) that writes into one buffer and
//! reorders an object's members only when they are not in order already
//! (olpc-cjson buffers every member in a map of byte vectors and boxes a
//! writer per token). The rules, as olpc-cjson applies them:
//!
//! - objects: members sorted by the bytes of their *written* keys (quotes
//!   and escapes included), no whitespace; a key given twice keeps its last
//!   value;
//! - strings: NFC-normalized; only `"` and `\` are escaped, every other
//!   character (control characters included) is written as it is;
//! - numbers: integers only; a float is an error.
//!
//! olpc-cjson stays the reference: [`olpc_reference_bytes`] is what the
//! property tests compare with, on the hostile corpus.
//!
//! Packets hold no floats, only NFC strings without control characters, and no
//! object key taken from user data, so these bytes are also what Python's
//! `json.dumps(p, sort_keys=True, separators=(",",":"), ensure_ascii=False)`
//! and RFC 8785 give.

use olpc_cjson::CanonicalFormatter;
use serde::Serialize;
use serde_json::Value;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

mod writer;

/// A value that has no canonical form (a float, most likely).
#[derive(Debug, thiserror::Error)]
#[error("cannot write canonical JSON: {0}")]
pub struct CanonicalError(#[from] serde_json::Error);

/// The canonical bytes of `value`.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(4096);
    writer::write(value, &mut out).map_err(|e| CanonicalError(serde::ser::Error::custom(e)))?;
    Ok(out)
}

/// The canonical bytes as olpc-cjson writes them: the reference the tests
/// hold [`to_canonical_bytes`] to.
pub fn olpc_reference_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, CanonicalFormatter::new());
    value.serialize(&mut ser)?;
    Ok(buf)
}

/// Whether `bytes` are JSON already in canonical form.
pub fn is_canonical(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| to_canonical_bytes(&v).ok())
        .is_some_and(|c| c == bytes)
}

/// A string as canonical JSON writes it: NFC, `"` and `\\` escaped.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    // ASCII is NFC; most strings are ASCII, and the check is cheap.
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        escape_into(s, out);
    } else {
        escape_into(&s.nfc().collect::<String>(), out);
    }
    out.push(b'"');
}

/// `"` and `\` escaped, nothing else.
fn escape_into(s: &str, out: &mut Vec<u8>) {
    if !s.bytes().any(|b| b == b'"' || b == b'\\') {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' || b == b'\\' {
            out.extend_from_slice(&bytes[start..i]);
            out.push(b'\\');
            out.push(b);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}
