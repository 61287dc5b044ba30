//! The legacy report (seed 001): compact JSON, top-level keys exactly
//! `report` then `signature`, HMAC-SHA256 hex over the exact report bytes.

use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::Serialize;
use sha2::Sha256;
use vouch_engine::{Period, Timestamp};

use super::{App, Caller, Result, ServiceError};
use crate::store;

#[derive(Serialize, JsonSchema)]
pub(crate) struct LegacyReport<'a> {
    organization_id: &'a str,
    organization_name: &'a str,
    generated_at: Timestamp,
    service_count: usize,
    all_services_eu_residency: bool,
    services: Vec<LegacyService<'a>>,
    audit_log: LegacyAudit<'a>,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct LegacyService<'a> {
    service_id: &'a str,
    name: &'a str,
    database_type: &'a str,
    version: &'a str,
    status: &'a str,
    zones: &'a [String],
    region: &'a str,
    eu_residency: bool,
    storage_region: &'a str,
    storage_encrypted: bool,
    backup_encryption_enabled: bool,
    tls_enabled: bool,
    backups: LegacyBackups<'a>,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct LegacyBackups<'a> {
    last_completed_at: Option<Timestamp>,
    last_backup_type: Option<&'a str>,
    encryption_enabled: bool,
    encryption_algorithm: Option<&'a str>,
    schedule_enabled: bool,
    schedule_cron: Option<&'a str>,
    retention_days: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct LegacyAudit<'a> {
    retention_policy: &'a str,
    oldest_entry_at: Option<Timestamp>,
    entry_count: u64,
}

const SIGNATURE_MARKER: &[u8] = b",\"signature\"";

/// The legacy report of the caller's organization, signed with the HMAC key.
pub async fn report(app: &App, caller: &Caller) -> Result<Vec<u8>> {
    let Some(key) = &app.hmac_key else {
        return Err(ServiceError::HmacKeyMissing);
    };
    let now = app.now();
    let doc = store::snapshot::snapshot(
        &app.db,
        &app.zones,
        &caller.org_id,
        &Period::month_ending_at(now),
    )
    .await?
    .ok_or(ServiceError::NotFound)?;
    // The posture now: the services that still exist (the month's records
    // also hold those deleted during it).
    let live: Vec<_> = doc
        .services
        .iter()
        .filter(|s| s.deleted_at.is_none())
        .collect();
    let report = LegacyReport {
        organization_id: &doc.organization.id,
        organization_name: &doc.organization.name,
        generated_at: now,
        service_count: live.len(),
        all_services_eu_residency: live.iter().all(|s| s.eu_residency),
        services: live
            .iter()
            .map(|s| LegacyService {
                service_id: &s.service_id,
                name: &s.name,
                database_type: &s.database_type,
                version: &s.version,
                status: &s.status,
                zones: &s.zones,
                region: &s.region,
                eu_residency: s.eu_residency,
                storage_region: &s.storage_region,
                storage_encrypted: s.storage_encrypted,
                backup_encryption_enabled: s.backup_encryption_enabled,
                tls_enabled: s.tls_enabled,
                backups: LegacyBackups {
                    last_completed_at: s.backups.last_completed_at,
                    last_backup_type: s.backups.last_backup_type.as_deref(),
                    encryption_enabled: s.backups.encryption_enabled,
                    encryption_algorithm: s.backups.encryption_algorithm.as_deref(),
                    schedule_enabled: s.backups.schedule_enabled,
                    schedule_cron: s.backups.schedule_cron.as_deref(),
                    retention_days: s.backups.retention_days,
                },
            })
            .collect(),
        audit_log: LegacyAudit {
            retention_policy: &doc.audit_log.retention_policy,
            oldest_entry_at: doc.audit_log.oldest_entry_at,
            entry_count: doc.audit_log.entry_count,
        },
    };
    let bytes = legacy_report_bytes(&report)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(ServiceError::internal)?;
    mac.update(&bytes);
    let value = vouch_engine::signing::hex(&mac.finalize().into_bytes());
    let mut body = Vec::with_capacity(bytes.len() + 120);
    body.extend_from_slice(b"{\"report\":");
    body.extend_from_slice(&bytes);
    body.extend_from_slice(SIGNATURE_MARKER);
    body.extend_from_slice(
        format!(":{{\"algorithm\":\"HMAC-SHA256\",\"value\":\"{value}\"}}}}").as_bytes(),
    );
    caller
        .audit(app, "legacy_report.download", &caller.org_id)
        .await?;
    Ok(body)
}

/// Compact report bytes. Inside a JSON string every `"` is escaped, so `,"`
/// occurs only between members, and no member of the report is named
/// `signature`: the seed's verifier, which slices at the first `,"signature"`,
/// always finds the report's end. Checked anyway, never assumed.
fn legacy_report_bytes(report: &LegacyReport<'_>) -> Result<Vec<u8>> {
    let bytes = serde_json::to_vec(report).map_err(ServiceError::internal)?;
    if bytes
        .windows(SIGNATURE_MARKER.len())
        .any(|w| w == SIGNATURE_MARKER)
    {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "the legacy report contains the signature marker"
        )));
    }
    Ok(bytes)
}
