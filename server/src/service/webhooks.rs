//! Signed webhooks, as the Standard Webhooks specification has them.
//!
//! Owners and admins register an endpoint (an `https://` URL; `http://`
//! and private addresses only with [`Settings::allow_private`]) for some of
//! [`EventType`]s; its secret (`whsec_` and base64 of 32 random bytes) is
//! answered once. An event is written in the transaction of what it
//! reports, with one delivery per endpoint that receives it; every server
//! runs workers that take due deliveries (one server at a time, a lease in
//! the row) and POST them with the headers `webhook-id` (the event's id,
//! the same at every attempt), `webhook-timestamp` and `webhook-signature`
//! (`v1,` and base64 of HMAC-SHA256 over `id.timestamp.body`). A 2xx ends
//! the delivery for good; anything else is tried again after
//! [`BACKOFF`], up to its length, and a restart loses nothing: the queue is
//! the table.

use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::Mac;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vouch_engine::Timestamp;

use super::{App, Caller, Result, ServiceError};
use crate::store::{audit, webhooks};

/// Seconds before each retry: the first attempt is at once, then these;
/// after the last, the delivery stays failed (about 17 hours in all).
pub const BACKOFF: [i64; 8] = [5, 30, 120, 600, 1800, 7200, 18_000, 36_000];
/// How long a taken delivery is its server's (a request times out sooner).
const LEASE: i64 = 60;
/// How long a receiver has to answer.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Endpoints per organization at most.
const MAX_ENDPOINTS: usize = 20;

/// How this server delivers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Delivery workers on this server (0: none; deliveries wait for another server).
    pub workers: usize,
    /// Whether endpoints may be `http://` or resolve to loopback, private or
    /// link-local addresses (tests, and a platform whose receivers are
    /// inside its own network).
    pub allow_private: bool,
    /// How often an idle worker looks for due deliveries.
    pub poll: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 1,
            allow_private: false,
            poll: std::time::Duration::from_secs(2),
        }
    }
}

/// This server's delivery workers (their name in `webhook_deliveries.worker`).
pub type Queue = super::Workers<Settings>;

/// Starts this server's delivery workers.
pub fn start_workers(app: &Arc<App>) {
    for _ in 0..app.webhooks.settings.workers {
        let app = app.clone();
        app.background.clone().spawn(async move {
            let q = &app.webhooks;
            while !q.signals.stopped() {
                if let Err(e) = deliver_due(&app).await {
                    tracing::warn!(error = %format!("{e:#}"), "the webhook queue is unreachable");
                }
                q.signals.idle(q.settings.poll).await;
            }
        });
    }
}

/// Delivers every delivery due now; how many attempts were made.
pub async fn deliver_due(app: &App) -> anyhow::Result<usize> {
    let mut n = 0;
    let worker = &app.webhooks.signals.id;
    while let Some(due) = webhooks::take(&app.db, worker, app.now().unix_seconds(), LEASE).await? {
        n += 1;
        let attempt = attempt(app, &due).await;
        if let webhooks::Attempt::Failed { error, .. } = &attempt {
            tracing::info!(event_id = %due.event_id, endpoint_id = %due.endpoint_id, attempt = due.attempt, %error, "webhook delivery failed");
        }
        webhooks::finish(&app.db, &due, worker, &attempt).await?;
        if app.webhooks.signals.stopped() {
            break;
        }
    }
    Ok(n)
}

/// One POST of a delivery, and what to record of it.
async fn attempt(app: &App, due: &webhooks::Due) -> webhooks::Attempt {
    let allow_private = app.webhooks.settings.allow_private;
    let sent = match check_destination(&due.url, allow_private).await {
        Ok(()) => {
            let (url, headers, body) = (due.url.clone(), headers(due), due.payload.clone());
            tokio::task::spawn_blocking(move || post(&url, &headers, body))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        }
        Err(e) => Err(e),
    };
    let now = app.now().unix_seconds();
    match sent {
        Ok(status) if (200..300).contains(&status) => {
            webhooks::Attempt::Delivered { status, at: now }
        }
        other => {
            let (status, error) = match other {
                Ok(s) => (Some(s), format!("the endpoint answered {s}")),
                Err(e) => (None, e),
            };
            let retry_at = usize::try_from(due.attempt - 1)
                .ok()
                .and_then(|i| BACKOFF.get(i))
                .map(|wait| now.saturating_add(*wait));
            webhooks::Attempt::Failed {
                status,
                error,
                retry_at,
            }
        }
    }
}

