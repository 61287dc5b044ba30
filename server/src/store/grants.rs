//! Auditor grants (migration 0015).

use sqlx::Row;

use super::{Db, WriteTx};

/// A grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: String,
    pub username: String,
    pub framework: String,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub expires_at: i64,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "grant_id, username, framework, period_start, period_end, expires_at, created_at, created_by, revoked_at";

fn grant(r: &sqlx::any::AnyRow) -> Result<Grant, sqlx::Error> {
    Ok(Grant {
        grant_id: r.try_get("grant_id")?,
        username: r.try_get("username")?,
        framework: r.try_get("framework")?,
        period_start: r.try_get("period_start")?,
        period_end: r.try_get("period_end")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// The grants of `org`, newest first.
pub async fn of(db: &Db, org: &str) -> Result<Vec<Grant>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM auditor_grants WHERE organization_id = $1 ORDER BY created_at DESC, grant_id DESC"
    ))
    .bind(org)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(grant).collect()
}

/// The grants of `username` in `org` in force at `now`.
pub async fn in_force(
    db: &Db,
    org: &str,
    username: &str,
    now: i64,
) -> Result<Vec<Grant>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM auditor_grants WHERE organization_id = $1 AND username = $2 \
         AND revoked_at IS NULL AND expires_at > $3 ORDER BY created_at, grant_id"
    ))
    .bind(org)
    .bind(username)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(grant).collect()
}

/// Stores a new grant.
pub async fn insert(tx: &mut WriteTx, org: &str, g: &Grant) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO auditor_grants (grant_id, organization_id, username, framework, period_start, period_end, expires_at, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&g.grant_id)
    .bind(org)
    .bind(&g.username)
    .bind(&g.framework)
    .bind(g.period_start)
    .bind(g.period_end)
    .bind(g.expires_at)
    .bind(g.created_at)
    .bind(&g.created_by)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Revokes a grant of `org` in force; whether there was one.
pub async fn revoke(tx: &mut WriteTx, org: &str, id: &str, at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE auditor_grants SET revoked_at = $3 WHERE organization_id = $1 AND grant_id = $2 AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(org)
    .bind(id)
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether `username` is a user at all, and a member of `org`.
pub async fn standing(db: &Db, org: &str, username: &str) -> Result<(bool, bool), sqlx::Error> {
    let user = sqlx::query("SELECT 1 FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(&db.pool)
        .await?
        .is_some();
    let member =
        sqlx::query("SELECT 1 FROM memberships WHERE organization_id = $1 AND username = $2")
            .bind(org)
            .bind(username)
            .fetch_optional(&db.pool)
            .await?
            .is_some();
    Ok((user, member))
}
