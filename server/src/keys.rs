//! The signing-key history, shared through the database by every server, and
//! the key a server signs with.
//!
//! The configured key file is read at every generation, so a rotation (an
//! atomic replacement of the file by `vouch keys rotate`) is picked up by the
//! next request without a restart and without failing one in flight. A key
//! that appears in the file but not in the history is registered, and the keys
//! it replaces are retired.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::SigningKey;
use sqlx::Row;
use vouch_engine::keys::{KeysDocument, PublishedKey};
use vouch_engine::signing::{
    default_key_id, key_from_pem, key_to_pem, public_key_base64, PacketSigner,
};
use vouch_engine::Timestamp;

use crate::db::Db;
use crate::files::{read_private, write_atomic};

/// One row of the key history.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: String,
    pub public_key: String,
    pub valid_from: i64,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub async fn history(db: &Db) -> Result<Vec<KeyRecord>> {
    let rows = sqlx::query("SELECT key_id, public_key, valid_from, retired_at, revoked_at FROM signing_keys ORDER BY valid_from, key_id")
        .fetch_all(&db.pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(KeyRecord {
                key_id: r.try_get("key_id")?,
                public_key: r.try_get("public_key")?,
                valid_from: r.try_get("valid_from")?,
                retired_at: r.try_get("retired_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// The well-known keys document: every key ever used, current and retired.
pub async fn document(db: &Db) -> Result<KeysDocument> {
    let mut keys = vec![];
    for k in history(db).await? {
        let raw: [u8; 32] =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &k.public_key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    anyhow!("key {} in the database is not a raw Ed25519 key", k.key_id)
                })?;
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&raw)?;
        keys.push(PublishedKey::new(
            &vk,
            &k.key_id,
            Timestamp::from_unix_seconds(k.valid_from),
            k.retired_at.and_then(Timestamp::from_unix_seconds),
            k.revoked_at.and_then(Timestamp::from_unix_seconds),
        ));
    }
    Ok(KeysDocument::new(keys))
}

/// Reads a key file: the key and its id (from the file's `key_id:` line, or
/// derived from the public key and `now`).
pub fn load_key_file(path: &Path, now: Timestamp) -> Result<(SigningKey, String)> {
    let text = read_private(path)?;
    let (key, id) =
        key_from_pem(&text).with_context(|| format!("{} is not a signing key", path.display()))?;
    let id = id.unwrap_or_else(|| default_key_id(&key.verifying_key(), now));
    Ok((key, id))
}

/// Registers `key` as the active key unless it is already known; retires the
/// keys it replaces. Refuses a key that was retired or revoked.
pub async fn ensure_active(db: &Db, key: &SigningKey, key_id: &str, now: Timestamp) -> Result<()> {
    let public = public_key_base64(&key.verifying_key());
    let existing = sqlx::query(
        "SELECT public_key, retired_at, revoked_at FROM signing_keys WHERE key_id = $1",
    )
    .bind(key_id)
    .fetch_optional(&db.pool)
    .await?;
    if let Some(row) = existing {
        let stored: String = row.try_get("public_key")?;
        if stored != public {
            bail!("key id {key_id} is already published with another public key; give the new key its own id");
        }
        if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
            bail!("the configured signing key {key_id} was revoked; configure a new key (vouch keys rotate)");
        }
        if row.try_get::<Option<i64>, _>("retired_at")?.is_some() {
            bail!("the configured signing key {key_id} was retired; the key file is out of date (vouch keys rotate writes the new one)");
        }
        return Ok(());
    }
    let t = now.unix_seconds();
    let _turn = db.write_turn().await;
    let mut tx = db.pool.begin().await?;
    // Keys replaced now stay valid for packets generated up to and including
    // this second (retired_at is exclusive).
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND revoked_at IS NULL AND key_id <> $2")
        .bind(t + 1)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO signing_keys (key_id, public_key, valid_from, retired_at, revoked_at, created_at) VALUES ($1, $2, $3, NULL, NULL, $3) \
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(key_id)
    .bind(&public)
    .bind(t)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(key_id, "signing key registered as the active key");
    Ok(())
}

/// The key a server signs with, read from its file at each use.
#[derive(Debug, Clone)]
pub struct KeySource {
    pub path: Option<PathBuf>,
}

impl KeySource {
    /// `None` when no key is configured (generation answers 503).
    pub async fn signer(&self, db: &Db, now: Timestamp) -> Result<Option<PacketSigner>> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let (key, id) = load_key_file(path, now)?;
        ensure_active(db, &key, &id, now).await?;
        Ok(Some(PacketSigner::new(key, id)))
    }
}

/// `vouch keys rotate`: a new key replaces the file (atomically) and becomes
/// the active key; the old one is retired and stays published.
pub async fn rotate(
    db: &Db,
    path: &Path,
    key_id: Option<String>,
    now: Timestamp,
) -> Result<String> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let id = key_id.unwrap_or_else(|| default_key_id(&key.verifying_key(), now));
    let pem = key_to_pem(&key, &id)?;
    write_atomic(path, pem.as_bytes(), 0o600, false)?;
    ensure_active(db, &key, &id, now).await?;
    Ok(id)
}

/// `vouch keys retire|revoke KEY_ID`.
pub async fn mark(db: &Db, key_id: &str, revoke: bool, now: Timestamp) -> Result<()> {
    let t = now.unix_seconds();
    let sql = if revoke {
        "UPDATE signing_keys SET revoked_at = $1, retired_at = COALESCE(retired_at, $1) WHERE key_id = $2"
    } else {
        "UPDATE signing_keys SET retired_at = COALESCE(retired_at, $1) WHERE key_id = $2"
    };
    let _turn = db.write_turn().await;
    let done = sqlx::query(sql)
        .bind(t)
        .bind(key_id)
        .execute(&db.pool)
        .await?;
    if done.rows_affected() == 0 {
        bail!("no key `{key_id}` in the key history (vouch keys list shows them)");
    }
    Ok(())
}
