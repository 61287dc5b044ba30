//! `vouch keys rotate|retire|revoke|list`: the server's key history.

use std::path::PathBuf;

use clap::Args;

use super::{block_on, now, StoreArgs};
use crate::Failure;

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The server's signing key file, replaced atomically by the new key.
    #[arg(long, value_name = "FILE", env = "VOUCH_SIGNING_KEY_FILE")]
    key_file: PathBuf,
    /// Id of the new key [default: key-YYYY-MM-<8 hex of its public key>]
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct MarkArgs {
    /// The key to mark, as `vouch keys list` shows it.
    #[arg(value_name = "KEY_ID")]
    key_id: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    key: MarkArgs,
    /// When the key was compromised (RFC 3339). Its packets the transparency
    /// log holds from before then stay valid; without it, none do.
    #[arg(long, value_name = "TIME")]
    compromised_at: Option<vouch_engine::Timestamp>,
    /// What happened, recorded in the key history and the transparency log.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
}

pub fn keys_rotate(a: RotateArgs) -> Result<(), Failure> {
    let id = block_on(async {
        let db = a.store.open().await?;
        // The key being replaced is registered first, so that it is retired, not forgotten.
        if a.key_file.exists() {
            let (old, old_id) = crate::keys::load_key_file(&a.key_file, now())?;
            crate::keys::ensure_active(&db, &old, &old_id, now()).await?;
        }
        let id = crate::keys::rotate(&db, &a.key_file, a.key_id.clone(), now()).await?;
        db.close().await;
        Ok(id)
    })?;
    println!("{id}");
    Ok(())
}

pub fn keys_retire(a: MarkArgs) -> Result<(), Failure> {
    mark(&a, None)
}

pub fn keys_revoke(a: RevokeArgs) -> Result<(), Failure> {
    use unicode_normalization::UnicodeNormalization;
    let revocation = crate::store::keys::Revocation {
        compromised_at: a.compromised_at.map(|t| t.unix_seconds()),
        reason: a.reason.as_deref().map(|r| r.nfc().collect()),
    };
    mark(&a.key, Some(&revocation))
}

fn mark(a: &MarkArgs, revoke: Option<&crate::store::keys::Revocation>) -> Result<(), Failure> {
    let said = block_on(async {
        let db = a.store.open().await?;
        let said = crate::keys::mark(&db, &a.key_id, revoke, now()).await;
        db.close().await;
        said
    })?;
    println!("{said}");
    Ok(())
}

pub fn keys_list(a: ListArgs) -> Result<(), Failure> {
    let keys = block_on(async {
        let db = a.store.open().await?;
        let k = crate::store::keys::history(&db).await?;
        db.close().await;
        Ok(k)
    })?;
    let show = |t: Option<i64>| {
        t.and_then(vouch_engine::Timestamp::from_unix_seconds)
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{:<32} {:<8} {:<21} {:<21} {:<21}",
        "KEY_ID", "STATE", "VALID_FROM", "RETIRED_AT", "REVOKED_AT"
    );
    for k in keys {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.retired_at.is_some() {
            "retired"
        } else {
            "active"
        };
        println!(
            "{:<32} {:<8} {:<21} {:<21} {:<21}",
            k.key_id,
            state,
            show(Some(k.valid_from)),
            show(k.retired_at),
            show(k.revoked_at)
        );
    }
    Ok(())
}
