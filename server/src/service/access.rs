//! Who is calling, and what they may do in which organization.
//!
//! Password verification is bounded (see [`crate::auth::throttle`]): failures
//! are throttled per client address and per username, argon2 runs on at most
//! one thread per core, and whoever finds those busy is answered 429. An
//! unknown user costs the same argon2 verification as a wrong password, so
//! response times do not reveal which users exist.

use std::net::IpAddr;
use std::time::Instant;

use super::{App, Result, ServiceError};
use crate::auth::csrf::{self, Marks};
use crate::auth::password::{hash_password, needs_rehash, verify_password};
use crate::auth::{loggable, token_matches, Credentials, Role};
use crate::store;

/// An authenticated caller's standing in one organization.
#[derive(Debug, Clone)]
pub struct Caller {
    pub username: String,
    pub org_id: String,
    pub role: Role,
    /// The client's address, for audit entries.
    pub remote: Option<String>,
    /// `None` for a member (everything of the organization); for an outside
    /// auditor, the grants in force: only their packets are there.
    pub scopes: Option<Vec<Scope>>,
}

/// What one grant lets an auditor read: one framework's packets whose
/// period lies within the bounds (Unix seconds; `None`: unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub framework: String,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
}

impl Scope {
    pub fn covers(&self, framework: &str, period_start: i64, period_end: i64) -> bool {
        self.framework == framework
            && self.period_start.is_none_or(|s| period_start >= s)
            && self.period_end.is_none_or(|e| period_end <= e)
    }
}

fn busy(b: crate::auth::throttle::Busy) -> ServiceError {
    ServiceError::Busy {
        retry_after: b.retry_after,
    }
}

/// A user whose Basic credentials were verified.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub username: String,
    /// Their stored role in the organization asked about, read with their
    /// password hash (`None`: not a member, or no organization asked).
    pub role: Option<String>,
}

/// The user behind Basic credentials, with their stored role in `org`
/// (the request's organization, read in the same statement), or 401 (429
/// while throttled or busy).
pub async fn authenticate(
    app: &App,
    creds: Option<Credentials>,
    remote: Option<IpAddr>,
    org: Option<&str>,
) -> Result<Authenticated> {
    let creds = creds.ok_or(ServiceError::Unauthenticated)?;
    let now = Instant::now();
    let by_address = remote.map(|ip| format!("ip:{ip}"));
    let by_username = format!("user:{}", creds.username);
    let limits = &app.logins;
    if let Some(a) = &by_address {
        limits.by_address.check(a, now).map_err(busy)?;
    }
    limits.by_username.check(&by_username, now).map_err(busy)?;

    let (stored, role) = match store::users::hash_and_role(&app.db, &creds.username, org).await? {
        Some((hash, role)) => (Some(hash), role),
        None => (None, None),
    };
    if let Some(hash) = &stored {
        if app
            .verified
            .contains(&creds.username, &creds.password.0, hash)
        {
            return Ok(Authenticated {
                username: creds.username,
                role,
            });
        }
    }
    let known = stored.is_some();
    let ok = {
        let _slot = limits.gate.enter().await.map_err(busy)?;
        let password = creds.password.clone();
        let hash = stored.clone().unwrap_or_else(|| app.decoy_hash.clone());
        let verified = tokio::task::spawn_blocking(move || verify_password(&password.0, &hash))
            .await
            .map_err(ServiceError::internal)?;
        verified && known
    };
    let Some(hash) = stored.filter(|_| ok) else {
        if let Some(a) = &by_address {
            limits.by_address.fail(a, now);
        }
        limits.by_username.fail(&by_username, now);
        // An unknown name may be a password typed in the wrong field: only
        // known users are named in the log, escaped.
        if known {
            tracing::info!(user = %loggable(&creds.username), "authentication failed");
        } else {
            tracing::info!(
                user_chars = creds.username.chars().count(),
                "authentication failed for an unknown user"
            );
        }
        return Err(ServiceError::Unauthenticated);
    };
    app.verified
        .insert(&creds.username, &creds.password.0, &hash);
    let username = creds.username.clone();
    if needs_rehash(&hash) {
        rehash(app, creds, hash);
    }
    Ok(Authenticated { username, role })
}

/// Replaces a hash with one of this server's parameters, in the background.
fn rehash(app: &App, creds: Credentials, old: String) {
    let db = app.db.clone();
    app.background.spawn(async move {
        let password = creds.password.clone();
        let new = match tokio::task::spawn_blocking(move || hash_password(&password.0)).await {
            Ok(Ok(h)) => h,
            _ => return,
        };
        match store::users::rehash(&db, &creds.username, &old, &new).await {
            Ok(true) => tracing::info!(user = %loggable(&creds.username), "password hash upgraded to this server's parameters"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "password rehash failed"),
        }
    });
}

