//! Webhooks (migration 0014): endpoints, events written in the transaction
//! of what they report, and one delivery per event and endpoint, taken by
//! one server at a time and retried with backoff until it is delivered.

use sqlx::Row;
use vouch_engine::Timestamp;

use super::{Db, WriteTx};

/// An endpoint as listed (without its secret).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub endpoint_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub created_at: i64,
    pub created_by: String,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub last_error: Option<String>,
}

/// A new endpoint.
#[derive(Debug, Clone, Copy)]
pub struct NewEndpoint<'a> {
    pub endpoint_id: &'a str,
    pub organization_id: &'a str,
    pub url: &'a str,
    pub secret: &'a str,
    pub event_types: &'a [String],
    pub created_at: i64,
    pub created_by: &'a str,
}

pub async fn create(tx: &mut WriteTx, e: &NewEndpoint<'_>) -> Result<(), sqlx::Error> {
    let types = serde_json::to_string(e.event_types).map_err(|x| sqlx::Error::Encode(x.into()))?;
    sqlx::query(
        "INSERT INTO webhook_endpoints (endpoint_id, organization_id, url, secret, event_types, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.endpoint_id)
    .bind(e.organization_id)
    .bind(e.url)
    .bind(e.secret)
    .bind(types)
    .bind(e.created_at)
    .bind(e.created_by)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The organization's endpoints, oldest first, with their deliveries counted.
pub async fn list(db: &Db, org: &str) -> Result<Vec<Endpoint>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.endpoint_id, e.url, e.event_types, e.created_at, e.created_by, \
         (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.endpoint_id AND d.state = 'pending') AS pending, \
         (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.endpoint_id AND d.state = 'delivered') AS delivered, \
         (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.endpoint_id AND d.state = 'failed') AS failed, \
         (SELECT d.last_error FROM webhook_deliveries d WHERE d.endpoint_id = e.endpoint_id AND d.last_error IS NOT NULL \
          ORDER BY d.next_attempt_at DESC LIMIT 1) AS last_error \
         FROM webhook_endpoints e WHERE e.organization_id = $1 AND e.deleted_at IS NULL \
         ORDER BY e.created_at, e.endpoint_id",
    )
    .bind(org)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let types: String = r.try_get("event_types")?;
            Ok(Endpoint {
                endpoint_id: r.try_get("endpoint_id")?,
                url: r.try_get("url")?,
                event_types: serde_json::from_str(&types)
                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
                created_at: r.try_get("created_at")?,
                created_by: r.try_get("created_by")?,
                pending: r.try_get("pending")?,
                delivered: r.try_get("delivered")?,
                failed: r.try_get("failed")?,
                last_error: r.try_get("last_error")?,
            })
        })
        .collect()
}

/// Deletes an endpoint of `org` (its pending deliveries are not sent);
/// whether there was one.
pub async fn delete(tx: &mut WriteTx, org: &str, id: &str, at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET deleted_at = $3 WHERE organization_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL",
    )
    .bind(org)
    .bind(id)
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The endpoints that receive `event_type` for `org` (for `None`, the
/// platform's own events: every organization's).
const RECEIVING: &str = "FROM webhook_endpoints WHERE deleted_at IS NULL \
     AND ($1 = '' OR organization_id = $1) AND event_types LIKE $2";

fn type_pattern(event_type: &str) -> String {
    // Event types are `service::webhooks::EventType`'s `[a-z_.]` names (`_` matches any one
    // character in LIKE, harmlessly: no two types differ only there).
    format!("%\"{event_type}\"%")
}

/// Whether any endpoint receives `event_type` for `org` (so that the work
/// of making the event is done only then).
pub async fn wanted(db: &Db, org: Option<&str>, event_type: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(&format!("SELECT 1 {RECEIVING} LIMIT 1"))
        .bind(org.unwrap_or_default())
        .bind(type_pattern(event_type))
        .fetch_optional(&db.pool)
        .await?
        .is_some())
}

