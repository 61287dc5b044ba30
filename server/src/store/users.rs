//! Users, memberships, organization names and server-wide settings.

use super::Db;

/// The stored password hash of `username`, if the user exists.
pub async fn password_hash(db: &Db, username: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|r| r.0))
}

/// Replaces a password hash, only if it is still `old` (a concurrent import wins).
pub async fn rehash(db: &Db, username: &str, old: &str, new: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.write().await?;
    let done = sqlx::query(
        "UPDATE users SET password_hash = $1 WHERE username = $2 AND password_hash = $3",
    )
    .bind(new)
    .bind(username)
    .bind(old)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// The role of `username` in `org`, as stored (`None`: not a member).
pub async fn role(db: &Db, org: &str, username: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT role FROM memberships WHERE organization_id = $1 AND username = $2")
            .bind(org)
            .bind(username)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|r| r.0))
}

/// The display name of an organization.
pub async fn organization_name(db: &Db, org: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT name FROM organizations WHERE id = $1")
        .bind(org)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.0))
}

/// A server-wide setting, set to `fresh` by whichever server asks first.
pub async fn setting_or_insert(db: &Db, name: &str, fresh: &str) -> Result<String, sqlx::Error> {
    let mut tx = db.write().await?;
    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(fresh)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    let (value,): (String,) = sqlx::query_as("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    Ok(value)
}
