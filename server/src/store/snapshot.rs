//! The records document of an organization for a period, assembled from the
//! database. The audit-log summary comes from SQL aggregates over the
//! `(organization_id, at)` index, never from loading the entries.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use sqlx::Row;
use vouch_engine::records::{
    Absence, AuditLog, AuditPeriod, BackupConfig, BackupRun, Backups, Location, Member,
    MemberInterval, Organization, Processor, RecordsDocument, RestoreTest, Service,
    ServiceInterval,
};
use vouch_engine::{Period, Timestamp};

use super::{get_flag, opt_bool, opt_list, Db, ReadTx};
use crate::import::{MemberState, ServiceConfig};
use crate::zones::Catalogue;

/// Restore tests this far back before the period end are included.
const RESTORE_TEST_LOOKBACK_SECS: i64 = 400 * 86_400;

fn ts(secs: i64) -> Result<Timestamp> {
    Timestamp::from_unix_seconds(secs).context("timestamp out of range in the database")
}

/// Each service of the organization with the last change of its history at
/// or before the period start (`$2`) and its first change ever: one indexed
/// lookup each, however long the history before the period.
const SERVICES_WITH_HISTORY: &str = "SELECT s.*, \
    b.at AS base_at, b.state AS base_state, f.at AS first_at, f.event AS first_event \
  FROM services s \
  LEFT JOIN service_changes b ON b.change_id = (SELECT c.change_id FROM service_changes c \
      WHERE c.service_id = s.service_id AND c.at <= $2 ORDER BY c.at DESC, c.change_id DESC LIMIT 1) \
  LEFT JOIN service_changes f ON f.change_id = (SELECT c.change_id FROM service_changes c \
      WHERE c.service_id = s.service_id ORDER BY c.at, c.change_id LIMIT 1) \
  WHERE s.organization_id = $1 ORDER BY s.service_id";

const SERVICE_CHANGES_IN_PERIOD: &str =
    "SELECT service_id AS resource, at, state FROM service_changes \
  WHERE organization_id = $1 AND at > $2 AND at <= $3 ORDER BY service_id, at, change_id";

/// The same for every member of the organization, present or with history.
const MEMBERS_WITH_HISTORY: &str = "SELECT u.username, m.role AS current_role, usr.mfa_enabled AS current_mfa, \
    b.at AS base_at, b.state AS base_state, f.at AS first_at, f.event AS first_event \
  FROM (SELECT username FROM memberships WHERE organization_id = $1 \
        UNION SELECT username FROM member_changes WHERE organization_id = $1) u \
  JOIN users usr ON usr.username = u.username \
  LEFT JOIN memberships m ON m.organization_id = $1 AND m.username = u.username \
  LEFT JOIN member_changes b ON b.change_id = (SELECT c.change_id FROM member_changes c \
      WHERE c.organization_id = $1 AND c.username = u.username AND c.at <= $2 ORDER BY c.at DESC, c.change_id DESC LIMIT 1) \
  LEFT JOIN member_changes f ON f.change_id = (SELECT c.change_id FROM member_changes c \
      WHERE c.organization_id = $1 AND c.username = u.username ORDER BY c.at, c.change_id LIMIT 1) \
  ORDER BY u.username";

const MEMBER_CHANGES_IN_PERIOD: &str =
    "SELECT username AS resource, at, state FROM member_changes \
  WHERE organization_id = $1 AND at > $2 AND at <= $3 ORDER BY username, at, change_id";

/// One change of a history: when, and the state after it (`None`: the
/// resource ended).
struct Change {
    at: i64,
    state: Option<String>,
}

/// The changes of the period, by resource.
async fn changes_in_period(
    tx: &mut ReadTx,
    sql: &str,
    org_id: &str,
    start: i64,
    end: i64,
) -> Result<BTreeMap<String, Vec<Change>>> {
    let mut out: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for r in sqlx::query(sql)
        .bind(org_id)
        .bind(start)
        .bind(end)
        .fetch_all(tx.conn())
        .await?
    {
        out.entry(r.try_get("resource")?).or_default().push(Change {
            at: r.try_get("at")?,
            state: r.try_get("state")?,
        });
    }
    Ok(out)
}

/// What a resource's history says before the period: its state at the start
/// and how its history begins.
struct Ends {
    base: Option<Change>,
    /// The first change ever, and its event; `None`: no history at all.
    first: Option<(i64, String)>,
}

