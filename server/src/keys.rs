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
use vouch_engine::keys::{KeysDocument, PublishedKey};
use vouch_engine::signing::{
    default_key_id, key_from_pem, key_to_pem, public_key_base64, PacketSigner,
};
use vouch_engine::Timestamp;

use crate::files::{read_private, Staged};
use crate::store::{self, Db};

/// The well-known keys document: every key ever used, current and retired.
pub async fn document(db: &Db) -> Result<KeysDocument> {
    let mut keys = vec![];
    for k in store::keys::history(db).await? {
        let raw: [u8; 32] =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &k.public_key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    anyhow!("key {} in the database is not a raw Ed25519 key", k.key_id)
                })?;
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&raw)?;
        let mut published = PublishedKey::new(
            &vk,
            &k.key_id,
            Timestamp::from_unix_seconds(k.valid_from),
            k.retired_at.and_then(Timestamp::from_unix_seconds),
            k.revoked_at.and_then(Timestamp::from_unix_seconds),
        );
        published.compromised_at = k.compromised_at.and_then(Timestamp::from_unix_seconds);
        keys.push(published);
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
    if let Some(known) = store::keys::find(db, key_id).await? {
        if known.public_key != public {
            bail!("key id {key_id} is already published with another public key; give the new key its own id");
        }
        if known.revoked_at.is_some() {
            bail!("the configured signing key {key_id} was revoked; configure a new key (vouch keys rotate)");
        }
        // A rotation retires the old key as of the next second (retired_at
        // is exclusive) before it replaces the file: until then the old key
        // still signs, and a generation that read the file a moment before
        // the replacement succeeds instead of failing.
        if known.retired_at.is_some_and(|r| now.unix_seconds() >= r) {
            bail!("the configured signing key {key_id} was retired; the key file is out of date (vouch keys rotate writes the new one)");
        }
        return Ok(());
    }
    store::keys::register_active(db, key_id, &public, now.unix_seconds()).await?;
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
        // Reading a file may block (a slow disk, a FIFO put at the path):
        // never on the async workers.
        let path = path.clone();
        let (key, id) = tokio::task::spawn_blocking(move || load_key_file(&path, now)).await??;
        ensure_active(db, &key, &id, now).await?;
        Ok(Some(PacketSigner::new(key, id)))
    }
}

/// `vouch keys rotate`: a new key becomes the active key and replaces the
/// file; the old one is retired and stays published.
///
/// An id already in the history is refused before anything changes. The new
/// key is registered before the file is replaced, so that a failure at any
/// step leaves a key file whose key the history knows (the old one, still
/// verifying its packets; or the new one, active); the replacement is an
/// atomic rename followed by an fsync of the directory.
pub async fn rotate(
    db: &Db,
    path: &Path,
    key_id: Option<String>,
    now: Timestamp,
) -> Result<String> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let id = key_id.unwrap_or_else(|| default_key_id(&key.verifying_key(), now));
    if store::keys::find(db, &id).await?.is_some() {
        bail!("key id {id} is already in the key history; choose another id (vouch keys list shows them); nothing was changed");
    }
    let pem = key_to_pem(&key, &id)?;
    let staged = Staged::write(path, pem.as_bytes(), 0o600)?;
    ensure_active(db, &key, &id, now).await?;
    staged.replace()?;
    Ok(id)
}

/// `vouch keys retire|revoke KEY_ID`: `revoke` is `Some` for a revocation.
/// Returns what the key history now says, for the operator.
pub async fn mark(
    db: &Db,
    key_id: &str,
    revoke: Option<&store::keys::Revocation>,
    now: Timestamp,
) -> Result<String> {
    let what = if revoke.is_some() {
        "revoked"
    } else {
        "retired"
    };
    if let Some(c) = revoke.and_then(|r| r.compromised_at) {
        if c > now.unix_seconds() {
            bail!("--compromised-at is in the future; a compromise is known only once it happened");
        }
    }
    if let Some(reason) = revoke.and_then(|r| r.reason.as_deref()) {
        if reason.chars().count() > 500 || reason.chars().any(char::is_control) {
            bail!(
                "--reason must be at most 500 characters on one line, without control characters"
            );
        }
    }
    match store::keys::mark(db, key_id, revoke, now.unix_seconds()).await? {
        store::keys::Marked::NoSuchKey => {
            bail!("no key `{key_id}` in the key history (vouch keys list shows them)")
        }
        store::keys::Marked::Already(at) => Ok(format!(
            "{key_id} was already {what} at {}; nothing changed",
            Timestamp::from_unix_seconds(at)
                .map(|t| t.to_string())
                .unwrap_or_default()
        )),
        store::keys::Marked::Done => Ok(format!("{key_id} {what}")),
    }
}