/// Writes the event `event_type` with `data`, at `at` (`{"type",
/// "timestamp", "data"}`, as the specification suggests, under a new
/// `msg_` id), and a delivery of it to every endpoint that receives it, in
/// `tx`; nothing, not even the body, when none does. The deliveries made.
pub async fn emit(
    tx: &mut WriteTx,
    org: Option<&str>,
    event_type: &str,
    at: Timestamp,
    data: serde_json::Value,
) -> Result<u64, sqlx::Error> {
    let receiving = sqlx::query(&format!("SELECT 1 {RECEIVING} LIMIT 1"))
        .bind(org.unwrap_or_default())
        .bind(type_pattern(event_type))
        .fetch_optional(tx.conn())
        .await?;
    if receiving.is_none() {
        return Ok(0);
    }
    let event_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let body = serde_json::json!({ "type": event_type, "timestamp": at, "data": data }).to_string();
    sqlx::query(
        "INSERT INTO webhook_events (event_id, organization_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&event_id)
    .bind(org)
    .bind(event_type)
    .bind(body)
    .bind(at.unix_seconds())
    .execute(tx.conn())
    .await?;
    let done = sqlx::query(&format!(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, next_attempt_at) \
         SELECT $3, endpoint_id, 'pending', $4 {RECEIVING}"
    ))
    .bind(org.unwrap_or_default())
    .bind(type_pattern(event_type))
    .bind(&event_id)
    .bind(at.unix_seconds())
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

/// A delivery taken by this server.
#[derive(Debug, Clone)]
pub struct Due {
    pub event_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub payload: String,
    /// This attempt's number, from 1.
    pub attempt: i64,
}

/// Takes the oldest due delivery to a live endpoint for `worker` until
/// `now + lease`; `None` when nothing is due.
pub async fn take(db: &Db, worker: &str, now: i64, lease: i64) -> Result<Option<Due>, sqlx::Error> {
    let candidates: Vec<(String, String)> = sqlx::query_as(
        "SELECT d.event_id, d.endpoint_id FROM webhook_deliveries d \
         JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id AND e.deleted_at IS NULL \
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND d.lease_until < $1 \
         ORDER BY d.next_attempt_at, d.event_id LIMIT 8",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    for (event_id, endpoint_id) in candidates {
        let mut tx = db.write().await?;
        let taken = sqlx::query(
            "UPDATE webhook_deliveries SET lease_until = $3, worker = $4, attempts = attempts + 1 \
             WHERE event_id = $1 AND endpoint_id = $2 AND state = 'pending' AND next_attempt_at <= $5 AND lease_until < $5",
        )
        .bind(&event_id)
        .bind(&endpoint_id)
        .bind(now.saturating_add(lease))
        .bind(worker)
        .bind(now)
        .execute(tx.conn())
        .await?;
        if taken.rows_affected() != 1 {
            continue;
        }
        let row = sqlx::query(
            "SELECT e.url, e.secret, v.payload, d.attempts FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id \
             JOIN webhook_events v ON v.event_id = d.event_id \
             WHERE d.event_id = $1 AND d.endpoint_id = $2",
        )
        .bind(&event_id)
        .bind(&endpoint_id)
        .fetch_one(tx.conn())
        .await?;
        tx.commit().await?;
        return Ok(Some(Due {
            url: row.try_get("url")?,
            secret: row.try_get("secret")?,
            payload: row.try_get("payload")?,
            attempt: row.try_get("attempts")?,
            event_id,
            endpoint_id,
        }));
    }
    Ok(None)
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Attempt {
    Delivered {
        status: u16,
        at: i64,
    },
    /// Not delivered: when to try again (`None`: never, out of attempts).
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<i64>,
    },
}

/// Records an attempt by `worker` (nothing when its lease was taken over).
pub async fn finish(
    db: &Db,
    due: &Due,
    worker: &str,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    let mut tx = db.write().await?;
    let q = match attempt {
        Attempt::Delivered { status, at } => sqlx::query(
            "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = $4, last_status = $5, last_error = NULL, lease_until = 0 \
             WHERE event_id = $1 AND endpoint_id = $2 AND worker = $3 AND state = 'pending'",
        )
        .bind(&due.event_id)
        .bind(&due.endpoint_id)
        .bind(worker)
        .bind(*at)
        .bind(i64::from(*status)),
        Attempt::Failed { status, error, retry_at } => sqlx::query(
            "UPDATE webhook_deliveries SET state = $4, next_attempt_at = COALESCE($5, next_attempt_at), last_status = $6, last_error = $7, lease_until = 0 \
             WHERE event_id = $1 AND endpoint_id = $2 AND worker = $3 AND state = 'pending'",
        )
        .bind(&due.event_id)
        .bind(&due.endpoint_id)
        .bind(worker)
        .bind(if retry_at.is_some() { "pending" } else { "failed" })
        .bind(*retry_at)
        .bind(status.map(i64::from))
        .bind(error.as_str()),
    };
    q.execute(tx.conn()).await?;
    tx.commit().await
}
