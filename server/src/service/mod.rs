//! The use cases of the server, one function each, with no HTTP in them:
//! handlers parse a request, call one of these, and serialize what it returns.
//!
//! | file | use cases |
//! |---|---|
//! | [`access`] | who is calling, and what they may do in which organization |
//! | [`grants`] | outside auditors' time-boxed access to one framework's packets |
//! | [`generate`] | a signed packet: authorize, snapshot, evaluate, sign, store, enqueue the PDF |
//! | [`reports`] | listing, downloading a packet or its PDF, the published keys |
//! | [`render`] | the PDF render queue: workers, and rendering on demand |
//! | [`schedule`] | scheduled packets: cadence, pause, the pass every server runs |
//! | [`subscriptions`] | subscribe, cancel, list |
//! | [`webhooks`] | signed webhooks: endpoints, the delivery workers |
//! | [`records`] | the records document of a period; a batch of platform records in |
//! | [`legacy`] | the legacy HMAC report |
//!
//! Every failure is a [`ServiceError`]; the HTTP layer maps it to a status in
//! one place (`http::error`).

pub mod access;
pub mod generate;
pub mod grants;
pub mod legacy;
pub mod log;
pub mod records;
pub mod render;
pub mod reports;
pub mod schedule;
pub mod subscriptions;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use vouch_engine::{Framework, FrameworkSet, Timestamp};

use crate::auth::cache::VerifiedCache;
use crate::auth::throttle::LoginLimits;
use crate::auth::Role;
use crate::metrics::Metrics;
use crate::store::Db;
use crate::zones::Catalogue;

pub use access::Caller;

/// One kind of background worker on this server (PDF rendering, webhook
/// deliveries, the schedule): the name its leases carry in the database,
/// and the signals that wake and stop it.
#[derive(Debug)]
pub struct Signals {
    /// Who holds a lease, as the database's `worker` (or `holder`) column names it.
    pub id: String,
    wake: tokio::sync::Notify,
    stop: tokio_util::sync::CancellationToken,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            wake: tokio::sync::Notify::new(),
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }
}

impl Signals {
    /// Work arrived on this server: one idle worker takes it now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Workers finish what they hold and take no more.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Waits until woken, `poll` has passed, or the stop.
    pub async fn idle(&self, poll: Duration) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = self.stop.cancelled() => {}
        }
    }
}

/// A server's workers of one kind with their settings (`S`).
#[derive(Debug)]
pub struct Workers<S> {
    pub settings: S,
    pub signals: Signals,
}

impl<S> Workers<S> {
    pub fn new(settings: S) -> Self {
        Workers {
            settings,
            signals: Signals::default(),
        }
    }

    /// Work was queued on this server: one idle worker takes it now.
    pub fn wake(&self) {
        self.signals.wake();
    }

    /// Workers finish what they hold and take no more.
    pub fn stop(&self) {
        self.signals.stop();
    }
}

/// Turns at the ends of series on one server (see [`App::series_turn`]).
const SERIES_TURNS: usize = 64;

/// The time source; tests and the engine never read the clock themselves.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| Timestamp::from_datetime(chrono::Utc::now()))
}

