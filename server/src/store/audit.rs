//! vouch's own audit entries: every state-changing call and every download
//! appends one (actor, action, target, time, remote address), so the audit
//! coverage packets report includes vouch's own activity.

use sqlx::{Any, Transaction};
use vouch_engine::Timestamp;

use crate::db::Db;

fn entry_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Appends an entry inside the caller's transaction (it commits or vanishes with it).
pub async fn append_tx(
    tx: &mut Transaction<'_, Any>,
    organization_id: Option<&str>,
    at: Timestamp,
    actor: &str,
    action: &str,
    target: &str,
    remote_addr: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_entries (entry_id, organization_id, at, actor, action, target, remote_addr) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(entry_id())
    .bind(organization_id)
    .bind(at.unix_seconds())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(remote_addr)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends an entry on its own (for reads such as downloads).
pub async fn append(
    db: &Db,
    organization_id: Option<&str>,
    at: Timestamp,
    actor: &str,
    action: &str,
    target: &str,
    remote_addr: Option<&str>,
) -> Result<(), sqlx::Error> {
    let _turn = db.write_turn().await;
    let mut tx = db.pool.begin().await?;
    append_tx(
        &mut tx,
        organization_id,
        at,
        actor,
        action,
        target,
        remote_addr,
    )
    .await?;
    tx.commit().await
}
