//! The records document of an organization for a period, assembled from the
//! database. The audit-log summary comes from SQL aggregates over the
//! `(organization_id, at)` index, never from loading the entries.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use sqlx::Row;
use vouch_engine::records::{
    AuditLog, AuditPeriod, BackupRun, Backups, Member, Organization, Processor, RecordsDocument,
    RestoreTest, Service,
};
use vouch_engine::{Period, Timestamp};

use super::{get_flag, opt_bool, opt_list, Db, ReadTx};
use crate::zones::Catalogue;

/// Restore tests this far back before the period end are included.
const RESTORE_TEST_LOOKBACK_SECS: i64 = 400 * 86_400;

fn ts(secs: i64) -> Result<Timestamp> {
    Timestamp::from_unix_seconds(secs).context("timestamp out of range in the database")
}

/// `None` when the organization does not exist.
pub async fn snapshot(
    db: &Db,
    zones: &Catalogue,
    org_id: &str,
    period: &Period,
) -> Result<Option<RecordsDocument>> {
    let end = period.end.unix_seconds();
    let start = period.start.unix_seconds();
    // Every statement below reads the same state of the database.
    let mut tx = db.read().await?;
    let Some(org) = sqlx::query(
        "SELECT id, name, billing_email, privacy_contact_email, audit_retention_days, transfer_safeguards FROM organizations WHERE id = $1",
    )
    .bind(org_id)
    .fetch_optional(tx.conn())
    .await?
    else {
        return Ok(None);
    };
    let retention_days: Option<i64> = org.try_get("audit_retention_days")?;
    let safeguards: BTreeMap<String, String> =
        match org.try_get::<Option<String>, _>("transfer_safeguards")? {
            Some(text) => serde_json::from_str(&text)
                .context("organizations.transfer_safeguards is not a JSON object of strings")?,
            None => BTreeMap::new(),
        };
    let organization = Organization {
        id: org.try_get("id")?,
        name: org.try_get("name")?,
        billing_email: org.try_get("billing_email")?,
        privacy_contact_email: org.try_get("privacy_contact_email")?,
    };

    let processor = sqlx::query(
        "SELECT processor_name, contact_email, address, dpo_email FROM platform WHERE id = 1",
    )
    .fetch_optional(tx.conn())
    .await?
    .map(|r| -> Result<Processor> {
        Ok(Processor {
            name: r.try_get("processor_name")?,
            contact_email: r.try_get("contact_email")?,
            address: r.try_get("address")?,
            dpo_email: r.try_get("dpo_email")?,
        })
    })
    .transpose()?;

    // Runs of the period, by service.
    let mut runs: BTreeMap<String, Vec<BackupRun>> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT run_id, service_id, started_at, completed_at, status, backup_type FROM backup_runs \
         WHERE organization_id = $1 AND started_at <= $2 AND (started_at >= $3 OR completed_at >= $3) ORDER BY started_at, run_id",
    )
    .bind(org_id)
    .bind(end)
    .bind(start)
    .fetch_all(tx.conn())
    .await?
    {
        let completed: Option<i64> = r.try_get("completed_at")?;
        let status: String = r.try_get("status")?;
        // A run that finished after the period end was still running at it.
        let (status, completed_at) = match completed {
            Some(c) if c > end => ("running".to_owned(), None),
            other => (status, other.map(ts).transpose()?),
        };
        runs.entry(r.try_get("service_id")?).or_default().push(BackupRun {
            run_id: r.try_get("run_id")?,
            started_at: ts(r.try_get("started_at")?)?,
            completed_at,
            status,
            backup_type: r.try_get("backup_type")?,
        });
    }
    // The last successful backup at the period end, by service.
    let mut last: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT service_id, completed_at, backup_type FROM ( \
           SELECT service_id, completed_at, backup_type, \
                  ROW_NUMBER() OVER (PARTITION BY service_id ORDER BY completed_at DESC, run_id DESC) AS rn \
           FROM backup_runs WHERE organization_id = $1 AND status = 'succeeded' AND completed_at <= $2) latest \
         WHERE rn = 1",
    )
    .bind(org_id)
    .bind(end)
    .fetch_all(tx.conn())
    .await?
    {
        last.entry(r.try_get("service_id")?)
            .or_insert((r.try_get("completed_at")?, r.try_get("backup_type")?));
    }
    let mut tests: BTreeMap<String, Vec<RestoreTest>> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT test_id, service_id, performed_at, succeeded FROM restore_tests \
         WHERE organization_id = $1 AND performed_at <= $2 AND performed_at >= $3 ORDER BY performed_at, test_id",
    )
    .bind(org_id)
    .bind(end)
    .bind(end - RESTORE_TEST_LOOKBACK_SECS)
    .fetch_all(tx.conn())
    .await?
    {
        tests.entry(r.try_get("service_id")?).or_default().push(RestoreTest {
            test_id: r.try_get("test_id")?,
            performed_at: ts(r.try_get("performed_at")?)?,
            succeeded: get_flag(&r, "succeeded")?,
        });
    }

    let mut services = Vec::new();
    // Service configuration is the platform's current one; runs, tests and
    // audit entries are taken as of the period.
    for r in sqlx::query("SELECT * FROM services WHERE organization_id = $1 ORDER BY service_id")
        .bind(org_id)
        .fetch_all(tx.conn())
        .await?
    {
        let service_id: String = r.try_get("service_id")?;
        let zones_list: Vec<String> =
            serde_json::from_str(&r.try_get::<String, _>("zones")?).unwrap_or_default();
        let storage_region: String = r.try_get("storage_region")?;
        let storage_zone: Option<String> = r.try_get("backup_storage_zone")?;
        let region = zones_list
            .first()
            .and_then(|z| zones.get(z))
            .map(|z| z.region.clone())
            .unwrap_or_else(|| "unknown".into());
        // Residency covers every place the data lives: the zones, the storage
        // region and the backup copies.
        let eu_residency = zones_list
            .iter()
            .chain(std::iter::once(&storage_region))
            .chain(storage_zone.iter())
            .all(|z| zones.is_eu(z));
        let segregated = storage_zone
            .as_ref()
            .map(|z| !zones_list.contains(z) && z != &storage_region);
        let mut locations = Vec::new();
        let places = zones_list
            .iter()
            .map(|z| (z, "zone"))
            .chain(std::iter::once((&storage_region, "storage_region")))
            .chain(storage_zone.iter().map(|z| (z, "backup_zone")));
        for (zone, role) in places {
            locations.push(zones.location(zone, role, &safeguards).with_context(|| {
                format!("zone `{zone}` of service `{service_id}` is not in the zone catalogue")
            })?);
        }
        let retention: Option<i64> = r.try_get("backup_retention_days")?;
        let encryption_enabled = get_flag(&r, "backup_encryption_enabled")?;
        let (last_completed_at, last_backup_type) = match last.remove(&service_id) {
            Some((at, kind)) => (Some(ts(at)?), Some(kind)),
            None => (None, None),
        };
        services.push(Service {
            name: r.try_get("name")?,
            database_type: r.try_get("database_type")?,
            version: r.try_get("version")?,
            status: r.try_get("status")?,
            region,
            eu_residency,
            storage_region,
            storage_encrypted: get_flag(&r, "storage_encrypted")?,
            backup_encryption_enabled: encryption_enabled,
            tls_enabled: get_flag(&r, "tls_enabled")?,
            backups: Backups {
                last_completed_at,
                last_backup_type,
                encryption_enabled,
                encryption_algorithm: r.try_get("backup_encryption_algorithm")?,
                schedule_enabled: get_flag(&r, "backup_schedule_enabled")?,
                schedule_cron: r.try_get("backup_schedule_cron")?,
                retention_days: retention.and_then(|d| u32::try_from(d).ok()),
                storage_zone,
                segregated,
            },
            data_categories: opt_list(&r, "data_categories")?,
            processing_purposes: opt_list(&r, "processing_purposes")?,
            ict_function: r.try_get("ict_function")?,
            high_risk_ai: opt_bool(&r, "high_risk_ai")?,
            auth_required: opt_bool(&r, "auth_required")?,
            locations: Some(locations),
            backup_runs: Some(runs.remove(&service_id).unwrap_or_default()),
            restore_tests: Some(tests.remove(&service_id).unwrap_or_default()),
            zones: zones_list,
            service_id,
        });
    }

    let audit = sqlx::query(
        "SELECT MIN(at) AS oldest, COUNT(*) AS n FROM audit_entries WHERE organization_id = $1 AND at <= $2",
    )
    .bind(org_id)
    .bind(end)
    .fetch_one(tx.conn())
    .await?;
    let oldest: Option<i64> = audit.try_get("oldest")?;
    let count: i64 = audit.try_get("n")?;
    let in_period = audit_in_period(&mut tx, org_id, period).await?;

    let members = sqlx::query(
        "SELECT m.username, m.role, u.mfa_enabled FROM memberships m JOIN users u ON u.username = m.username \
         WHERE m.organization_id = $1 ORDER BY m.username",
    )
    .bind(org_id)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|r| -> Result<Member> {
        Ok(Member {
            user_id: r.try_get("username")?,
            role: r.try_get("role")?,
            mfa_enabled: get_flag(&r, "mfa_enabled")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;

    let doc = RecordsDocument {
        organization,
        processor,
        services,
        audit_log: AuditLog {
            retention_policy: match retention_days {
                Some(d) => format!("{d} days"),
                None => "indefinite".into(),
            },
            oldest_entry_at: oldest.map(ts).transpose()?,
            entry_count: u64::try_from(count).unwrap_or(0),
            retention_days: retention_days.and_then(|d| u32::try_from(d).ok()),
            in_period: Some(in_period),
        },
        members: Some(members),
    };
    // What the database holds entered through the import's checks; a
    // contradiction here is a bug, and no packet is computed from it.
    doc.check_consistency()
        .context("the records assembled from the database contradict themselves")?;
    Ok(Some(doc))
}

/// Entries written during the period, and the longest stretch of it without
/// one, from SQL over the `(organization_id, at)` index.
async fn audit_in_period(tx: &mut ReadTx, org_id: &str, period: &Period) -> Result<AuditPeriod> {
    let (start, end) = (period.start.unix_seconds(), period.end.unix_seconds());
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(at) AS first, MAX(at) AS last FROM audit_entries \
         WHERE organization_id = $1 AND at >= $2 AND at <= $3",
    )
    .bind(org_id)
    .bind(start)
    .bind(end)
    .fetch_one(tx.conn())
    .await?;
    let n: i64 = row.try_get("n")?;
    let first: Option<i64> = row.try_get("first")?;
    let last: Option<i64> = row.try_get("last")?;
    let inner: Option<i64> = sqlx::query(
        "SELECT MAX(gap) AS gap FROM (SELECT at - LAG(at) OVER (ORDER BY at, entry_id) AS gap \
         FROM audit_entries WHERE organization_id = $1 AND at >= $2 AND at <= $3) gaps",
    )
    .bind(org_id)
    .bind(start)
    .bind(end)
    .fetch_one(tx.conn())
    .await?
    .try_get("gap")?;
    let longest = match (first, last) {
        (Some(f), Some(l)) => (f - start).max(end - l).max(inner.unwrap_or(0)),
        _ => end - start,
    };
    Ok(AuditPeriod {
        start: period.start,
        end: period.end,
        entries_in_period: u64::try_from(n).context("negative count")?,
        longest_gap_hours: u64::try_from(longest.max(0))
            .context("negative gap")?
            .div_ceil(3600),
    })
}
