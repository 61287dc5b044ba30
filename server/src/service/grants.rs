//! Auditor access: an owner or admin grants an outside auditor (a user who
//! is not a member) time-boxed, read-only access to one framework's packets,
//! optionally of one period range. The auditor signs in with their own
//! credentials and sees only those packets (their PDFs, records archives,
//! attestations and diffs); every read is in vouch's audit log under their
//! name. On expiry or revocation every answer is a 404, the bytes of a
//! missing resource ([`super::access::authorize_reader`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vouch_engine::Timestamp;

use super::{App, Caller, Result, ServiceError};
use crate::store::{audit, grants};

/// The usernames a grant names, as the schema has them (the platform's
/// usernames are visible ASCII without `:`, the Basic separator).
pub const USERNAME_PATTERN: &str = "^[!-9;-~]{1,256}$";

/// The longest a grant may run: a year.
pub const MAX_DAYS: i64 = 366;

/// What `POST .../auditor-grants` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GrantRequest")]
pub struct NewGrant {
    /// The auditor's username: a user of the platform, not a member of the organization.
    #[schemars(pattern(USERNAME_PATTERN))]
    pub username: String,
    /// The one framework whose packets the auditor may read.
    #[schemars(pattern(vouch_engine::framework::IDENTIFIER_PATTERN))]
    pub framework: String,
    /// When access ends: in the future, at most a year from now.
    pub expires_at: Timestamp,
    /// Only packets whose period starts at or after this.
    #[serde(default)]
    pub period_start: Option<Timestamp>,
    /// Only packets whose period ends at or before this.
    #[serde(default)]
    pub period_end: Option<Timestamp>,
}

/// A grant as listed.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Grant")]
pub struct GrantView {
    pub grant_id: String,
    pub username: String,
    pub framework: String,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
    /// Whether the grant is in force now (neither expired nor revoked).
    pub active: bool,
}

fn view(g: grants::Grant, now: i64) -> GrantView {
    let ts = Timestamp::from_unix_seconds;
    GrantView {
        active: g.revoked_at.is_none() && g.expires_at > now,
        grant_id: g.grant_id,
        username: g.username,
        framework: g.framework,
        period_start: g.period_start.and_then(ts),
        period_end: g.period_end.and_then(ts),
        expires_at: ts(g.expires_at),
        created_at: ts(g.created_at),
        created_by: g.created_by,
        revoked_at: g.revoked_at.and_then(ts),
    }
}

/// The organization's grants, newest first (owners and admins).
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<GrantView>> {
    let now = app.now().unix_seconds();
    Ok(grants::of(&app.db, &caller.org_id)
        .await?
        .into_iter()
        .map(|g| view(g, now))
        .collect())
}

/// Grants access (owners and admins); audited.
pub async fn grant(app: &App, caller: &Caller, new: NewGrant) -> Result<GrantView> {
    app.framework(&new.framework)?;
    let now = app.now();
    let (user, member) = grants::standing(&app.db, &caller.org_id, &new.username).await?;
    if !user {
        return Err(ServiceError::NotFound);
    }
    if member {
        return Err(ServiceError::Conflict {
            code: "already_member",
            message: format!(
                "{} is a member of this organization and reads everything already",
                crate::auth::loggable(&new.username)
            ),
        });
    }
    let bad = |m: String| ServiceError::bad("bad_grant", m);
    if new.expires_at <= now {
        return Err(bad(format!(
            "expires_at {} is not in the future",
            new.expires_at
        )));
    }
    if new.expires_at.unix_seconds() - now.unix_seconds() > MAX_DAYS * 86_400 {
        return Err(bad(format!("a grant runs at most {MAX_DAYS} days")));
    }
    if let (Some(s), Some(e)) = (new.period_start, new.period_end) {
        if s > e {
            return Err(bad(format!("period_start {s} is after period_end {e}")));
        }
    }
    let g = grants::Grant {
        grant_id: format!("g-{}", uuid::Uuid::now_v7()),
        username: new.username,
        framework: new.framework,
        period_start: new.period_start.map(|t| t.unix_seconds()),
        period_end: new.period_end.map(|t| t.unix_seconds()),
        expires_at: new.expires_at.unix_seconds(),
        created_at: now.unix_seconds(),
        created_by: caller.username.clone(),
        revoked_at: None,
    };
    let mut tx = app.db.write().await?;
    grants::insert(&mut tx, &caller.org_id, &g).await?;
    audit::append_tx(
        &mut tx,
        &caller.entry(now, "auditor_grant.create", &g.grant_id),
    )
    .await?;
    tx.commit().await?;
    Ok(view(g, now.unix_seconds()))
}

/// Revokes a grant in force (owners and admins); 404 when there is none.
pub async fn revoke(app: &App, caller: &Caller, grant_id: &str) -> Result<()> {
    let now = app.now();
    let mut tx = app.db.write().await?;
    if !grants::revoke(&mut tx, &caller.org_id, grant_id, now.unix_seconds()).await? {
        return Err(ServiceError::NotFound);
    }
    audit::append_tx(
        &mut tx,
        &caller.entry(now, "auditor_grant.revoke", grant_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
