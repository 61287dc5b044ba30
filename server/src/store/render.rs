//! The render queue: one job per complete report ([`enqueue`], in the
//! report's own transaction), taken by workers on any server that shares the
//! database. See migration 0010 for the states and columns.
//!
//! Times here are the wall clock in Unix milliseconds, not the server's
//! evidence clock: a lease is an operational deadline between servers.

use sqlx::Row;

use super::{Backend, Db, WriteTx};

/// A job a worker took: the report to render, and how many times it has been taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub report_id: String,
    pub attempts: i64,
}

impl Taken {
    fn read(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Taken {
            report_id: row.try_get("report_id")?,
            attempts: row.try_get("attempts")?,
        })
    }
}

/// Queues the rendering of a report being stored in `tx`.
pub async fn enqueue(tx: &mut WriteTx, report: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO render_jobs (report_id, state, attempts, lease_until, enqueued_at) \
         VALUES ($1, 'queued', 0, 0, $2) ON CONFLICT (report_id) DO NOTHING",
    )
    .bind(report)
    .bind(now_ms)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Takes the oldest job that is ready: queued and past its back-off, or
/// running with its lease run out (its server died), and not out of
/// attempts. On PostgreSQL a job another server is taking is skipped, never
/// waited for nor taken twice; SQLite has one writer at a time.
pub async fn take_next(
    db: &Db,
    worker: &str,
    now_ms: i64,
    lease_ms: i64,
    max_attempts: i64,
) -> Result<Option<Taken>, sqlx::Error> {
    let lock = match db.backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let mut tx = db.write().await?;
    abandon_exhausted(&mut tx, now_ms, max_attempts).await?;
    let sql = format!(
        "UPDATE render_jobs SET state = 'running', attempts = attempts + 1, worker = $1, lease_until = $2 \
         WHERE report_id = (SELECT report_id FROM render_jobs \
           WHERE state IN ('queued', 'running') AND lease_until <= $3 AND attempts < $4 \
           ORDER BY enqueued_at, report_id LIMIT 1{lock}) \
         RETURNING report_id, attempts"
    );
    let row = sqlx::query(&sql)
        .bind(worker)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .bind(max_attempts)
        .fetch_optional(tx.conn())
        .await?;
    tx.commit().await?;
    row.as_ref().map(Taken::read).transpose()
}

/// Takes the job of one report for a request that wants its PDF now, unless
/// its PDF is stored or another worker holds it under a live lease. A job
/// that ran out of attempts is taken too (someone asked for it), and a
/// report without a job (none is expected) gets one. `None`: another worker
/// holds it, or its PDF is stored.
pub async fn take_report(
    db: &Db,
    report: &str,
    worker: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<Taken>, sqlx::Error> {
    let mut tx = db.write().await?;
    enqueue(&mut tx, report, now_ms).await?;
    let row = sqlx::query(
        "UPDATE render_jobs SET state = 'running', attempts = attempts + 1, worker = $1, lease_until = $2 \
         WHERE report_id = $3 AND (state IN ('queued', 'failed', 'done') OR (state = 'running' AND lease_until <= $4)) \
         AND NOT EXISTS (SELECT 1 FROM report_pdfs WHERE report_id = $3) \
         RETURNING report_id, attempts",
    )
    .bind(worker)
    .bind(now_ms + lease_ms)
    .bind(report)
    .bind(now_ms)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    row.as_ref().map(Taken::read).transpose()
}

/// Extends the lease of a job `worker` is rendering to `until_ms`: a live
/// worker keeps its job however long the rendering takes. `false` when the
/// job is no longer this worker's.
pub async fn extend(
    db: &Db,
    report: &str,
    worker: &str,
    until_ms: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.write().await?;
    let n = sqlx::query(
        "UPDATE render_jobs SET lease_until = $1 WHERE report_id = $2 AND worker = $3 AND state = 'running'",
    )
    .bind(until_ms)
    .bind(report)
    .bind(worker)
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// A running job whose server died on its last attempt fails, saying so.
async fn abandon_exhausted(
    tx: &mut WriteTx,
    now_ms: i64,
    max_attempts: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE render_jobs SET state = 'failed', worker = NULL, \
         last_error = 'the server rendering it stopped before it finished, on its last attempt' \
         WHERE state = 'running' AND lease_until <= $1 AND attempts >= $2",
    )
    .bind(now_ms)
    .bind(max_attempts)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Stores the rendered PDF (the first stored wins: renderings of one packet
/// are identical) and ends the job `worker` holds. `false` when the job was
/// no longer this worker's (its lease ran out and another took it).
pub async fn finish(
    db: &Db,
    report: &str,
    worker: &str,
    pdf_base64: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.write().await?;
    super::reports::store_pdf_in(&mut tx, report, pdf_base64, at).await?;
    let ended = sqlx::query(
        "UPDATE render_jobs SET state = 'done', worker = NULL, last_error = NULL \
         WHERE report_id = $1 AND worker = $2 AND state = 'running'",
    )
    .bind(report)
    .bind(worker)
    .execute(tx.conn())
    .await?
    .rows_affected();
    // Whoever holds it now finds the PDF stored and need not render it.
    sqlx::query("UPDATE render_jobs SET state = 'done' WHERE report_id = $1")
        .bind(report)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(ended == 1)
}

/// Records a failed attempt: queued again after `retry_at_ms`, or failed for
/// good once `attempts` reached `max_attempts`.
pub async fn fail(
    db: &Db,
    taken: &Taken,
    worker: &str,
    error: &str,
    retry_at_ms: i64,
    max_attempts: i64,
) -> Result<(), sqlx::Error> {
    let state = if taken.attempts >= max_attempts {
        "failed"
    } else {
        "queued"
    };
    let mut tx = db.write().await?;
    sqlx::query(
        "UPDATE render_jobs SET state = $1, worker = NULL, last_error = $2, lease_until = $3 \
         WHERE report_id = $4 AND worker = $5 AND state = 'running'",
    )
    .bind(state)
    .bind(error)
    .bind(retry_at_ms)
    .bind(&taken.report_id)
    .bind(worker)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}
