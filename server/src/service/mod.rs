//! The server's state and the checks every handler shares: who is calling, and
//! what they may do in which organization.

use std::sync::Arc;

use vouch_engine::{FrameworkSet, Timestamp};

use crate::auth::{parse_basic, parse_bearer, token_matches, verify_password, Role};
use crate::db::Db;
use crate::http::{ApiError, Request};
use crate::metrics::Metrics;
use crate::zones::Catalogue;

/// The time source; tests and the engine never read the clock themselves.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| Timestamp::from_datetime(chrono::Utc::now()))
}

pub struct App {
    /// This app, for work that outlives a request (background PDF rendering).
    pub me: std::sync::Weak<App>,
    pub db: Db,
    pub keys: crate::keys::KeySource,
    /// The legacy report's HMAC key; `None` answers 503.
    pub hmac_key: Option<Vec<u8>>,
    pub renderer: Arc<crate::pdf::Renderer>,
    /// The key of the dashboard's CSRF tokens.
    pub csrf_key: Vec<u8>,
    /// The plugins of `VOUCH_PLUGINS_DIR`, if any.
    pub plugins: Option<Arc<crate::plugins::Plugins>>,
    /// Where clients reach this server: the keys URL printed on PDF covers.
    pub public_url: String,
    pub zones: Catalogue,
    pub frameworks: FrameworkSet,
    pub metrics: Metrics,
    pub admin_token: Option<String>,
    pub clock: Clock,
    decoy_hash: String,
    verified: crate::auth::VerifiedCache,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("backend", &self.db.backend)
            .finish_non_exhaustive()
    }
}

/// An authenticated caller's standing in one organization.
#[derive(Debug, Clone)]
pub struct Caller {
    pub username: String,
    pub org_id: String,
    pub role: Role,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        zones: Catalogue,
        frameworks: FrameworkSet,
        admin_token: Option<String>,
        keys: crate::keys::KeySource,
        hmac_key: Option<Vec<u8>>,
        renderer: Arc<crate::pdf::Renderer>,
        plugins: Option<Arc<crate::plugins::Plugins>>,
        csrf_key: Vec<u8>,
        public_url: String,
        clock: Clock,
    ) -> anyhow::Result<Arc<Self>> {
        let metrics = Metrics::new()?;
        let decoy_hash = crate::auth::decoy_hash()?;
        Ok(Arc::new_cyclic(|me| App {
            me: me.clone(),
            db,
            keys,
            hmac_key,
            renderer,
            plugins,
            csrf_key,
            public_url,
            zones,
            frameworks,
            metrics,
            admin_token,
            clock,
            decoy_hash,
            verified: crate::auth::VerifiedCache::new(),
        }))
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// The user behind the request's Basic credentials, or 401. Unknown users
    /// cost the same argon2 verification as wrong passwords.
    pub async fn authenticate(&self, req: &Request) -> Result<String, ApiError> {
        let creds = req
            .header("authorization")
            .and_then(parse_basic)
            .ok_or_else(ApiError::unauthorized)?;
        let stored: Option<(String,)> =
            sqlx::query_as("SELECT password_hash FROM users WHERE username = $1")
                .bind(&creds.username)
                .fetch_optional(&self.db.pool)
                .await?;
        let Some((hash,)) = stored else {
            // Unknown users cost an argon2 verification like wrong passwords.
            let decoy = self.decoy_hash.clone();
            let password = creds.password.clone();
            let _ = tokio::task::spawn_blocking(move || verify_password(&password.0, &decoy)).await;
            tracing::info!(user = %creds.username, "authentication failed");
            return Err(ApiError::unauthorized());
        };
        if self
            .verified
            .contains(&creds.username, &creds.password.0, &hash)
        {
            return Ok(creds.username);
        }
        let password = creds.password.clone();
        let stored_hash = hash.clone();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password.0, &stored_hash))
            .await
            .map_err(ApiError::internal)?;
        if ok {
            self.verified
                .insert(&creds.username, &creds.password.0, &hash);
            Ok(creds.username)
        } else {
            tracing::info!(user = %creds.username, "authentication failed");
            Err(ApiError::unauthorized())
        }
    }

    /// The caller's role in `org_id`; 404 when they are not a member (whether
    /// or not the organization exists), 403 when the role is below `min`.
    pub async fn authorize(
        &self,
        req: &Request,
        org_id: &str,
        min: Role,
    ) -> Result<Caller, ApiError> {
        let username = self.authenticate(req).await?;
        let role: Option<(String,)> = sqlx::query_as(
            "SELECT role FROM memberships WHERE organization_id = $1 AND username = $2",
        )
        .bind(org_id)
        .bind(&username)
        .fetch_optional(&self.db.pool)
        .await?;
        let role = role
            .and_then(|r| Role::parse(&r.0))
            .ok_or_else(ApiError::not_found)?;
        if role < min {
            return Err(ApiError::forbidden(format!(
                "this needs the {} role or higher; you are {} of this organization",
                min.as_str(),
                role.as_str()
            )));
        }
        Ok(Caller {
            username,
            org_id: org_id.to_owned(),
            role,
        })
    }

    /// The admin bearer token, compared in constant time; 503 when none is configured.
    pub fn authorize_admin(&self, req: &Request) -> Result<(), ApiError> {
        let Some(expected) = &self.admin_token else {
            return Err(ApiError::unavailable(
                "admin_disabled",
                "the admin API is disabled: start vouch with VOUCH_ADMIN_TOKEN_FILE",
            ));
        };
        let presented = req
            .header("authorization")
            .and_then(parse_bearer)
            .unwrap_or("");
        if token_matches(presented, expected) {
            Ok(())
        } else {
            Err(ApiError::new(
                warp::http::StatusCode::UNAUTHORIZED,
                "admin_unauthorized",
                "the admin API needs `Authorization: Bearer <token>`",
            ))
        }
    }
}
