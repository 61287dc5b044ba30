//! Schedules (migration 0013): each organization's cadence, which
//! subscriptions are paused, the claim of the server generating a
//! subscription's due packets, and the scheduled periods done or failed.

use sqlx::Row;

use super::{Db, WriteTx};

/// An organization's cadence: `monthly` (the default) or `weekly`, since when.
pub async fn cadence(db: &Db, org: &str) -> Result<(String, i64), sqlx::Error> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT cadence, since FROM schedules WHERE organization_id = $1")
            .bind(org)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.unwrap_or_else(|| ("monthly".to_owned(), 0)))
}

/// Sets an organization's cadence; whether it changed.
pub async fn set_cadence(
    tx: &mut WriteTx,
    org: &str,
    cadence: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO schedules (organization_id, cadence, since) VALUES ($1, $2, $3) \
         ON CONFLICT (organization_id) DO UPDATE SET cadence = excluded.cadence, since = excluded.since \
         WHERE schedules.cadence <> excluded.cadence",
    )
    .bind(org)
    .bind(cadence)
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A subscription as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub organization_id: String,
    pub framework: String,
    /// Periods ending after this (Unix seconds) are due: the latest of the
    /// subscription's start, its last resumption and the cadence's change.
    pub from: i64,
    pub cadence: String,
    pub paused_at: Option<i64>,
}

/// The active subscriptions (of `org`, or of every organization), paused
/// ones included.
pub async fn subscriptions(db: &Db, org: Option<&str>) -> Result<Vec<Subscription>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.organization_id, s.framework, s.subscribed_at, s.scheduled_from, s.paused_at, \
         COALESCE(c.cadence, 'monthly') AS cadence, COALESCE(c.since, 0) AS since \
         FROM subscriptions s LEFT JOIN schedules c ON c.organization_id = s.organization_id \
         WHERE s.cancelled_at IS NULL AND ($1 IS NULL OR s.organization_id = $1) \
         ORDER BY s.organization_id, s.framework",
    )
    .bind(org)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let subscribed: i64 = r.try_get("subscribed_at")?;
            let resumed: Option<i64> = r.try_get("scheduled_from")?;
            let since: i64 = r.try_get("since")?;
            Ok(Subscription {
                organization_id: r.try_get("organization_id")?,
                framework: r.try_get("framework")?,
                from: subscribed.max(resumed.unwrap_or(0)).max(since),
                cadence: r.try_get("cadence")?,
                paused_at: r.try_get("paused_at")?,
            })
        })
        .collect()
}

/// Pauses or resumes an active subscription's schedule; `None` when there is
/// no active subscription, else whether anything changed.
pub async fn set_paused(
    tx: &mut WriteTx,
    org: &str,
    framework: &str,
    paused: bool,
    at: i64,
) -> Result<Option<bool>, sqlx::Error> {
    let sql = if paused {
        "UPDATE subscriptions SET paused_at = $3 \
         WHERE organization_id = $1 AND framework = $2 AND cancelled_at IS NULL AND paused_at IS NULL"
    } else {
        "UPDATE subscriptions SET paused_at = NULL, scheduled_from = $3 \
         WHERE organization_id = $1 AND framework = $2 AND cancelled_at IS NULL AND paused_at IS NOT NULL"
    };
    let done = sqlx::query(sql)
        .bind(org)
        .bind(framework)
        .bind(at)
        .execute(tx.conn())
        .await?;
    if done.rows_affected() > 0 {
        return Ok(Some(true));
    }
    let exists = sqlx::query(
        "SELECT 1 FROM subscriptions WHERE organization_id = $1 AND framework = $2 AND cancelled_at IS NULL",
    )
    .bind(org)
    .bind(framework)
    .fetch_optional(tx.conn())
    .await?;
    Ok(exists.map(|_| false))
}