/// A resource within the period: when it began and ended (where that lies
/// in or before the period and the history records it), and its states.
struct Lifetime<S> {
    began: Option<i64>,
    ended: Option<i64>,
    intervals: Vec<(i64, i64, S)>,
    /// Stretches between an end and a new beginning inside the period.
    absent: Vec<(i64, i64)>,
}

impl Ends {
    fn read(r: &sqlx::any::AnyRow) -> Result<Ends> {
        let base = match r.try_get::<Option<i64>, _>("base_at")? {
            Some(at) => Some(Change {
                at,
                state: r.try_get("base_state")?,
            }),
            None => None,
        };
        let first = match r.try_get::<Option<i64>, _>("first_at")? {
            Some(at) => Some((at, r.try_get::<String, _>("first_event")?)),
            None => None,
        };
        Ok(Ends { base, first })
    }

    /// The resource's states within `start..end`, or `None` when the
    /// history says it did not exist then (created after, or ended before).
    fn lifetime<S: serde::de::DeserializeOwned>(
        &self,
        changes: Vec<Change>,
        start: i64,
        end: i64,
    ) -> Result<Option<Lifetime<S>>> {
        let began = match &self.first {
            Some((at, event)) if event == "created" || event == "added" => {
                if *at >= end {
                    return Ok(None);
                }
                Some(*at)
            }
            _ => None,
        };
        let parse = |c: &Change| -> Result<Option<S>> {
            c.state
                .as_deref()
                .map(|t| serde_json::from_str(t).context("a stored configuration does not parse"))
                .transpose()
        };
        let mut current: Option<(i64, S)> = None;
        if let Some(b) = &self.base {
            match parse(b)? {
                Some(s) => current = Some((start, s)),
                // Ended at or before the start, and not back since.
                None if changes.is_empty() => return Ok(None),
                None => {}
            }
        }
        let mut intervals = vec![];
        let mut absent = vec![];
        let mut ended = None;
        for c in &changes {
            if let Some((from, s)) = current.take() {
                if c.at > from {
                    intervals.push((from, c.at, s));
                }
            }
            match parse(c)? {
                Some(s) => {
                    // Back after an end inside the period (a member added
                    // again): not one in between.
                    if let Some(e) = ended.take().filter(|e| c.at > *e) {
                        absent.push((e, c.at));
                    }
                    current = Some((c.at, s));
                }
                None => ended = Some(c.at),
            }
        }
        match current {
            Some((from, s)) if end > from => intervals.push((from, end, s)),
            _ => {}
        }
        // A resource that ended before the start and came back during the
        // period (a member added again) began again then.
        let began = match (&self.base, changes.first()) {
            (Some(b), Some(c)) if b.state.is_none() => Some(c.at),
            _ => began,
        };
        Ok(Some(Lifetime {
            began,
            ended,
            intervals,
            absent,
        }))
    }
}

/// Where a configuration puts a service's data, from the zone catalogue.
#[derive(Clone)]
struct Placement {
    region: String,
    eu_residency: bool,
    segregated: Option<bool>,
    locations: Vec<Location>,
}