/// The Standard Webhooks headers of a delivery, signed now (the wall
/// clock: receivers check the timestamp against theirs).
fn headers(due: &webhooks::Due) -> Vec<(&'static str, String)> {
    let timestamp = chrono::Utc::now().timestamp();
    vec![
        ("webhook-id", due.event_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            sign(&due.secret, &due.event_id, timestamp, &due.payload).unwrap_or_default(),
        ),
        ("content-type", "application/json".into()),
    ]
}

/// `v1,` and base64 of HMAC-SHA256(secret, `id.timestamp.body`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = B64.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// POSTs `body`; the status, or why nothing was answered. No redirect is
/// followed (a receiver that moved is re-registered), and the answer's
/// body is not read beyond 64 KiB.
fn post(url: &str, headers: &[(&str, String)], body: String) -> std::result::Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(url);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let mut resp = req.send(body).map_err(|e| e.to_string())?;
    let _ = resp.body_mut().with_config().limit(64 * 1024).read_to_vec();
    Ok(resp.status().as_u16())
}

/// Refuses a URL that is not `https://` (or `http://` when allowed), holds
/// credentials, or names a loopback, private, link-local or unspecified
/// address or `localhost` (unless allowed). No name is resolved here: what
/// a name resolves to is checked at each delivery ([`check_destination`]).
pub fn check_url(url: &str, allow_private: bool) -> std::result::Result<(), String> {
    destination(url, allow_private).map(drop)
}

/// [`check_url`]'s checks; the host and port to connect to.
fn destination(url: &str, allow_private: bool) -> std::result::Result<(String, u16), String> {
    let uri: warp::http::Uri = url.parse().map_err(|_| "not a URL".to_owned())?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") if allow_private => 80,
        _ => return Err("an endpoint URL is https://".into()),
    };
    let authority = uri.authority().ok_or("the URL names no host")?;
    if authority.as_str().contains('@') {
        return Err("an endpoint URL holds no credentials".into());
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    let local =
        host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
    if !allow_private && (local || host.parse::<IpAddr>().is_ok_and(|ip| !is_public(ip))) {
        return Err(format!("{host} is not a public address"));
    }
    Ok((
        host.to_owned(),
        authority.port_u16().unwrap_or(default_port),
    ))
}

/// [`check_url`], and (unless private addresses are allowed) that every
/// address the host resolves to is public: the server does not probe the
/// network it runs in for whoever registers an endpoint.
pub async fn check_destination(url: &str, allow_private: bool) -> std::result::Result<(), String> {
    let (host, port) = destination(url, allow_private)?;
    if allow_private {
        return Ok(());
    }
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| format!("{host} does not resolve"))?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() || addrs.iter().any(|ip| !is_public(*ip)) {
        return Err(format!("{host} is not a public address"));
    }
    Ok(())
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            !(v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_documentation()
                || v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64
                || v.octets()[0] >= 224)
        }
        IpAddr::V6(v) => {
            if let Some(v4) = v.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v.segments()[0];
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The shape of an endpoint URL the schema promises to accept: `https://`,
/// a host name or IPv4 address, a port, a path. (`http://` and private
/// addresses, with [`Settings::allow_private`], are beyond it.)
pub const URL_PATTERN: &str =
    "^https://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]{0,1024})?$";

/// An event an endpoint may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum EventType {
    #[serde(rename = "packet.generated")]
    PacketGenerated,
    #[serde(rename = "packet.failed")]
    PacketFailed,
    #[serde(rename = "control.regressed")]
    ControlRegressed,
    #[serde(rename = "signing_key.rotated")]
    KeyRotated,
    #[serde(rename = "signing_key.revoked")]
    KeyRevoked,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PacketGenerated => "packet.generated",
            EventType::PacketFailed => "packet.failed",
            EventType::ControlRegressed => "control.regressed",
            EventType::KeyRotated => "signing_key.rotated",
            EventType::KeyRevoked => "signing_key.revoked",
        }
    }
}