/// Why a use case did not happen. Messages are safe to show the caller: an
/// internal cause is carried for the log and never displayed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("authentication required: HTTP Basic with your username and password")]
    Unauthenticated,
    #[error("too many attempts; retry in {} s", retry_after.as_secs().max(1))]
    Busy { retry_after: Duration },
    #[error("the admin API needs `Authorization: Bearer <token>`")]
    AdminUnauthenticated,
    #[error("the admin API is disabled: start vouch with VOUCH_ADMIN_TOKEN_FILE")]
    AdminDisabled,
    #[error("no such resource")]
    NotFound,
    /// A proof between tree sizes the log does not have.
    #[error("{0}")]
    NoSuchTreeSize(String),
    #[error("no framework `{id}`; the frameworks are {known}")]
    UnknownFramework { id: String, known: String },
    #[error("this needs the {} role or higher; you are {} of this organization", needed.as_str(), have.as_str())]
    Forbidden { needed: Role, have: Role },
    #[error("cross-site request refused: {0}")]
    CrossSite(String),
    /// Input the caller can fix; `code` is the error code clients match on.
    #[error("{message}")]
    BadInput { code: &'static str, message: String },
    /// A batch of records refused: the JSONPath of the value and why.
    #[error("{0}")]
    InvalidRecords(String),
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// A request that conflicts with what is stored; `code` for clients.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the organization is not subscribed to {framework}: an owner or admin subscribes with PUT /organizations/{org}/compliance-subscriptions/{framework}")]
    SubscriptionRequired { org: String, framework: String },
    #[error("the platform's signing key is not configured")]
    SigningKeyMissing,
    #[error("the platform's signing key is not usable; see the server log")]
    SigningKeyUnusable(#[source] anyhow::Error),
    #[error("the platform's HMAC key is not configured")]
    HmacKeyMissing,
    #[error("this report failed and holds no packet")]
    ReportFailed,
    /// A stored packet that no longer verifies against the published keys
    /// (its key was revoked): nothing is derived from it.
    #[error("{0}; nothing is compared with a packet that does not verify")]
    Unverifiable(String),
    /// A scheduled period another server generated, or whose claim it took over.
    #[error("the scheduled period is another server's")]
    LostClaim,
    #[error("report {report_id} failed; it is listed with status failed")]
    GenerationFailed {
        report_id: String,
        #[source]
        cause: anyhow::Error,
    },
    #[error("the PDF is being rendered; retry in {} s", retry_after.as_secs().max(1))]
    Rendering { retry_after: Duration },
    #[error("the database does not answer")]
    DatabaseUnreachable,
    #[error("internal error; the request id identifies it in the server log")]
    Internal(#[source] anyhow::Error),
}

impl ServiceError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::BadInput {
            code,
            message: message.into(),
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ServiceError::Internal(e.into())
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Internal(e.into())
    }
}

impl From<anyhow::Error> for ServiceError {
    fn from(e: anyhow::Error) -> Self {
        ServiceError::Internal(e)
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Everything a use case may need: the server's state.
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
    verified: VerifiedCache,
    logins: LoginLimits,
    /// Background work (the render workers, rehashing passwords), so
    /// shutdown can wait for it.
    pub background: tokio_util::task::TaskTracker,
    /// The PDF render queue of this server.
    pub render: render::Queue,
    /// The transparency log of packets and key events.
    pub log: log::TransparencyLog,
    /// The RFC 3161 authority, when one is configured.
    pub tsa: Option<crate::tsa::Tsa>,
    /// This server's part in generating scheduled packets.
    pub scheduler: schedule::Scheduler,
    /// This server's webhook delivery workers.
    pub webhooks: webhooks::Queue,
    /// Turns at the end of a series ([`App::series_turn`]).
    series_turns: Vec<tokio::sync::Mutex<()>>,
    /// PDF renderings at once (one per core), workers and requests together:
    /// each holds a typst compilation in memory.
    render_slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("backend", &self.db.backend)
            .finish_non_exhaustive()
    }
}

/// What [`App::new`] needs beyond the database.
pub struct Config {
    pub zones: Catalogue,
    pub frameworks: FrameworkSet,
    pub admin_token: Option<String>,
    pub keys: crate::keys::KeySource,
    pub hmac_key: Option<Vec<u8>>,
    pub renderer: Arc<crate::pdf::Renderer>,
    pub plugins: Option<Arc<crate::plugins::Plugins>>,
    pub public_url: String,
    pub clock: Clock,
    /// Failed logins a minute allowed per client address and per username.
    pub login_failures: crate::auth::throttle::FailureLimits,
    /// How this server takes part in the PDF render queue.
    pub render: render::Settings,
    /// The transparency log's key file; `None`: the key kept in the database.
    pub log_key_file: Option<std::path::PathBuf>,
    /// The transparency log's origin, fixed at the first start.
    pub log_origin: Option<String>,
    /// The RFC 3161 authority that timestamps every packet's signature.
    pub tsa: Option<crate::tsa::Tsa>,
    /// How this server delivers webhooks.
    pub webhooks: webhooks::Settings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl App {
    pub async fn new(db: Db, c: Config) -> anyhow::Result<Arc<Self>> {
        let metrics = Metrics::new()?;
        let decoy_hash = crate::auth::password::decoy_hash()?;
        let csrf_key = csrf_key(&db).await?;
        let log = log::TransparencyLog::open(
            &db,
            c.log_key_file.as_deref(),
            c.log_origin.as_deref(),
            (c.clock)(),
        )
        .await?;
        Ok(Arc::new_cyclic(|me| App {
            me: me.clone(),
            db,
            keys: c.keys,
            hmac_key: c.hmac_key,
            renderer: c.renderer,
            plugins: c.plugins,
            csrf_key,
            public_url: c.public_url,
            zones: c.zones,
            frameworks: c.frameworks,
            metrics,
            admin_token: c.admin_token,
            clock: c.clock,
            decoy_hash,
            verified: VerifiedCache::new(),
            logins: LoginLimits::new(c.login_failures),
            background: tokio_util::task::TaskTracker::new(),
            render: render::Queue::new(c.render),
            log,
            tsa: c.tsa,
            scheduler: schedule::Scheduler::default(),
            webhooks: webhooks::Queue::new(c.webhooks),
            series_turns: (0..SERIES_TURNS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            render_slots: Arc::new(tokio::sync::Semaphore::new(crate::cores())),
        }))
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// This server's turn at the end of `org`'s series of `framework`: held
    /// from reading the end to committing the packet that moves it, so that
    /// generations of one series on this server link one after the other
    /// instead of signing over the same end and all but one signing again.
    /// (Servers sharing a database still race; the guarded move settles
    /// that, `service::generate`.) Series share one of [`SERIES_TURNS`]
    /// turns by hash.
    pub async fn series_turn(&self, org: &str, framework: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (org, framework).hash(&mut h);
        let i = (h.finish() % self.series_turns.len() as u64) as usize;
        self.series_turns[i].lock().await
    }

    /// The framework `id`, shared, or [`ServiceError::UnknownFramework`].
    pub fn framework_shared(&self, id: &str) -> Result<Arc<Framework>> {
        self.framework(id)?;
        self.frameworks
            .shared(id)
            .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("framework {id} vanished")))
    }

    /// The framework `id`, or [`ServiceError::UnknownFramework`].
    pub fn framework(&self, id: &str) -> Result<&Framework> {
        self.frameworks
            .get(id)
            .ok_or_else(|| ServiceError::UnknownFramework {
                id: id.to_owned(),
                known: self.frameworks.ids().join(", "),
            })
    }
}

/// The period of a request: from `start` to `end` (default: now), or the
/// calendar month ending at `end` when no start is given; 400 when inverted or
/// when it would start before 1970.
pub fn period(
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    now: Timestamp,
) -> Result<vouch_engine::Period> {
    let end = end.unwrap_or(now);
    let period = match start {
        Some(start) => vouch_engine::Period::new(start, end)
            .map_err(|e| ServiceError::bad("bad_period", e.to_string()))?,
        None => vouch_engine::Period::month_ending_at(end),
    };
    if !period.start.in_range() {
        return Err(ServiceError::bad(
            "bad_period",
            "the period would start before 1970-01-01T00:00:00Z",
        ));
    }
    Ok(period)
}

/// The key of the CSRF tokens: random, made once, shared through the database.
async fn csrf_key(db: &Db) -> anyhow::Result<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine as _;
    use rand_core::RngCore;
    let mut fresh = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut fresh);
    let value =
        crate::store::users::setting_or_insert(db, "csrf_key", &B64URL.encode(fresh)).await?;
    Ok(B64URL.decode(value)?)
}
