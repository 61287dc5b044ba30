//! OLPC canonical JSON, byte for byte as the olpc-cjson crate writes it, by
//! a writer of vouch's own that is several times faster (olpc-cjson buffers
//! every object member in a map of byte vectors and boxes a writer per
//! token). The rules, as olpc-cjson applies them:
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

/// A value that has no canonical form (a float, most likely).
#[derive(Debug, thiserror::Error)]
#[error("cannot write canonical JSON: {0}")]
pub struct CanonicalError(#[from] serde_json::Error);

/// The canonical bytes of `value`.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(4096);
    write_value(&value, &mut out)?;
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

fn float_error() -> CanonicalError {
    CanonicalError(serde::ser::Error::custom(
        "floating point numbers are not allowed in canonical JSON",
    ))
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else {
                return Err(float_error());
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's map is ordered by the keys' bytes (checked, in
            // case a build orders it otherwise); the written keys order the
            // same unless a key holds a byte up to `"` or a `\` (escapes and
            // the closing quote then decide) or is not NFC.
            let mut previous: Option<&String> = None;
            let in_order = map.keys().all(|k| {
                let ok = plain_key(k) && previous.is_none_or(|p| p < k);
                previous = Some(k);
                ok
            });
            if in_order {
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(k, out);
                    out.push(b':');
                    write_value(v, out)?;
                }
            } else {
                // Every member is written, even one a later key overrides: a
                // float there is an error, as it is for olpc-cjson.
                let mut members = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let mut key = Vec::with_capacity(k.len() + 2);
                    write_string(k, &mut key);
                    let mut value = Vec::new();
                    write_value(v, &mut value)?;
                    members.push((key, value));
                }
                members.sort_by(|a, b| a.0.cmp(&b.0));
                // Keys equal once normalized: the last one written wins.
                members.dedup_by(|later, earlier| {
                    if later.0 == earlier.0 {
                        std::mem::swap(later, earlier);
                        true
                    } else {
                        false
                    }
                });
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(k);
                    out.push(b':');
                    out.extend_from_slice(v);
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A key whose written form sorts as its bytes do: NFC already, and no
/// byte at or below `"`, nor a `\`.
fn plain_key(k: &str) -> bool {
    k.bytes().all(|b| b > b'"' && b != b'\\') && is_nfc_quick(k.chars()) == IsNormalized::Yes
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    if is_nfc_quick(s.chars()) == IsNormalized::Yes {
        escape_into(s, out);
    } else {
        escape_into(&s.nfc().collect::<String>(), out);
    }
    out.push(b'"');
}

/// `"` and `\` escaped, nothing else.
fn escape_into(s: &str, out: &mut Vec<u8>) {
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