impl Caller {
    /// Whether the caller may see a report of `framework` over this period.
    pub fn sees(&self, framework: &str, period_start: i64, period_end: i64) -> bool {
        match &self.scopes {
            None => true,
            Some(scopes) => scopes
                .iter()
                .any(|s| s.covers(framework, period_start, period_end)),
        }
    }

    /// Vouch's own audit entry for something the caller did at `at`.
    pub fn entry<'a>(
        &'a self,
        at: vouch_engine::Timestamp,
        action: &'a str,
        target: &'a str,
    ) -> store::audit::Entry<'a> {
        store::audit::Entry {
            organization_id: Some(&self.org_id),
            at,
            actor: &self.username,
            action,
            target,
            remote_addr: self.remote.as_deref(),
        }
    }

    /// Appends vouch's own audit entry for something the caller did.
    pub async fn audit(&self, app: &App, action: &str, target: &str) -> Result<()> {
        store::audit::append(&app.db, &self.entry(app.now(), action, target)).await?;
        Ok(())
    }
}

/// The caller's role in `org_id`; 404 when they are not a member (whether
/// or not the organization exists), 403 when the role is below `min`.
pub async fn authorize(
    app: &App,
    username: &str,
    org_id: &str,
    min: Role,
    remote: Option<IpAddr>,
) -> Result<Caller> {
    let role = store::users::role(&app.db, org_id, username).await?;
    authorize_with(username, org_id, role.as_deref(), min, remote)
}

/// [`authorize`] with the caller's stored role in `org_id` already read
/// (with their credentials: [`Authenticated::role`]).
pub fn authorize_with(
    username: &str,
    org_id: &str,
    role: Option<&str>,
    min: Role,
    remote: Option<IpAddr>,
) -> Result<Caller> {
    let role = role.and_then(Role::parse).ok_or(ServiceError::NotFound)?;
    if role < min {
        return Err(ServiceError::Forbidden {
            needed: min,
            have: role,
        });
    }
    Ok(Caller {
        username: username.to_owned(),
        org_id: org_id.to_owned(),
        role,
        remote: remote.map(|ip| ip.to_string()),
        scopes: None,
    })
}

/// A reader of the organization's packets: a member, or an outside auditor
/// with a grant in force (limited to its scopes); 404 otherwise, the same
/// as for a stranger, before a grant and after it ends.
pub async fn authorize_reader(
    app: &App,
    username: &str,
    org_id: &str,
    remote: Option<IpAddr>,
) -> Result<Caller> {
    let role = store::users::role(&app.db, org_id, username).await?;
    authorize_reader_with(app, username, org_id, role.as_deref(), remote).await
}

/// [`authorize_reader`] with the caller's stored role in `org_id` already
/// read (with their credentials: [`Authenticated::role`]).
pub async fn authorize_reader_with(
    app: &App,
    username: &str,
    org_id: &str,
    role: Option<&str>,
    remote: Option<IpAddr>,
) -> Result<Caller> {
    match authorize_with(username, org_id, role, Role::Member, remote) {
        Err(ServiceError::NotFound) => {}
        other => return other,
    }
    let grants =
        store::grants::in_force(&app.db, org_id, username, app.now().unix_seconds()).await?;
    if grants.is_empty() {
        return Err(ServiceError::NotFound);
    }
    Ok(Caller {
        username: username.to_owned(),
        org_id: org_id.to_owned(),
        role: Role::Auditor,
        remote: remote.map(|ip| ip.to_string()),
        scopes: Some(
            grants
                .into_iter()
                .map(|g| Scope {
                    framework: g.framework,
                    period_start: g.period_start,
                    period_end: g.period_end,
                })
                .collect(),
        ),
    })
}

/// A request that changes state: a browser's must carry the page's CSRF token.
pub fn check_write(app: &App, caller: &Caller, marks: &Marks<'_>) -> Result<()> {
    csrf::check_write(&app.csrf_key, marks, &caller.username, &caller.org_id)
        .map_err(ServiceError::CrossSite)
}

/// A read with credentials: a browser's must not come from another site.
pub fn check_read(marks: &Marks<'_>) -> Result<()> {
    csrf::check_read(marks).map_err(ServiceError::CrossSite)
}

/// The admin bearer token, compared in constant time; 503 when none is configured.
pub fn authorize_admin(app: &App, presented: Option<&str>) -> Result<()> {
    let Some(expected) = &app.admin_token else {
        return Err(ServiceError::AdminDisabled);
    };
    if token_matches(presented.unwrap_or(""), expected) {
        Ok(())
    } else {
        Err(ServiceError::AdminUnauthenticated)
    }
}
