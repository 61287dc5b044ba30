//! vouch's own audit entries: every state-changing call and every download
//! appends one (actor, action, target, time, remote address), so the audit
//! coverage packets report includes vouch's own activity.

use vouch_engine::Timestamp;

use super::{Db, WriteTx};

/// One entry of vouch's own audit log.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub organization_id: Option<&'a str>,
    pub at: Timestamp,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub remote_addr: Option<&'a str>,
}

fn entry_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Inserts an entry under `entry_id`; `false` when that id exists and
/// `on_conflict_nothing` is set.
async fn insert(
    tx: &mut WriteTx,
    entry_id: &str,
    e: &Entry<'_>,
    on_conflict_nothing: bool,
) -> Result<bool, sqlx::Error> {
    let sql = if on_conflict_nothing {
        "INSERT INTO audit_entries (entry_id, organization_id, at, actor, action, target, remote_addr) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (entry_id) DO NOTHING"
    } else {
        "INSERT INTO audit_entries (entry_id, organization_id, at, actor, action, target, remote_addr) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    };
    let done = sqlx::query(sql)
        .bind(entry_id)
        .bind(e.organization_id)
        .bind(e.at.unix_seconds())
        .bind(e.actor)
        .bind(e.action)
        .bind(e.target)
        .bind(e.remote_addr)
        .execute(tx.conn())
        .await?;
    let added = done.rows_affected() > 0;
    if let (true, Some(org)) = (added, e.organization_id) {
        count_in_hour(tx, org, e.at.unix_seconds()).await?;
    }
    Ok(added)
}

/// Adds an entry at `at` to its hour's totals (migration 0011). An entry
/// after the hour's last one extends them; one before it (an imported past
/// event) has the hour's longest gap computed again from its entries. Each
/// statement reads the row it changes, so concurrent writers on PostgreSQL
/// queue on the row and each counts from the other's result.
async fn count_in_hour(tx: &mut WriteTx, org: &str, at: i64) -> Result<(), sqlx::Error> {
    let hour = at.div_euclid(3600);
    let counted = sqlx::query(
        "INSERT INTO audit_hours (organization_id, hour, entries, first_at, last_at, longest_gap) \
         VALUES ($1, $2, 1, $3, $3, 0) \
         ON CONFLICT (organization_id, hour) DO UPDATE SET \
           entries = audit_hours.entries + 1, \
           longest_gap = CASE WHEN excluded.last_at < audit_hours.last_at THEN -1 \
             WHEN excluded.last_at - audit_hours.last_at > audit_hours.longest_gap \
             THEN excluded.last_at - audit_hours.last_at ELSE audit_hours.longest_gap END, \
           first_at = CASE WHEN excluded.first_at < audit_hours.first_at THEN excluded.first_at ELSE audit_hours.first_at END, \
           last_at = CASE WHEN excluded.last_at > audit_hours.last_at THEN excluded.last_at ELSE audit_hours.last_at END \
         RETURNING longest_gap",
    )
    .bind(org)
    .bind(hour)
    .bind(at)
    .fetch_one(tx.conn())
    .await?;
    if sqlx::Row::try_get::<i64, _>(&counted, "longest_gap")? >= 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE audit_hours SET longest_gap = (SELECT COALESCE(MAX(gap), 0) FROM \
           (SELECT at - LAG(at) OVER (ORDER BY at) AS gap FROM audit_entries \
            WHERE organization_id = $1 AND at >= $3 AND at < $4) g) \
         WHERE organization_id = $1 AND hour = $2",
    )
    .bind(org)
    .bind(hour)
    .bind(hour * 3600)
    .bind(hour * 3600 + 3600)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Appends an entry inside a transaction (it commits or vanishes with it).
pub async fn append_tx(tx: &mut WriteTx, e: &Entry<'_>) -> Result<(), sqlx::Error> {
    insert(tx, &entry_id(), e, false).await.map(drop)
}

/// Appends an entry on its own (for reads such as downloads).
pub async fn append(db: &Db, e: &Entry<'_>) -> Result<(), sqlx::Error> {
    let mut tx = db.write().await?;
    append_tx(&mut tx, e).await?;
    tx.commit().await
}

/// Appends an imported platform event; `false` when its id was already there.
pub async fn import_event(
    tx: &mut WriteTx,
    entry_id: &str,
    e: &Entry<'_>,
) -> Result<bool, sqlx::Error> {
    insert(tx, entry_id, e, true).await
}

/// The organization, time, actor, action and target an imported event id
/// already holds, if any.
pub async fn imported(
    tx: &mut WriteTx,
    entry_id: &str,
) -> Result<Option<(Option<String>, i64, String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT organization_id, at, actor, action, target FROM audit_entries WHERE entry_id = $1",
    )
    .bind(entry_id)
    .fetch_optional(tx.conn())
    .await
}