/// What `POST .../webhooks` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "WebhookRequest")]
pub struct NewWebhook {
    /// Where deliveries are POSTed: `https://` on a public address.
    #[schemars(pattern(URL_PATTERN), length(max = 2048))]
    pub url: String,
    /// The events the endpoint receives: at least one.
    #[schemars(length(min = 1, max = 5))]
    pub event_types: Vec<EventType>,
}

/// An endpoint as listed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Webhook {
    pub endpoint_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub created_at: Option<Timestamp>,
    pub created_by: String,
    /// Deliveries waiting (or being retried), delivered, and out of attempts.
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    /// Why the latest failed attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A new endpoint, with its secret: shown this once.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "WebhookCreated")]
pub struct Created {
    pub endpoint_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub created_at: Timestamp,
    /// `whsec_` and base64 of 32 random bytes: verify deliveries with it
    /// (any Standard Webhooks library). It is not shown again.
    pub secret: String,
}

/// The organization's endpoints (owners and admins).
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<Webhook>> {
    Ok(webhooks::list(&app.db, &caller.org_id)
        .await?
        .into_iter()
        .map(|e| Webhook {
            endpoint_id: e.endpoint_id,
            url: e.url,
            event_types: e.event_types,
            created_at: Timestamp::from_unix_seconds(e.created_at),
            created_by: e.created_by,
            pending: e.pending,
            delivered: e.delivered,
            failed: e.failed,
            last_error: e.last_error,
        })
        .collect())
}

/// Registers an endpoint (owners and admins); audited.
pub async fn register(app: &App, caller: &Caller, new: NewWebhook) -> Result<Created> {
    if new.url.len() > 2048 {
        return Err(ServiceError::bad(
            "bad_webhook",
            "the URL is longer than 2,048 characters",
        ));
    }
    check_url(&new.url, app.webhooks.settings.allow_private)
        .map_err(|e| ServiceError::bad("bad_webhook", e))?;
    let mut types: Vec<String> = vec![];
    for t in new.event_types {
        if !types.iter().any(|have| have == t.as_str()) {
            types.push(t.as_str().to_owned());
        }
    }
    if types.is_empty() {
        return Err(ServiceError::bad(
            "bad_webhook",
            "name at least one event type",
        ));
    }
    if webhooks::list(&app.db, &caller.org_id).await?.len() >= MAX_ENDPOINTS {
        return Err(ServiceError::Conflict {
            code: "too_many_webhooks",
            message: format!(
                "an organization has at most {MAX_ENDPOINTS} endpoints; delete one first"
            ),
        });
    }
    let mut raw = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut raw);
    let secret = format!("whsec_{}", B64.encode(raw));
    let endpoint_id = format!("wh-{}", uuid::Uuid::now_v7());
    let now = app.now();
    let mut tx = app.db.write().await?;
    webhooks::create(
        &mut tx,
        &webhooks::NewEndpoint {
            endpoint_id: &endpoint_id,
            organization_id: &caller.org_id,
            url: &new.url,
            secret: &secret,
            event_types: &types,
            created_at: now.unix_seconds(),
            created_by: &caller.username,
        },
    )
    .await?;
    audit::append_tx(&mut tx, &caller.entry(now, "webhook.create", &endpoint_id)).await?;
    tx.commit().await?;
    Ok(Created {
        endpoint_id,
        url: new.url,
        event_types: types,
        created_at: now,
        secret,
    })
}

/// Deletes an endpoint (owners and admins); 404 when there is none.
pub async fn delete(app: &App, caller: &Caller, endpoint_id: &str) -> Result<()> {
    let now = app.now();
    let mut tx = app.db.write().await?;
    if !webhooks::delete(&mut tx, &caller.org_id, endpoint_id, now.unix_seconds()).await? {
        return Err(ServiceError::NotFound);
    }
    audit::append_tx(&mut tx, &caller.entry(now, "webhook.delete", endpoint_id)).await?;
    tx.commit().await?;
    Ok(())
}