fn placement(
    service_id: &str,
    c: &ServiceConfig,
    zones: &Catalogue,
    safeguards: &BTreeMap<String, String>,
) -> Result<Placement> {
    let region = c
        .zones
        .first()
        .and_then(|z| zones.get(z))
        .map(|z| z.region.clone())
        .unwrap_or_else(|| "unknown".into());
    // Residency covers every place the data lives: the zones, the storage
    // region and the backup copies.
    let eu_residency = c
        .zones
        .iter()
        .chain(std::iter::once(&c.storage_region))
        .chain(c.backup_storage_zone.iter())
        .all(|z| zones.is_eu(z));
    let segregated = c
        .backup_storage_zone
        .as_ref()
        .map(|z| !c.zones.contains(z) && z != &c.storage_region);
    let places = c
        .zones
        .iter()
        .map(|z| (z, "zone"))
        .chain(std::iter::once((&c.storage_region, "storage_region")))
        .chain(c.backup_storage_zone.iter().map(|z| (z, "backup_zone")));
    let mut locations = Vec::new();
    for (zone, role) in places {
        locations.push(zones.location(zone, role, safeguards).with_context(|| {
            format!("zone `{zone}` of service `{service_id}` is not in the zone catalogue")
        })?);
    }
    Ok(Placement {
        region,
        eu_residency,
        segregated,
        locations,
    })
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
    // The organization, and the platform as processor (no row: not set up).
    let Some(org) = sqlx::query(
        "SELECT o.id, o.name, o.billing_email, o.privacy_contact_email, o.audit_retention_days, \
         o.transfer_safeguards, p.processor_name, p.contact_email, p.address, p.dpo_email \
         FROM organizations o LEFT JOIN platform p ON p.id = 1 WHERE o.id = $1",
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

    // `processor_name` is NOT NULL: NULL here is the join's, for no row.
    let processor = match org.try_get::<Option<String>, _>("processor_name")? {
        None => None,
        Some(name) => Some(Processor {
            name,
            contact_email: org.try_get("contact_email")?,
            address: org.try_get("address")?,
            dpo_email: org.try_get("dpo_email")?,
        }),
    };

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

    // Service configuration comes from the history, interval by interval;
    // runs, tests and audit entries are taken as of the period.
    let mut changes =
        changes_in_period(&mut tx, SERVICE_CHANGES_IN_PERIOD, org_id, start, end).await?;
    let mut services = Vec::new();
    for r in sqlx::query(SERVICES_WITH_HISTORY)
        .bind(org_id)
        .bind(start)
        .fetch_all(tx.conn())
        .await?
    {
        let service_id: String = r.try_get("service_id")?;
        let ends = Ends::read(&r)?;
        let Some(lifetime) =
            ends.lifetime(changes.remove(&service_id).unwrap_or_default(), start, end)?
        else {
            continue;
        };
        let current = ServiceConfig {
            zones: serde_json::from_str(&r.try_get::<String, _>("zones")?)
                .context("services.zones is not a JSON list")?,
            storage_region: r.try_get("storage_region")?,
            storage_encrypted: get_flag(&r, "storage_encrypted")?,
            backup_encryption_enabled: get_flag(&r, "backup_encryption_enabled")?,
            tls_enabled: get_flag(&r, "tls_enabled")?,
            auth_required: opt_bool(&r, "auth_required")?,
            high_risk_ai: opt_bool(&r, "high_risk_ai")?,
            backup_schedule_enabled: get_flag(&r, "backup_schedule_enabled")?,
            backup_schedule_cron: r.try_get("backup_schedule_cron")?,
            backup_retention_days: r
                .try_get::<Option<i64>, _>("backup_retention_days")?
                .and_then(|d| u32::try_from(d).ok()),
            backup_encryption_algorithm: r.try_get("backup_encryption_algorithm")?,
            backup_storage_zone: r.try_get("backup_storage_zone")?,
        };
        // The intervals of one service mostly share their zones: each
        // placement is derived once.
        type Places = (Vec<String>, String, Option<String>);
        let mut placed: Vec<(Places, Placement)> = vec![];
        let mut place = |config: &ServiceConfig| -> Result<Placement> {
            let same = |(z, r, b): &Places| {
                *z == config.zones
                    && *r == config.storage_region
                    && *b == config.backup_storage_zone
            };
            if let Some((_, p)) = placed.iter().find(|(k, _)| same(k)) {
                return Ok(p.clone());
            }
            let p = placement(&service_id, config, zones, &safeguards)?;
            let key = (
                config.zones.clone(),
                config.storage_region.clone(),
                config.backup_storage_zone.clone(),
            );
            placed.push((key, p.clone()));
            Ok(p)
        };
        let history = lifetime
            .intervals
            .iter()
            .map(|(from, to, config)| {
                let p = place(config)?;
                Ok(ServiceInterval {
                    from: ts(*from)?,
                    to: ts(*to)?,
                    zones: config.zones.clone(),
                    region: p.region,
                    eu_residency: p.eu_residency,
                    storage_region: config.storage_region.clone(),
                    storage_encrypted: config.storage_encrypted,
                    backup_encryption_enabled: config.backup_encryption_enabled,
                    tls_enabled: config.tls_enabled,
                    backups: BackupConfig {
                        encryption_enabled: config.backup_encryption_enabled,
                        encryption_algorithm: config.backup_encryption_algorithm.clone(),
                        schedule_enabled: config.backup_schedule_enabled,
                        schedule_cron: config.backup_schedule_cron.clone(),
                        retention_days: config.backup_retention_days,
                        storage_zone: config.backup_storage_zone.clone(),
                        segregated: p.segregated,
                    },
                    high_risk_ai: config.high_risk_ai,
                    auth_required: config.auth_required,
                    locations: Some(p.locations),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The service's own fields: as it was at the period end (or its
        // deletion); where the history does not reach into the period, as
        // the platform last reported it.
        let config = lifetime.intervals.last().map_or(&current, |(_, _, c)| c);
        let p = place(config)?;
        let (last_completed_at, last_backup_type) = match last.remove(&service_id) {
            Some((at, kind)) => (Some(ts(at)?), Some(kind)),
            None => (None, None),
        };
        services.push(Service {
            name: r.try_get("name")?,
            database_type: r.try_get("database_type")?,
            version: r.try_get("version")?,
            status: r.try_get("status")?,
            region: p.region,
            eu_residency: p.eu_residency,
            storage_region: config.storage_region.clone(),
            storage_encrypted: config.storage_encrypted,
            backup_encryption_enabled: config.backup_encryption_enabled,
            tls_enabled: config.tls_enabled,
            backups: Backups {
                last_completed_at,
                last_backup_type,
                encryption_enabled: config.backup_encryption_enabled,
                encryption_algorithm: config.backup_encryption_algorithm.clone(),
                schedule_enabled: config.backup_schedule_enabled,
                schedule_cron: config.backup_schedule_cron.clone(),
                retention_days: config.backup_retention_days,
                storage_zone: config.backup_storage_zone.clone(),
                segregated: p.segregated,
            },
            data_categories: opt_list(&r, "data_categories")?,
            processing_purposes: opt_list(&r, "processing_purposes")?,
            ict_function: r.try_get("ict_function")?,
            high_risk_ai: config.high_risk_ai,
            auth_required: config.auth_required,
            locations: Some(p.locations),
            backup_runs: Some(runs.remove(&service_id).unwrap_or_default()),
            restore_tests: Some(tests.remove(&service_id).unwrap_or_default()),
            zones: config.zones.clone(),
            created_at: lifetime.began.map(ts).transpose()?,
            deleted_at: lifetime.ended.map(ts).transpose()?,
            history: ends.first.is_some().then_some(history),
            service_id,
        });
    }

    let (oldest, count) = audit_up_to(&mut tx, org_id, end).await?;
    let in_period = audit_in_period(&mut tx, org_id, period).await?;

    let mut changes =
        changes_in_period(&mut tx, MEMBER_CHANGES_IN_PERIOD, org_id, start, end).await?;
    let mut members = Vec::new();
    for r in sqlx::query(MEMBERS_WITH_HISTORY)
        .bind(org_id)
        .bind(start)
        .fetch_all(tx.conn())
        .await?
    {
        let username: String = r.try_get("username")?;
        let ends = Ends::read(&r)?;
        let Some(lifetime) = ends.lifetime::<MemberState>(
            changes.remove(&username).unwrap_or_default(),
            start,
            end,
        )?
        else {
            continue;
        };
        let current = match r.try_get::<Option<String>, _>("current_role")? {
            Some(role) => Some(MemberState {
                role,
                mfa_enabled: get_flag(&r, "current_mfa")?,
            }),
            None => None,
        };
        let Some(state) = lifetime
            .intervals
            .last()
            .map(|(_, _, s)| s.clone())
            .or(current)
        else {
            continue;
        };
        let history = lifetime
            .intervals
            .iter()
            .map(|(from, to, s)| {
                Ok(MemberInterval {
                    from: ts(*from)?,
                    to: ts(*to)?,
                    role: s.role.clone(),
                    mfa_enabled: s.mfa_enabled,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        members.push(Member {
            user_id: username,
            role: state.role,
            mfa_enabled: state.mfa_enabled,
            added_at: lifetime.began.map(ts).transpose()?,
            removed_at: lifetime.ended.map(ts).transpose()?,
            history: ends.first.is_some().then_some(history),
            absent: lifetime
                .absent
                .iter()
                .map(|(from, to)| {
                    Ok(Absence {
                        from: ts(*from)?,
                        to: ts(*to)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        });
    }

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

/// A stretch of an organization's audit log: how many entries, the first
/// and the last, and the longest time between two consecutive ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub entries: i64,
    pub first: i64,
    pub last: i64,
    pub gap: i64,
}

impl Stretch {
    /// This stretch followed by `next` (which starts at or after its end).
    fn then(self, next: Stretch) -> Stretch {
        Stretch {
            entries: self.entries + next.entries,
            first: self.first,
            last: next.last,
            gap: self.gap.max(next.gap).max(next.first - self.last),
        }
    }
}

/// The audit entries of `org` from `lo` to `hi` (inclusive), `None` if there
/// are none, from the hourly totals (migration 0011): an hour wholly inside
/// is read as its totals, and only an hour the bounds cut is read entry by
/// entry, so a month costs about 720 rows and two hours' entries whatever
/// the log holds.
pub async fn audit_stretch(
    tx: &mut ReadTx,
    org: &str,
    lo: i64,
    hi: i64,
) -> Result<Option<Stretch>> {
    if hi < lo {
        return Ok(None);
    }
    let hours = sqlx::query(
        "SELECT hour, entries, first_at, last_at, longest_gap FROM audit_hours \
         WHERE organization_id = $1 AND hour >= $2 AND hour <= $3 ORDER BY hour",
    )
    .bind(org)
    .bind(lo.div_euclid(3600))
    .bind(hi.div_euclid(3600))
    .fetch_all(tx.conn())
    .await?;
    let mut out: Option<Stretch> = None;
    for h in hours {
        let hour: i64 = h.try_get("hour")?;
        let whole = Stretch {
            entries: h.try_get("entries")?,
            first: h.try_get("first_at")?,
            last: h.try_get("last_at")?,
            gap: h.try_get("longest_gap")?,
        };
        let piece = if whole.first >= lo && whole.last <= hi && whole.gap >= 0 {
            Some(whole)
        } else {
            entries_between(tx, org, lo.max(hour * 3600), hi.min(hour * 3600 + 3599)).await?
        };
        if let Some(p) = piece {
            out = Some(match out {
                None => p,
                Some(o) => o.then(p),
            });
        }
    }
    Ok(out)
}

/// The stretch of entries from `lo` to `hi`, read entry by entry (the
/// caller bounds it to part of one hour).
async fn entries_between(tx: &mut ReadTx, org: &str, lo: i64, hi: i64) -> Result<Option<Stretch>> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(at) AS first, MAX(at) AS last, MAX(gap) AS gap FROM \
         (SELECT at, at - LAG(at) OVER (ORDER BY at) AS gap FROM audit_entries \
          WHERE organization_id = $1 AND at >= $2 AND at <= $3) e",
    )
    .bind(org)
    .bind(lo)
    .bind(hi)
    .fetch_one(tx.conn())
    .await?;
    let n: i64 = r.try_get("n")?;
    let (Some(first), Some(last)) = (r.try_get("first")?, r.try_get("last")?) else {
        return Ok(None);
    };
    Ok((n > 0).then_some(Stretch {
        entries: n,
        first,
        last,
        gap: r.try_get::<Option<i64>, _>("gap")?.unwrap_or(0),
    }))
}

/// The oldest entry of `org` at or before `end`, and how many there are:
/// the hours before `end`'s summed, and `end`'s own hour as a stretch.
async fn audit_up_to(tx: &mut ReadTx, org: &str, end: i64) -> Result<(Option<i64>, i64)> {
    let hour = end.div_euclid(3600);
    let before = sqlx::query(
        "SELECT CAST(COALESCE(SUM(entries), 0) AS BIGINT) AS n, MIN(first_at) AS oldest \
         FROM audit_hours WHERE organization_id = $1 AND hour < $2",
    )
    .bind(org)
    .bind(hour)
    .fetch_one(tx.conn())
    .await?;
    let (n, oldest): (i64, Option<i64>) = (before.try_get("n")?, before.try_get("oldest")?);
    let last = audit_stretch(tx, org, hour * 3600, end).await?;
    Ok(match last {
        Some(s) => (oldest.or(Some(s.first)), n + s.entries),
        None => (oldest, n),
    })
}

/// Entries written during the period, and the longest stretch of it without
/// one ([`audit_stretch`]). Entries at the same second are 0 apart whichever
/// comes first.
async fn audit_in_period(tx: &mut ReadTx, org_id: &str, period: &Period) -> Result<AuditPeriod> {
    let (start, end) = (period.start.unix_seconds(), period.end.unix_seconds());
    let stretch = audit_stretch(tx, org_id, start, end).await?;
    let n = stretch.map_or(0, |s| s.entries);
    let longest = match stretch {
        Some(s) => (s.first - start).max(end - s.last).max(s.gap),
        None => end - start,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit;

    /// What the hourly totals stand for, straight from the entries: the
    /// queries snapshots ran before migration 0011.
    async fn direct(db: &Db, org: &str, lo: i64, hi: i64) -> (Option<Stretch>, Option<i64>, i64) {
        let mut tx = db.read().await.unwrap();
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at) AS first, MAX(at) AS last FROM audit_entries \
             WHERE organization_id = $1 AND at >= $2 AND at <= $3",
        )
        .bind(org)
        .bind(lo)
        .bind(hi)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        let n: i64 = r.try_get("n").unwrap();
        let gap: Option<i64> = sqlx::query(
            "SELECT MAX(gap) AS gap FROM (SELECT at - LAG(at) OVER (ORDER BY at) AS gap \
             FROM audit_entries WHERE organization_id = $1 AND at >= $2 AND at <= $3) gaps",
        )
        .bind(org)
        .bind(lo)
        .bind(hi)
        .fetch_one(tx.conn())
        .await
        .unwrap()
        .try_get("gap")
        .unwrap();
        let stretch = (n > 0).then(|| Stretch {
            entries: n,
            first: r.try_get("first").unwrap(),
            last: r.try_get("last").unwrap(),
            gap: gap.unwrap_or(0),
        });
        let up = sqlx::query(
            "SELECT MIN(at) AS oldest, COUNT(*) AS n FROM audit_entries WHERE organization_id = $1 AND at <= $2",
        )
        .bind(org)
        .bind(hi)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        (
            stretch,
            up.try_get("oldest").unwrap(),
            up.try_get("n").unwrap(),
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// The hourly totals answer what the entries answer, for entries
        /// written in any order (imports write past events), at equal
        /// seconds, across hour boundaries, and for any bounds.
        #[test]
        fn the_hourly_totals_answer_what_the_entries_answer(
            entries in proptest::collection::vec((0..3usize, 0i64..6 * 3600), 0..60),
            bounds in proptest::collection::vec((0i64..7 * 3600, 0i64..7 * 3600), 1..8),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let db = Db::connect("sqlite::memory:").await.unwrap();
                let base = 1_780_000_000 - 1_780_000_000 % 3600 - 1800;
                let orgs = ["a", "b", "c"];
                for (org, at) in &entries {
                    let mut tx = db.write().await.unwrap();
                    audit::append_tx(&mut tx, &audit::Entry {
                        organization_id: Some(orgs[*org]),
                        at: Timestamp::from_unix_seconds(base + at).unwrap(),
                        actor: "t",
                        action: "a",
                        target: "x",
                        remote_addr: None,
                    })
                    .await
                    .unwrap();
                    tx.commit().await.unwrap();
                }
                for (x, y) in &bounds {
                    let (lo, hi) = (base + x.min(y), base + x.max(y));
                    for org in orgs {
                        let (stretch, oldest, count) = direct(&db, org, lo, hi).await;
                        let mut tx = db.read().await.unwrap();
                        let got = audit_stretch(&mut tx, org, lo, hi).await.unwrap();
                        proptest::prop_assert_eq!(got, stretch, "{} {}..{}", org, lo, hi);
                        let up = audit_up_to(&mut tx, org, hi).await.unwrap();
                        proptest::prop_assert_eq!(up, (oldest, count), "{} up to {}", org, hi);
                    }
                }
                Ok(())
            })?;
        }
    }

    /// The processor is the platform's row when there is one, and none
    /// (GDPR's controls then say what is missing) when there is not; an
    /// organization that does not exist has no snapshot.
    #[tokio::test]
    async fn the_processor_is_the_platform_row_and_none_without_one() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let zones = Catalogue::builtin().unwrap();
        sqlx::query(
            "INSERT INTO organizations (id, name, billing_email, created_at, updated_at) \
             VALUES ('o', 'O', 'billing@o.example', 0, 0)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let period = Period::new(
            Timestamp::from_unix_seconds(1_780_000_000).unwrap(),
            Timestamp::from_unix_seconds(1_780_086_400).unwrap(),
        )
        .unwrap();
        let (db, zones, period) = (&db, &zones, &period);
        let processor = move || async move {
            snapshot(db, zones, "o", period)
                .await
                .unwrap()
                .expect("the organization exists")
                .processor
        };
        assert_eq!(processor().await, None);
        sqlx::query(
            "INSERT INTO platform (id, processor_name, contact_email, address, dpo_email, updated_at) \
             VALUES (1, 'P', 'contact@p.example', NULL, 'dpo@p.example', 0)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        assert_eq!(
            processor().await,
            Some(Processor {
                name: "P".into(),
                contact_email: "contact@p.example".into(),
                address: None,
                dpo_email: Some("dpo@p.example".into()),
            })
        );
        assert!(snapshot(db, zones, "p", period).await.unwrap().is_none());
    }
}