/// Claims a subscription's schedule for `holder` until `until`, unless
/// another holder's claim is still running at `now`; whether it is ours.
pub async fn claim(
    db: &Db,
    org: &str,
    framework: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.write().await?;
    let done = sqlx::query(
        "UPDATE subscriptions SET schedule_holder = $3, schedule_lease_until = $5 \
         WHERE organization_id = $1 AND framework = $2 AND cancelled_at IS NULL AND paused_at IS NULL \
         AND (schedule_holder IS NULL OR schedule_holder = $3 OR schedule_lease_until < $4)",
    )
    .bind(org)
    .bind(framework)
    .bind(holder)
    .bind(now)
    .bind(until)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Ends `holder`'s claim.
pub async fn release(db: &Db, org: &str, framework: &str, holder: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.write().await?;
    sqlx::query(
        "UPDATE subscriptions SET schedule_holder = NULL, schedule_lease_until = NULL \
         WHERE organization_id = $1 AND framework = $2 AND schedule_holder = $3",
    )
    .bind(org)
    .bind(framework)
    .bind(holder)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

/// A scheduled period as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub period_start: i64,
    pub period_end: i64,
    pub done: bool,
    pub report_id: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

/// The scheduled periods of a subscription ending after `after`, oldest first.
pub async fn runs(
    db: &Db,
    org: &str,
    framework: &str,
    after: i64,
) -> Result<Vec<Run>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT period_start, period_end, state, report_id, attempts, next_attempt_at, last_error \
         FROM scheduled_runs WHERE organization_id = $1 AND framework = $2 AND period_end > $3 \
         ORDER BY period_start, period_end",
    )
    .bind(org)
    .bind(framework)
    .bind(after)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Run {
                period_start: r.try_get("period_start")?,
                period_end: r.try_get("period_end")?,
                done: r.try_get::<String, _>("state")? == "done",
                report_id: r.try_get("report_id")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                last_error: r.try_get("last_error")?,
            })
        })
        .collect()
}

/// The period a scheduled generation is for, and whose claim it runs under.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub holder: String,
    pub period_start: i64,
    pub period_end: i64,
}

/// Records a scheduled period as done by `report_id`, in the transaction
/// that stores the report; `false` (write nothing, roll back) when the
/// period is already done or the claim is no longer `holder`'s.
pub async fn record_done(
    tx: &mut WriteTx,
    org: &str,
    framework: &str,
    claim: &Claimed,
    report_id: &str,
) -> Result<bool, sqlx::Error> {
    let held = sqlx::query(
        "SELECT 1 FROM subscriptions WHERE organization_id = $1 AND framework = $2 AND schedule_holder = $3",
    )
    .bind(org)
    .bind(framework)
    .bind(&claim.holder)
    .fetch_optional(tx.conn())
    .await?;
    if held.is_none() {
        return Ok(false);
    }
    let done = sqlx::query(
        "INSERT INTO scheduled_runs (organization_id, framework, period_start, period_end, state, report_id, attempts) \
         VALUES ($1, $2, $3, $4, 'done', $5, 1) \
         ON CONFLICT (organization_id, framework, period_start, period_end) \
         DO UPDATE SET state = 'done', report_id = excluded.report_id, attempts = scheduled_runs.attempts + 1, last_error = NULL \
         WHERE scheduled_runs.state = 'failed'",
    )
    .bind(org)
    .bind(framework)
    .bind(claim.period_start)
    .bind(claim.period_end)
    .bind(report_id)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt at a scheduled period and when to try again.
pub async fn record_failed(
    db: &Db,
    org: &str,
    framework: &str,
    claim: &Claimed,
    error: &str,
    retry_at: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.write().await?;
    sqlx::query(
        "INSERT INTO scheduled_runs (organization_id, framework, period_start, period_end, state, attempts, next_attempt_at, last_error) \
         VALUES ($1, $2, $3, $4, 'failed', 1, $5, $6) \
         ON CONFLICT (organization_id, framework, period_start, period_end) \
         DO UPDATE SET attempts = scheduled_runs.attempts + 1, next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error \
         WHERE scheduled_runs.state = 'failed'",
    )
    .bind(org)
    .bind(framework)
    .bind(claim.period_start)
    .bind(claim.period_end)
    .bind(retry_at)
    .bind(error)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}
