//! Writing a batch of platform records (see [`crate::import`] for what a
//! batch is and how it is checked before it gets here).

use std::collections::{BTreeMap, BTreeSet};

use vouch_engine::Timestamp;

use super::history::{self, Resource, Touched};
use super::{audit, flag, Db, WriteTx};
use crate::import::{invalid, Actor, Applied, Batch, ImportError, MemberState, ServiceConfig};

fn list_json(list: &Option<Vec<String>>) -> Option<String> {
    list.as_ref()
        .map(|l| serde_json::to_string(l).unwrap_or_else(|_| "[]".into()))
}

/// Looks up which organization each of `ids` belongs to (within the transaction).
async fn owners(
    tx: &mut WriteTx,
    sql: &str,
    ids: &BTreeSet<&str>,
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let mut out = BTreeMap::new();
    for id in ids {
        if let Some(row) = sqlx::query_as::<_, (String,)>(sql)
            .bind(*id)
            .fetch_optional(tx.conn())
            .await?
        {
            out.insert((*id).to_owned(), row.0);
        }
    }
    Ok(out)
}

/// Organizations known to exist in this transaction, so that a batch of many
/// services or events for one organization asks the database once.
#[derive(Default)]
struct KnownOrganizations(BTreeSet<String>);

impl KnownOrganizations {
    async fn contains(&mut self, tx: &mut WriteTx, id: &str) -> Result<bool, sqlx::Error> {
        if self.0.contains(id) {
            return Ok(true);
        }
        let found = exists(tx, "SELECT 1 FROM organizations WHERE id = $1", id).await?;
        if found {
            self.0.insert(id.to_owned());
        }
        Ok(found)
    }
}

async fn exists(tx: &mut WriteTx, sql: &str, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(sql)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .is_some())
}

