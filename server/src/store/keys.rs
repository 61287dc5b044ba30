//! The signing-key history, shared through the database by every server.

use sqlx::Row;

use vouch_engine::tlog::{Entry, KeyEvent};
use vouch_engine::Timestamp;

use super::{Db, WriteTx};

/// One row of the key history.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: String,
    pub public_key: String,
    pub valid_from: i64,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub compromised_at: Option<i64>,
    pub revocation_reason: Option<String>,
}

fn record(r: &sqlx::any::AnyRow) -> Result<KeyRecord, sqlx::Error> {
    Ok(KeyRecord {
        key_id: r.try_get("key_id")?,
        public_key: r.try_get("public_key")?,
        valid_from: r.try_get("valid_from")?,
        retired_at: r.try_get("retired_at")?,
        revoked_at: r.try_get("revoked_at")?,
        compromised_at: r.try_get("compromised_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
    })
}

/// Every key ever registered, oldest first.
pub async fn history(db: &Db) -> Result<Vec<KeyRecord>, sqlx::Error> {
    sqlx::query("SELECT key_id, public_key, valid_from, retired_at, revoked_at, compromised_at, revocation_reason FROM signing_keys ORDER BY valid_from, key_id")
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(record)
        .collect()
}

pub async fn find(db: &Db, key_id: &str) -> Result<Option<KeyRecord>, sqlx::Error> {
    find_on(&mut *db.pool.acquire().await?, key_id).await
}

/// [`find`] on a given connection (a transaction's).
async fn find_on(
    conn: &mut sqlx::AnyConnection,
    key_id: &str,
) -> Result<Option<KeyRecord>, sqlx::Error> {
    sqlx::query("SELECT key_id, public_key, valid_from, retired_at, revoked_at, compromised_at, revocation_reason FROM signing_keys WHERE key_id = $1")
        .bind(key_id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

/// Registers `key_id` as the active key and retires the keys it replaces;
/// they stay valid for packets generated up to and including second `at`
/// (retired_at is exclusive). A key id already present is left untouched.
/// Each change is appended to the transparency log in the same transaction.
pub async fn register_active(
    db: &Db,
    key_id: &str,
    public_key: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.write().await?;
    let inserted = sqlx::query(
        "INSERT INTO signing_keys (key_id, public_key, valid_from, retired_at, revoked_at, created_at) VALUES ($1, $2, $3, NULL, NULL, $3) \
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(key_id)
    .bind(public_key)
    .bind(at)
    .execute(tx.conn())
    .await?
    .rows_affected()
        > 0;
    if !inserted {
        return tx.commit().await;
    }
    let mut retired: Vec<(String, String)> = sqlx::query_as(
        "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND revoked_at IS NULL AND key_id <> $2 \
         RETURNING key_id, public_key",
    )
    .bind(at + 1)
    .bind(key_id)
    .fetch_all(tx.conn())
    .await?;
    let now = time(at)?;
    retired.sort();
    for (old, old_public) in &retired {
        log_event(
            &mut tx,
            KeyEvent::Retired,
            old,
            old_public,
            time(at + 1)?,
            None,
            Some(format!("replaced by {key_id}")),
            now,
        )
        .await?;
    }
    let event = if retired.is_empty() {
        KeyEvent::Registered
    } else {
        KeyEvent::Rotated
    };
    log_event(&mut tx, event, key_id, public_key, now, None, None, now).await?;
    tx.commit().await
}

fn time(at: i64) -> Result<Timestamp, sqlx::Error> {
    Timestamp::from_unix_seconds(at)
        .ok_or_else(|| sqlx::Error::Protocol(format!("time {at} out of range")))
}

#[allow(clippy::too_many_arguments)]
async fn log_event(
    tx: &mut WriteTx,
    event: KeyEvent,
    key_id: &str,
    public_key: &str,
    at: Timestamp,
    compromised_at: Option<Timestamp>,
    reason: Option<String>,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    let webhook = match event {
        KeyEvent::Rotated => Some("signing_key.rotated"),
        KeyEvent::Revoked => Some("signing_key.revoked"),
        _ => None,
    };
    if let Some(event_type) = webhook {
        let data = serde_json::json!({
            "key_id": key_id,
            "at": at,
            "compromised_at": compromised_at,
            "reason": reason,
        });
        super::webhooks::emit(tx, None, event_type, now, data).await?;
    }
    super::log::append(tx, now, |logged_at| Entry::Key {
        event,
        key_id: key_id.to_owned(),
        public_key: public_key.to_owned(),
        at,
        compromised_at,
        reason: reason.clone(),
        logged_at,
    })
    .await
    .map(drop)
}

/// A revocation: when, and what the operator said about the compromise.
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    /// The key's packets logged before this stay valid; `None`: none do.
    pub compromised_at: Option<i64>,
    pub reason: Option<String>,
}

/// What [`mark`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marked {
    NoSuchKey,
    /// The key already was in that state (since the time given); nothing changed.
    Already(i64),
    Done,
}

/// Retires (`revoke: None`) or revokes a key, and logs the event.
pub async fn mark(
    db: &Db,
    key_id: &str,
    revoke: Option<&Revocation>,
    at: i64,
) -> Result<Marked, sqlx::Error> {
    let mut tx = db.write().await?;
    let Some(key) = find_on(tx.conn(), key_id).await? else {
        return Ok(Marked::NoSuchKey);
    };
    let now = time(at)?;
    match revoke {
        None => {
            if let Some(r) = key.retired_at.or(key.revoked_at) {
                return Ok(Marked::Already(r));
            }
            sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE key_id = $2")
                .bind(at)
                .bind(key_id)
                .execute(tx.conn())
                .await?;
            log_event(
                &mut tx,
                KeyEvent::Retired,
                key_id,
                &key.public_key,
                now,
                None,
                None,
                now,
            )
            .await?;
        }
        Some(rev) => {
            if let Some(r) = key.revoked_at {
                return Ok(Marked::Already(r));
            }
            sqlx::query(
                "UPDATE signing_keys SET revoked_at = $1, retired_at = COALESCE(retired_at, $1), compromised_at = $2, revocation_reason = $3 WHERE key_id = $4",
            )
            .bind(at)
            .bind(rev.compromised_at)
            .bind(rev.reason.as_deref())
            .bind(key_id)
            .execute(tx.conn())
            .await?;
            let compromised = rev.compromised_at.map(time).transpose()?;
            log_event(
                &mut tx,
                KeyEvent::Revoked,
                key_id,
                &key.public_key,
                now,
                compromised,
                rev.reason.clone(),
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Marked::Done)
}
