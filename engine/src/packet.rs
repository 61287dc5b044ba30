//! The evidence packet (schema 1.0), exactly in the shape of seed 000.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::eval::{
    evaluate_controls, merge_plugins, ControlResult, NoPluginHost, PluginHost, PluginInfo,
};
use crate::framework::Framework;
use crate::records::RecordsDocument;
use crate::time::{Period, Timestamp};

/// The packet schema version this engine writes.
pub const SCHEMA_VERSION: &str = "1.0";

/// An evaluated, not yet signed, evidence packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Packet {
    pub schema_version: String,
    pub framework: String,
    pub generated_at: Timestamp,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub organization: PacketOrganization,
    pub scope_boundary: String,
    pub controls: Vec<ControlResult>,
    pub summary: Summary,
    /// The version of the framework definition that judged the records.
    /// Always written by this engine (additive to the seed's shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_version: Option<String>,
    /// What this packet is and is not (platform-generated evidence, not an
    /// audit report or a legal opinion), from the framework file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// What the packet was computed from, bound into the signed bytes: the
    /// records, the framework text, the engine, the plugins. Always written
    /// by this engine; absent in packets of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    /// Until when the evidence may be relied on: the period's end plus the
    /// framework's `valid_for_days`. Absent when the framework sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    /// The packet's place in its organization's series for the framework:
    /// the packet before it, by digest, inside the signed bytes. Written by
    /// the server; absent in offline packets and those of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesLink>,
}

/// A link of the hash-linked series of one organization's packets of one
/// framework: every complete packet names the one stored before it, so
/// that a series with a packet missing, replaced or inserted does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesLink {
    /// The `canonical_sha256` of the previous complete packet of the same
    /// organization and framework; null for the first.
    pub previous_canonical_sha256: Option<String>,
}

/// The inputs of an evaluation, by digest: with the same records document,
/// framework text, engine and plugins, the same packet comes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// SHA-256 (lowercase hex) of the records document's canonical bytes
    /// (OLPC canonical JSON of the document as evaluated).
    pub records_sha256: String,
    pub framework: FrameworkInput,
    pub engine: EngineInput,
    /// Every plugin that took part, once (each control lists its own too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameworkInput {
    pub id: String,
    pub version: String,
    /// SHA-256 (lowercase hex) of the framework's YAML text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineInput {
    /// `vouch-engine`.
    pub name: String,
    pub version: String,
}

/// This engine, as packets name it.
pub fn engine_input() -> EngineInput {
    EngineInput {
        name: env!("CARGO_PKG_NAME").to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PacketOrganization {
    pub id: String,
    pub name: String,
    pub billing_email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub service_count: u64,
    pub all_services_eu_residency: bool,
    pub audit_log: AuditSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSummary {
    pub retention_policy: String,
    pub oldest_entry_at: Option<Timestamp>,
    pub entry_count: u64,
}

/// Why a packet could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    #[error("period_end {period_end} is after generated_at {generated_at}: a packet cannot evidence the future")]
    PeriodInFuture {
        period_end: Timestamp,
        generated_at: Timestamp,
    },
    #[error("the records document has no canonical form: {0}")]
    Records(String),
}

/// Evaluates every control of `framework` on `records` and assembles the packet.
///
/// `generated_at` is the caller's clock (the engine never reads one); `period`
/// defaults to the calendar month ending at `generated_at`.
pub fn assemble(
    framework: &Framework,
    records: &RecordsDocument,
    generated_at: Timestamp,
    period: Option<Period>,
) -> Result<Packet, PacketError> {
    assemble_with(framework, records, generated_at, period, &NoPluginHost)
}

/// Like [`assemble`], running `plugin:` checks on `host`.
pub fn assemble_with(
    framework: &Framework,
    records: &RecordsDocument,
    generated_at: Timestamp,
    period: Option<Period>,
    host: &dyn PluginHost,
) -> Result<Packet, PacketError> {
    assemble_archived(framework, records, generated_at, period, host).map(|(packet, _)| packet)
}

/// Like [`assemble_with`], also returning the records document's canonical
/// bytes: the ones whose SHA-256 the packet names, to archive beside it.
pub fn assemble_archived(
    framework: &Framework,
    records: &RecordsDocument,
    generated_at: Timestamp,
    period: Option<Period>,
    host: &dyn PluginHost,
) -> Result<(Packet, Vec<u8>), PacketError> {
    let period = period.unwrap_or_else(|| Period::month_ending_at(generated_at));
    if period.end > generated_at {
        return Err(PacketError::PeriodInFuture {
            period_end: period.end,
            generated_at,
        });
    }
    let root = records.to_value();
    let records_bytes = crate::canonical::to_canonical_bytes(&root)
        .map_err(|e| PacketError::Records(e.to_string()))?;
    let controls = evaluate_controls(&framework.controls, &root, &period, host);
    let mut plugins: Vec<PluginInfo> = vec![];
    for c in &controls {
        merge_plugins(&mut plugins, c.plugins.clone());
    }
    let inputs = Inputs {
        records_sha256: crate::signing::sha256_hex(&records_bytes),
        framework: FrameworkInput {
            id: framework.framework.clone(),
            version: framework.version.clone(),
            sha256: framework.source_sha256.clone(),
        },
        engine: engine_input(),
        plugins,
    };
    let packet = Packet {
        schema_version: SCHEMA_VERSION.to_owned(),
        framework: framework.framework.clone(),
        generated_at,
        period_start: period.start,
        period_end: period.end,
        organization: PacketOrganization {
            id: records.organization.id.clone(),
            name: records.organization.name.clone(),
            billing_email: records.organization.billing_email.clone(),
        },
        scope_boundary: framework.scope_boundary.clone(),
        controls,
        framework_version: Some(framework.version.clone()),
        statement: Some(framework.statement.clone()),
        inputs: Some(inputs),
        valid_until: framework
            .valid_for_days
            .map(|days| period.end.saturating_add_days(days)),
        series: None,
        summary: Summary {
            service_count: records.services.len() as u64,
            all_services_eu_residency: records.all_services_eu_residency(),
            audit_log: AuditSummary {
                retention_policy: records.audit_log.retention_policy.clone(),
                oldest_entry_at: records.audit_log.oldest_entry_at,
                entry_count: records.audit_log.entry_count,
            },
        },
    };
    Ok((packet, records_bytes))
}

/// The committed JSON Schema of packets (`engine/schema/packet.schema.json`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Packet)).unwrap_or(serde_json::Value::Null)
}