/// Applies a validated batch in one transaction, with vouch's own audit entry
/// for every organization it touched; `hashes` are the users' password hashes
/// in order ([`crate::import::password_hashes`]). Counts only rows written: a
/// replayed event is not counted, and a record whose id another organization's
/// (or another service's) record holds refuses the whole batch.
pub async fn apply(
    db: &Db,
    batch: &Batch,
    hashes: Vec<String>,
    actor: &Actor,
    now: Timestamp,
) -> Result<Applied, ImportError> {
    let mut tx = db.write().await?;
    tracing::info!(actor = %actor.name, "import transaction open");
    let t = now.unix_seconds();
    let mut known = KnownOrganizations::default();
    let mut applied = Applied::default();
    let mut touched: BTreeSet<String> = BTreeSet::new();

    if let Some(p) = &batch.platform {
        sqlx::query(
            "INSERT INTO platform (id, processor_name, contact_email, address, dpo_email, updated_at) VALUES (1, $1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET processor_name = excluded.processor_name, contact_email = excluded.contact_email, \
             address = excluded.address, dpo_email = excluded.dpo_email, updated_at = excluded.updated_at",
        )
        .bind(&p.processor_name)
        .bind(&p.contact_email)
        .bind(&p.address)
        .bind(&p.dpo_email)
        .bind(t)
        .execute(tx.conn())
        .await?;
        applied.platform = 1;
    }
    for o in &batch.organizations {
        sqlx::query(
            "INSERT INTO organizations (id, name, billing_email, privacy_contact_email, audit_retention_days, transfer_safeguards, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (id) DO UPDATE SET name = excluded.name, billing_email = excluded.billing_email, \
             privacy_contact_email = excluded.privacy_contact_email, audit_retention_days = excluded.audit_retention_days, \
             transfer_safeguards = excluded.transfer_safeguards, updated_at = excluded.updated_at",
        )
        .bind(&o.id)
        .bind(&o.name)
        .bind(&o.billing_email)
        .bind(&o.privacy_contact_email)
        .bind(o.audit_retention_days.map(i64::from))
        // Serializing a map of strings cannot fail; were it to, no safeguard
        // is recorded and the transfer is reported as having none (fail closed).
        .bind(
            o.transfer_safeguards
                .as_ref()
                .and_then(|m| serde_json::to_string(m).ok()),
        )
        .bind(t)
        .execute(tx.conn())
        .await?;
        touched.insert(o.id.clone());
        applied.organizations += 1;
    }
    for (u, hash) in batch.users.iter().zip(hashes) {
        sqlx::query(
            "INSERT INTO users (username, password_hash, mfa_enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, mfa_enabled = excluded.mfa_enabled, updated_at = excluded.updated_at",
        )
        .bind(&u.username)
        .bind(hash)
        .bind(flag(u.mfa_enabled))
        .bind(t)
        .execute(tx.conn())
        .await?;
        applied.users += 1;
    }
    for (i, m) in batch.memberships.iter().enumerate() {
        if !known.contains(&mut tx, &m.organization_id).await? {
            return Err(invalid(
                format!("$.memberships[{i}].organization_id"),
                format!("unknown organization `{}`", m.organization_id),
            ));
        }
        if !exists(
            &mut tx,
            "SELECT 1 FROM users WHERE username = $1",
            &m.username,
        )
        .await?
        {
            return Err(invalid(
                format!("$.memberships[{i}].username"),
                format!("unknown user `{}`", m.username),
            ));
        }
        sqlx::query(
            "INSERT INTO memberships (organization_id, username, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (organization_id, username) DO UPDATE SET role = excluded.role",
        )
        .bind(&m.organization_id)
        .bind(&m.username)
        .bind(&m.role)
        .bind(t)
        .execute(tx.conn())
        .await?;
        touched.insert(m.organization_id.clone());
        applied.memberships += 1;
    }
    let service_ids: BTreeSet<&str> = batch
        .services
        .iter()
        .map(|s| s.service_id.as_str())
        .collect();
    let existing = owners(
        &mut tx,
        "SELECT organization_id FROM services WHERE service_id = $1",
        &service_ids,
    )
    .await?;
    for (i, s) in batch.services.iter().enumerate() {
        if !known.contains(&mut tx, &s.organization_id).await? {
            return Err(invalid(
                format!("$.services[{i}].organization_id"),
                format!("unknown organization `{}`", s.organization_id),
            ));
        }
        if let Some(owner) = existing.get(&s.service_id) {
            if owner != &s.organization_id {
                return Err(invalid(
                    format!("$.services[{i}].organization_id"),
                    format!("service `{}` belongs to organization `{owner}`; services do not move between organizations", s.service_id),
                ));
            }
        }
        let p = &s.backup_policy;
        sqlx::query(
            "INSERT INTO services (service_id, organization_id, name, database_type, version, status, zones, storage_region, \
             storage_encrypted, backup_encryption_enabled, tls_enabled, auth_required, high_risk_ai, ict_function, data_categories, \
             processing_purposes, backup_schedule_enabled, backup_schedule_cron, backup_retention_days, backup_encryption_algorithm, \
             backup_storage_zone, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $22) \
             ON CONFLICT (service_id) DO UPDATE SET name = excluded.name, database_type = excluded.database_type, version = excluded.version, \
             status = excluded.status, zones = excluded.zones, storage_region = excluded.storage_region, storage_encrypted = excluded.storage_encrypted, \
             backup_encryption_enabled = excluded.backup_encryption_enabled, tls_enabled = excluded.tls_enabled, auth_required = excluded.auth_required, \
             high_risk_ai = excluded.high_risk_ai, ict_function = excluded.ict_function, data_categories = excluded.data_categories, \
             processing_purposes = excluded.processing_purposes, backup_schedule_enabled = excluded.backup_schedule_enabled, \
             backup_schedule_cron = excluded.backup_schedule_cron, backup_retention_days = excluded.backup_retention_days, \
             backup_encryption_algorithm = excluded.backup_encryption_algorithm, backup_storage_zone = excluded.backup_storage_zone, \
             updated_at = excluded.updated_at",
        )
        .bind(&s.service_id)
        .bind(&s.organization_id)
        .bind(&s.name)
        .bind(&s.database_type)
        .bind(&s.version)
        .bind(&s.status)
        .bind(serde_json::to_string(&s.zones).unwrap_or_else(|_| "[]".into()))
        .bind(&s.storage_region)
        .bind(flag(s.storage_encrypted))
        .bind(flag(s.backup_encryption_enabled))
        .bind(flag(s.tls_enabled))
        .bind(s.auth_required.map(flag))
        .bind(s.high_risk_ai.map(flag))
        .bind(&s.ict_function)
        .bind(list_json(&s.data_categories))
        .bind(list_json(&s.processing_purposes))
        .bind(flag(p.schedule_enabled))
        .bind(&p.schedule_cron)
        .bind(p.retention_days.map(i64::from))
        .bind(&p.encryption_algorithm)
        .bind(&p.storage_zone)
        .bind(t)
        .execute(tx.conn())
        .await?;
        touched.insert(s.organization_id.clone());
        applied.services += 1;
    }
    let run_services: BTreeSet<&str> = batch
        .backup_runs
        .iter()
        .map(|r| r.service_id.as_str())
        .chain(batch.restore_tests.iter().map(|r| r.service_id.as_str()))
        .collect();
    let service_org = owners(
        &mut tx,
        "SELECT organization_id FROM services WHERE service_id = $1",
        &run_services,
    )
    .await?;
    let run_ids: BTreeSet<&str> = batch
        .backup_runs
        .iter()
        .map(|r| r.run_id.as_str())
        .collect();
    let run_service = owners(
        &mut tx,
        "SELECT service_id FROM backup_runs WHERE run_id = $1",
        &run_ids,
    )
    .await?;
    let test_ids: BTreeSet<&str> = batch
        .restore_tests
        .iter()
        .map(|r| r.test_id.as_str())
        .collect();
    let test_service = owners(
        &mut tx,
        "SELECT service_id FROM restore_tests WHERE test_id = $1",
        &test_ids,
    )
    .await?;
    for (i, r) in batch.backup_runs.iter().enumerate() {
        let Some(org) = service_org.get(&r.service_id) else {
            return Err(invalid(
                format!("$.backup_runs[{i}].service_id"),
                format!("unknown service `{}`", r.service_id),
            ));
        };
        if let Some(other) = run_service.get(&r.run_id).filter(|s| **s != r.service_id) {
            return Err(invalid(
                format!("$.backup_runs[{i}].run_id"),
                format!(
                    "backup run `{}` is already recorded for service `{other}`; a run does not move between services",
                    r.run_id
                ),
            ));
        }
        sqlx::query(
            "INSERT INTO backup_runs (run_id, service_id, organization_id, started_at, completed_at, status, backup_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id) DO UPDATE SET completed_at = excluded.completed_at, \
             status = excluded.status, backup_type = excluded.backup_type, started_at = excluded.started_at",
        )
        .bind(&r.run_id)
        .bind(&r.service_id)
        .bind(org)
        .bind(r.started_at.unix_seconds())
        .bind(r.completed_at.map(|c| c.unix_seconds()))
        .bind(&r.status)
        .bind(&r.backup_type)
        .execute(tx.conn())
        .await?;
        touched.insert(org.clone());
        applied.backup_runs += 1;
    }
    for (i, r) in batch.restore_tests.iter().enumerate() {
        let Some(org) = service_org.get(&r.service_id) else {
            return Err(invalid(
                format!("$.restore_tests[{i}].service_id"),
                format!("unknown service `{}`", r.service_id),
            ));
        };
        if let Some(other) = test_service.get(&r.test_id).filter(|s| **s != r.service_id) {
            return Err(invalid(
                format!("$.restore_tests[{i}].test_id"),
                format!(
                    "restore test `{}` is already recorded for service `{other}`; a test does not move between services",
                    r.test_id
                ),
            ));
        }
        sqlx::query(
            "INSERT INTO restore_tests (test_id, service_id, organization_id, performed_at, succeeded) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (test_id) DO UPDATE SET performed_at = excluded.performed_at, succeeded = excluded.succeeded",
        )
        .bind(&r.test_id)
        .bind(&r.service_id)
        .bind(org)
        .bind(r.performed_at.unix_seconds())
        .bind(flag(r.succeeded))
        .execute(tx.conn())
        .await?;
        touched.insert(org.clone());
        applied.restore_tests += 1;
    }
    for (i, e) in batch.audit_events.iter().enumerate() {
        if !known.contains(&mut tx, &e.organization_id).await? {
            return Err(invalid(
                format!("$.audit_events[{i}].organization_id"),
                format!("unknown organization `{}`", e.organization_id),
            ));
        }
        let id = format!("import:{}", e.event_id);
        let entry = audit::Entry {
            organization_id: Some(&e.organization_id),
            at: e.at,
            actor: &e.actor,
            action: &e.action,
            target: &e.target,
            remote_addr: e.remote_addr.as_deref(),
        };
        if audit::import_event(&mut tx, &id, &entry).await? {
            touched.insert(e.organization_id.clone());
            applied.audit_events += 1;
            continue;
        }
        // The id is taken: a replay of the same event changes nothing; any
        // other event under that id is a conflict, refused.
        let same =
            audit::imported(&mut tx, &id)
                .await?
                .is_some_and(|(org, at, actor, action, target)| {
                    org.as_deref() == Some(e.organization_id.as_str())
                        && at == e.at.unix_seconds()
                        && actor == e.actor
                        && action == e.action
                        && target == e.target
                });
        if !same {
            return Err(invalid(
                format!("$.audit_events[{i}].event_id"),
                format!(
                    "audit event `{}` was already imported with other content (organization, time, actor, action or target); an event id names one event",
                    e.event_id
                ),
            ));
        }
    }
    apply_history(
        db,
        &mut tx,
        batch,
        now,
        &mut known,
        &mut applied,
        &mut touched,
    )
    .await?;
    let summary = serde_json::to_string(&applied).unwrap_or_default();
    for org in &touched {
        audit::append_tx(
            &mut tx,
            &audit::Entry {
                organization_id: Some(org),
                at: now,
                actor: &actor.name,
                action: "records.import",
                target: &summary,
                remote_addr: actor.remote_addr.as_deref(),
            },
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(actor = %actor.name, "import committed");
    Ok(applied)
}

/// A change dated after it is recorded is refused: the platform reports
/// what happened, not what will.
fn not_in_future(path: String, at: Timestamp, now: Timestamp) -> Result<(), ImportError> {
    if at > now {
        return Err(invalid(
            path,
            format!("{at} is after the time the change is recorded ({now}): history cannot be dated in the future"),
        ));
    }
    Ok(())
}

/// Records the batch's configuration changes and the current configuration
/// it sends, then folds every history it touched (see [`history`]).
async fn apply_history(
    db: &Db,
    tx: &mut WriteTx,
    batch: &Batch,
    now: Timestamp,
    known: &mut KnownOrganizations,
    applied: &mut Applied,
    touched: &mut BTreeSet<String>,
) -> Result<(), ImportError> {
    let mut paths = BTreeMap::new();
    let ids: BTreeSet<&str> = batch
        .service_changes
        .iter()
        .map(|c| c.service_id.as_str())
        .chain(batch.services.iter().map(|s| s.service_id.as_str()))
        .collect();
    let users: BTreeSet<&str> = batch
        .member_changes
        .iter()
        .map(|c| c.username.as_str())
        .chain(batch.memberships.iter().map(|m| m.username.as_str()))
        .chain(batch.users.iter().map(|u| u.username.as_str()))
        .collect();
    history::lock(tx, db.backend, &ids, &users).await?;
    let service_org = owners(
        tx,
        "SELECT organization_id FROM services WHERE service_id = $1",
        &ids,
    )
    .await?;
    let mut services = Touched::default();
    for (i, c) in batch.service_changes.iter().enumerate() {
        let path = format!("$.service_changes[{i}]");
        let Some(org) = service_org.get(&c.service_id) else {
            return Err(invalid(
                format!("{path}.service_id"),
                format!(
                    "unknown service `{}`: send it in `services` first (or in the same batch)",
                    c.service_id
                ),
            ));
        };
        not_in_future(format!("{path}.at"), c.at, now)?;
        if history::record_service_change(tx, &path, org, c, now).await? {
            applied.service_changes += 1;
            touched.insert(org.clone());
        }
        paths.insert(c.change_id.clone(), path);
        services.touch(Resource::service(&c.service_id), c.at);
    }
    history::refold_services(tx, &services, &paths).await?;
    let mut observed = Touched::default();
    for s in &batch.services {
        if history::observe_service(
            tx,
            &s.organization_id,
            &s.service_id,
            &ServiceConfig::from(s),
            now,
        )
        .await?
        {
            applied.service_changes += 1;
            observed.touch(Resource::service(&s.service_id), now);
        }
    }
    history::refold_services(tx, &observed, &paths).await?;

    let mut members = Touched::default();
    for (i, c) in batch.member_changes.iter().enumerate() {
        let path = format!("$.member_changes[{i}]");
        if !known.contains(tx, &c.organization_id).await? {
            return Err(invalid(
                format!("{path}.organization_id"),
                format!("unknown organization `{}`", c.organization_id),
            ));
        }
        if !exists(tx, "SELECT 1 FROM users WHERE username = $1", &c.username).await? {
            return Err(invalid(
                format!("{path}.username"),
                format!("unknown user `{}`", c.username),
            ));
        }
        not_in_future(format!("{path}.at"), c.at, now)?;
        if history::record_member_change(tx, &path, c, now).await? {
            applied.member_changes += 1;
            touched.insert(c.organization_id.clone());
        }
        paths.insert(c.change_id.clone(), path);
        members.touch(Resource::member(&c.organization_id, &c.username), c.at);
    }
    history::refold_members(tx, now, &members, &paths).await?;

    // The current role (and the user's MFA) of every membership the batch
    // names, or of every membership of a user it names, as of now.
    let mut current: BTreeSet<(String, String)> = batch
        .memberships
        .iter()
        .map(|m| (m.organization_id.clone(), m.username.clone()))
        .collect();
    for u in &batch.users {
        for (org,) in sqlx::query_as::<_, (String,)>(
            "SELECT organization_id FROM memberships WHERE username = $1",
        )
        .bind(&u.username)
        .fetch_all(tx.conn())
        .await?
        {
            current.insert((org, u.username.clone()));
        }
    }
    let mut observed = Touched::default();
    for (org, username) in &current {
        // Every membership named is brought in line with its history below.
        observed.touch(Resource::member(org, username), now);
        let row = sqlx::query_as::<_, (String, i64)>(
            "SELECT m.role, u.mfa_enabled FROM memberships m JOIN users u ON u.username = m.username \
             WHERE m.organization_id = $1 AND m.username = $2",
        )
        .bind(org)
        .bind(username)
        .fetch_optional(tx.conn())
        .await?;
        let Some((role, mfa)) = row else { continue };
        let state = MemberState {
            role,
            mfa_enabled: mfa != 0,
        };
        if history::observe_member(tx, org, username, &state, now).await? {
            applied.member_changes += 1;
        }
    }
    history::refold_members(tx, now, &observed, &paths).await?;
    Ok(())
}
