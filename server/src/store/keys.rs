//! The signing-key history, shared through the database by every server.

use sqlx::Row;

use super::Db;

/// One row of the key history.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: String,
    pub public_key: String,
    pub valid_from: i64,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn record(r: &sqlx::any::AnyRow) -> Result<KeyRecord, sqlx::Error> {
    Ok(KeyRecord {
        key_id: r.try_get("key_id")?,
        public_key: r.try_get("public_key")?,
        valid_from: r.try_get("valid_from")?,
        retired_at: r.try_get("retired_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Every key ever registered, oldest first.
pub async fn history(db: &Db) -> Result<Vec<KeyRecord>, sqlx::Error> {
    sqlx::query("SELECT key_id, public_key, valid_from, retired_at, revoked_at FROM signing_keys ORDER BY valid_from, key_id")
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(record)
        .collect()
}

pub async fn find(db: &Db, key_id: &str) -> Result<Option<KeyRecord>, sqlx::Error> {
    sqlx::query("SELECT key_id, public_key, valid_from, retired_at, revoked_at FROM signing_keys WHERE key_id = $1")
        .bind(key_id)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

/// Registers `key_id` as the active key and retires the keys it replaces;
/// they stay valid for packets generated up to and including second `at`
/// (retired_at is exclusive). A key id already present is left untouched.
pub async fn register_active(
    db: &Db,
    key_id: &str,
    public_key: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.write().await?;
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND revoked_at IS NULL AND key_id <> $2")
        .bind(at + 1)
        .bind(key_id)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO signing_keys (key_id, public_key, valid_from, retired_at, revoked_at, created_at) VALUES ($1, $2, $3, NULL, NULL, $3) \
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(key_id)
    .bind(public_key)
    .bind(at)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

/// Retires (or revokes) a key; `false` when there is no such key.
pub async fn mark(db: &Db, key_id: &str, revoke: bool, at: i64) -> Result<bool, sqlx::Error> {
    let sql = if revoke {
        "UPDATE signing_keys SET revoked_at = $1, retired_at = COALESCE(retired_at, $1) WHERE key_id = $2"
    } else {
        "UPDATE signing_keys SET retired_at = COALESCE(retired_at, $1) WHERE key_id = $2"
    };
    let mut tx = db.write().await?;
    let done = sqlx::query(sql)
        .bind(at)
        .bind(key_id)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}
