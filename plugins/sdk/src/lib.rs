//! # vouch-plugin-sdk
//!
//! Write a vouch check plugin (ABI v1, see `plugins/ABI.md`) as one function:
//!
//! ```no_run
//! use vouch_plugin_sdk::{plugin, Answer, Finding, Input};
//!
//! fn check(input: Input) -> Answer {
//!     match input.evidence.as_bool() {
//!         Some(true) => Answer::Pass,
//!         Some(false) => Answer::fail(vec![Finding::new("tls_enabled", false, "true")]),
//!         None => Answer::Inconclusive("no TLS flag in the evidence".into()),
//!     }
//! }
//!
//! plugin!(name: "tls_flag", version: "1.0.0", check: check);
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` (no WASI:
//! the host refuses modules that import anything but `vouch_v1.log`).

use serde::{Deserialize, Serialize};
pub use serde_json::{self, json, Value};

/// The ABI version this SDK speaks.
pub const ABI_VERSION: i32 = 1;

/// What the host hands a plugin.
#[derive(Debug, Clone, Deserialize)]
pub struct Input {
    pub abi_version: u32,
    pub control: ControlRef,
    /// The check's `config` from the framework YAML.
    #[serde(default)]
    pub config: Value,
    /// The resource being checked (a service_id...), or the organization id.
    pub resource_id: String,
    /// What the check's `path` selects on the resource (or the whole resource).
    pub evidence: Value,
    pub period: Period,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ControlRef {
    pub control_id: String,
    pub title: String,
}

/// The assessment period: RFC 3339 UTC timestamps with whole seconds.
#[derive(Debug, Clone, Deserialize)]
pub struct Period {
    pub start: String,
    pub end: String,
}

/// One failing value, as the packet's findings show it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub field: String,
    pub observed: Value,
    pub expected: String,
}

impl Finding {
    pub fn new(
        field: impl Into<String>,
        observed: impl Into<Value>,
        expected: impl Into<String>,
    ) -> Self {
        Finding {
            field: field.into(),
            observed: observed.into(),
            expected: expected.into(),
        }
    }
}

/// A plugin's verdict on one resource.
#[derive(Debug, Clone)]
pub enum Answer {
    Pass,
    Fail(Vec<Finding>),
    /// The evidence does not allow a decision; the reason is shown to auditors.
    Inconclusive(String),
}

impl Answer {
    pub fn fail(findings: Vec<Finding>) -> Self {
        Answer::Fail(findings)
    }

    /// The answer as ABI v1 JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let v = match self {
            Answer::Pass => json!({"status": "pass"}),
            Answer::Fail(f) => json!({"status": "fail", "findings": f}),
            Answer::Inconclusive(note) => json!({"status": "inconclusive", "note": note}),
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// Runs `check` on ABI v1 input bytes; malformed input is inconclusive.
pub fn run(input: &[u8], check: fn(Input) -> Answer) -> Vec<u8> {
    match serde_json::from_slice::<Input>(input) {
        Ok(i) if i.abi_version == ABI_VERSION as u32 => check(i).to_json(),
        Ok(i) => Answer::Inconclusive(format!(
            "input of ABI version {}, this plugin speaks {ABI_VERSION}",
            i.abi_version
        ))
        .to_json(),
        Err(e) => Answer::Inconclusive(format!("malformed input: {e}")).to_json(),
    }
}

/// Leaks `bytes` into guest memory and packs (pointer, length) for the host.
/// Each call runs in a fresh instance, so nothing is ever freed.
#[doc(hidden)]
pub fn leak(bytes: Vec<u8>) -> i64 {
    let bytes = bytes.into_boxed_slice();
    let len = bytes.len() as i64;
    let ptr = Box::leak(bytes).as_ptr() as usize as i64;
    (ptr << 32) | (len & 0xffff_ffff)
}

/// Allocates `len` bytes for the host to write the input into.
#[doc(hidden)]
pub fn alloc(len: i32) -> i32 {
    let buf = vec![0u8; len.max(0) as usize].into_boxed_slice();
    Box::leak(buf).as_mut_ptr() as usize as i32
}

/// Reads the input the host wrote at (`ptr`, `len`).
///
/// # Safety
/// `ptr` and `len` must describe memory this module's `vouch_alloc` returned.
#[doc(hidden)]
#[allow(unsafe_code)]
pub unsafe fn input<'a>(ptr: i32, len: i32) -> &'a [u8] {
    // SAFETY: the host writes exactly `len` bytes at a pointer `alloc` returned.
    unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len.max(0) as usize) }
}

/// Declares the plugin: its name, version and check function, and the ABI v1
/// exports (`vouch_abi_version`, `vouch_describe`, `vouch_alloc`, `vouch_check`).
#[macro_export]
macro_rules! plugin {
    (name: $name:literal, version: $version:literal, check: $check:path) => {
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn vouch_abi_version() -> i32 {
            $crate::ABI_VERSION
        }

        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn vouch_describe() -> i64 {
            $crate::leak($crate::json!({"name": $name, "version": $version}).to_string().into_bytes())
        }

        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn vouch_alloc(len: i32) -> i32 {
            $crate::alloc(len)
        }

        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn vouch_check(ptr: i32, len: i32) -> i64 {
            // SAFETY: the host calls this with the buffer `vouch_alloc` gave it.
            let input = unsafe { $crate::input(ptr, len) };
            $crate::leak($crate::run(input, $check))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(input: Input) -> Answer {
        if input.evidence == json!(true) {
            Answer::Pass
        } else {
            Answer::fail(vec![Finding::new("tls_enabled", input.evidence, "true")])
        }
    }

    #[test]
    fn runs_a_check_on_abi_input() {
        let input = br#"{"abi_version":1,"control":{"control_id":"C","title":"T"},"config":null,"resource_id":"s","evidence":false,"period":{"start":"a","end":"b"}}"#;
        let out: Value = serde_json::from_slice(&run(input, tls)).unwrap();
        assert_eq!(out["status"], "fail");
        assert_eq!(out["findings"][0]["field"], "tls_enabled");
        let out: Value = serde_json::from_slice(&run(b"nonsense", tls)).unwrap();
        assert_eq!(out["status"], "inconclusive");
    }
}
