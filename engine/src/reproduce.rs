//! Re-performing a packet: given the signed packet bytes, the records
//! document, the frameworks and the plugins, check that each is the input the
//! packet names (by digest), evaluate again with the packet's own time and
//! period, and compare the result with the signed bytes, byte for byte.

use serde_json::Value;

use crate::canonical::to_canonical_bytes;
use crate::eval::PluginHost;
use crate::framework::FrameworkSet;
use crate::packet::{assemble_with, Inputs, Packet};
use crate::records::RecordsDocument;
use crate::signing::sha256_hex;
use crate::time::Period;

/// Why a packet was not reproduced, one reason each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReproduceError {
    #[error("the packet is not readable: {0}")]
    Malformed(String),
    #[error("the packet names no inputs: it was made by an engine that did not record them")]
    NoInputs,
    #[error("the records document is not the one the packet was computed from: its canonical SHA-256 is {actual}, the packet names {expected}")]
    RecordsDigest { expected: String, actual: String },
    #[error("the records document is not valid: {0}")]
    Records(String),
    #[error("framework `{0}` is not among the frameworks given")]
    UnknownFramework(String),
    #[error("framework `{id}` is version {actual}, the packet was judged by version {expected}")]
    FrameworkVersion {
        id: String,
        expected: String,
        actual: String,
    },
    #[error("framework `{id}` is not the text that judged the packet: its SHA-256 is {actual}, the packet names {expected}")]
    FrameworkDigest {
        id: String,
        expected: String,
        actual: String,
    },
    #[error("plugin `{name}` is not the one that took part: {actual}, the packet names sha256 {expected}")]
    PluginDigest {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("the packet cannot be evaluated again: {0}")]
    Evaluation(String),
    #[error("the recomputed packet differs from the signed one, first at {at}: signed {signed}, recomputed {recomputed}{engine}")]
    Differs {
        /// `controls[3] (CC6.7).status`, or a top-level field.
        at: String,
        signed: String,
        recomputed: String,
        /// Says so when the engine's version is not the packet's.
        engine: String,
    },
}

/// What a reproduction established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reproduced {
    pub framework: String,
    pub records_sha256: String,
    pub controls: usize,
}

/// Re-performs the packet whose canonical bytes are `signed`.
pub fn reproduce(
    signed: &[u8],
    records: &[u8],
    frameworks: &FrameworkSet,
    host: &dyn PluginHost,
) -> Result<Reproduced, ReproduceError> {
    let (packet, inputs) = named_inputs(signed)?;
    let doc = RecordsDocument::from_json_slice(records)
        .map_err(|e| ReproduceError::Records(e.to_string()))?;
    let canonical =
        to_canonical_bytes(&doc.to_value()).map_err(|e| ReproduceError::Records(e.to_string()))?;
    let actual = sha256_hex(&canonical);
    if actual != inputs.records_sha256 {
        return Err(ReproduceError::RecordsDigest {
            expected: inputs.records_sha256,
            actual,
        });
    }
    let id = &inputs.framework.id;
    let framework = frameworks
        .get(id)
        .ok_or_else(|| ReproduceError::UnknownFramework(id.clone()))?;
    if framework.version != inputs.framework.version {
        return Err(ReproduceError::FrameworkVersion {
            id: id.clone(),
            expected: inputs.framework.version,
            actual: framework.version.clone(),
        });
    }
    if let Some(expected) = &inputs.framework.sha256 {
        let actual = framework.source_sha256.clone().unwrap_or_default();
        if &actual != expected {
            return Err(ReproduceError::FrameworkDigest {
                id: id.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    check_plugins(&inputs, host)?;
    let period = Period::new(packet.period_start, packet.period_end)
        .map_err(|e| ReproduceError::Evaluation(e.to_string()))?;
    let mut again = assemble_with(framework, &doc, packet.generated_at, Some(period), host)
        .map_err(|e| ReproduceError::Evaluation(e.to_string()))?;
    // The series link is where the server stored the packet, not part of
    // the evaluation: taken as signed (`vouch verify-series` checks it).
    again.series = packet.series.clone();
    let bytes =
        to_canonical_bytes(&again).map_err(|e| ReproduceError::Evaluation(e.to_string()))?;
    if bytes != signed {
        let (at, signed_value, recomputed) = first_difference(signed, &bytes);
        let engine = match &again.inputs {
            Some(now) if now.engine != inputs.engine => format!(
                " (the packet was computed by {} {}, this is {} {})",
                inputs.engine.name, inputs.engine.version, now.engine.name, now.engine.version
            ),
            _ => String::new(),
        };
        return Err(ReproduceError::Differs {
            at,
            signed: signed_value,
            recomputed,
            engine,
        });
    }
    Ok(Reproduced {
        framework: id.clone(),
        records_sha256: inputs.records_sha256,
        controls: packet.controls.len(),
    })
}

/// The packet and the inputs it names.
pub fn named_inputs(signed: &[u8]) -> Result<(Packet, Inputs), ReproduceError> {
    let packet: Packet =
        serde_json::from_slice(signed).map_err(|e| ReproduceError::Malformed(e.to_string()))?;
    let inputs = packet.inputs.clone().ok_or(ReproduceError::NoInputs)?;
    Ok((packet, inputs))
}

/// Whether `host` has every plugin the packet names, with its digest. A
/// caller that loads frameworks pinned to plugin digests checks this first,
/// so that a changed plugin file is reported as such and not as a framework
/// that does not load.
pub fn check_plugins(inputs: &Inputs, host: &dyn PluginHost) -> Result<(), ReproduceError> {
    for p in &inputs.plugins {
        let actual = host.info(&p.name).map(|i| i.sha256);
        if actual.as_deref() != Some(p.sha256.as_str()) {
            return Err(ReproduceError::PluginDigest {
                name: p.name.clone(),
                expected: p.sha256.clone(),
                actual: actual
                    .map(|s| format!("the plugin given has sha256 {s}"))
                    .unwrap_or_else(|| "no such plugin was given".into()),
            });
        }
    }
    Ok(())
}

/// Where two packets first differ: the path (a control named by its id), and
/// both values, shortened.
fn first_difference(signed: &[u8], recomputed: &[u8]) -> (String, String, String) {
    let a: Value = serde_json::from_slice(signed).unwrap_or(Value::Null);
    let b: Value = serde_json::from_slice(recomputed).unwrap_or(Value::Null);
    let (at, x, y) = crate::diff::first_difference(&a, &b);
    let short = |v: Option<&Value>| {
        let text = v.map_or_else(|| "nothing".to_owned(), Value::to_string);
        if text.chars().count() > 200 {
            format!("{}...", text.chars().take(200).collect::<String>())
        } else {
            text
        }
    };
    (at, short(x), short(y))
}
