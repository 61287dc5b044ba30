//! The PDF render queue: generation stores a job beside the report
//! (`store::render::enqueue`), and a bounded pool of workers on each server
//! takes jobs from the database and renders them. A request for a PDF that
//! is not rendered yet takes its job and renders it now, or, when another
//! worker holds it, waits for that rendering: never two at once.
//!
//! A worker renews its job's lease while it renders; a job taken by a server
//! that dies (kill -9) is taken again when its lease runs out. A job that
//! keeps failing stops after `max_attempts`, its last error shown in the
//! listing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::{App, Result, ServiceError};
use crate::store::{render, reports};

/// How the queue runs on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Workers taking jobs; 0 renders only on demand.
    pub workers: usize,
    /// How long a taken job is its worker's before another may take it.
    pub lease: Duration,
    /// Attempts before a job stays failed.
    pub max_attempts: i64,
    /// How often an idle worker looks for jobs other servers queued or
    /// whose back-off ended (its own server's jobs wake it at once).
    pub poll: Duration,
}

impl Settings {
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);
    pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;
    pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

    /// One worker per core but one (the other serves requests), at least one.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .max(1)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: Settings::default_workers(),
            lease: Settings::DEFAULT_LEASE,
            max_attempts: Settings::DEFAULT_MAX_ATTEMPTS,
            poll: Settings::DEFAULT_POLL,
        }
    }
}

/// The queue's state in the [`App`]: the workers' name in `render_jobs.worker`.
pub type Queue = super::Workers<Settings>;

impl Queue {
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// The wall clock in Unix milliseconds (leases are between servers, not evidence).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
}

/// Starts this server's workers on the app's background tracker.
pub fn start_workers(app: &Arc<App>) {
    for _ in 0..app.render.settings.workers {
        let app = app.clone();
        app.background.clone().spawn(async move { work(app).await });
    }
}

async fn work(app: Arc<App>) {
    let q = &app.render;
    while !q.signals.stopped() {
        match run_one(&app).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "the render queue is unreachable"),
        }
        q.signals.idle(q.settings.poll).await;
    }
}

/// Takes and runs one ready job; `false` when none was ready.
pub async fn run_one(app: &App) -> anyhow::Result<bool> {
    let q = &app.render;
    let Some(taken) = render::take_next(
        &app.db,
        &q.signals.id,
        now_ms(),
        q.lease_ms(),
        q.settings.max_attempts,
    )
    .await?
    else {
        return Ok(false);
    };
    if let Err(e) = run(app, &taken).await {
        tracing::warn!(report_id = %taken.report_id, attempt = taken.attempts, error = %e, "PDF rendering failed");
    }
    Ok(true)
}

/// Runs every ready job in the calling task; how many ran (for tests and
/// tools that drain the queue without workers).
pub async fn run_ready(app: &App) -> anyhow::Result<usize> {
    let mut n = 0;
    while run_one(app).await? {
        n += 1;
    }
    Ok(n)
}

/// Renders a taken job and records the outcome: the PDF stored and the job
/// done, or the attempt's error with a back-off (doubling from 2 s, at most
/// 5 min) or, after the last attempt, failed for good.
async fn run(app: &App, taken: &render::Taken) -> Result<Vec<u8>> {
    let q = &app.render;
    let rendering = async {
        match reports::with_org(&app.db, &taken.report_id).await? {
            Some((org, stored)) => render_pdf(app, &org, &stored).await,
            None => Err(ServiceError::internal(anyhow::anyhow!(
                "report {} is gone",
                taken.report_id
            ))),
        }
    };
    let rendered = tokio::select! {
        r = rendering => r,
        never = keep_lease(app, &taken.report_id) => match never {},
    };
    match rendered {
        Ok(pdf) => {
            let at = app.now().unix_seconds();
            render::finish(
                &app.db,
                &taken.report_id,
                &q.signals.id,
                &B64.encode(&pdf),
                at,
            )
            .await?;
            app.metrics.renders.with_label_values(&["stored"]).inc();
            Ok(pdf)
        }
        Err(e) => {
            app.metrics.renders.with_label_values(&["failed"]).inc();
            let backoff_ms = (1_000i64 << taken.attempts.clamp(1, 9)).min(300_000);
            let reason = failure_reason(&e);
            render::fail(
                &app.db,
                taken,
                &q.signals.id,
                &reason,
                now_ms() + backoff_ms,
                q.settings.max_attempts,
            )
            .await?;
            Err(e)
        }
    }
}

/// Renews the lease of a job while it renders, every third of the lease,
/// so that only a dead server's job is ever taken again. Never returns.
async fn keep_lease(app: &App, report: &str) -> std::convert::Infallible {
    let q = &app.render;
    loop {
        tokio::time::sleep(q.settings.lease / 3).await;
        match render::extend(&app.db, report, &q.signals.id, now_ms() + q.lease_ms()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(report_id = %report, "the render job is no longer this worker's (its lease ran out)");
            }
            Err(e) => {
                tracing::warn!(report_id = %report, error = %e, "the render lease could not be renewed");
            }
        }
    }
}

/// What the listing shows of a failed rendering: the renderer's message
/// (about the template and the packet, never a secret) on one line, at most
/// [`REASON_LIMIT`] characters.
fn failure_reason(e: &ServiceError) -> String {
    let text = match e {
        ServiceError::Internal(cause) => format!("{cause:#}"),
        other => other.to_string(),
    };
    let mut chars = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c });
    let mut reason: String = chars.by_ref().take(REASON_LIMIT).collect();
    if chars.next().is_some() {
        reason.push('…');
    }
    reason
}

const REASON_LIMIT: usize = 300;

/// Renders a complete report's PDF (bounded with the other renderings in
/// flight on this server by the app's render slots).
async fn render_pdf(app: &App, org: &str, r: &reports::Stored) -> Result<Vec<u8>> {
    let (canonical, signature) = super::generate::signed_parts(r)?;
    let canonical = canonical.as_bytes().to_vec();
    let framework_name = app
        .frameworks
        .get(&r.framework)
        .map_or_else(|| r.framework.clone(), |f| f.name.clone());
    let links = crate::pdf::Links::of(&app.public_url, org, &r.report_id);
    let renderer = app.renderer.clone();
    let id = r.report_id.clone();
    let _slot = app
        .render_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(ServiceError::internal)?;
    tokio::task::spawn_blocking(move || {
        renderer.render(&id, &canonical, &signature, &framework_name, &links)
    })
    .await
    .map_err(ServiceError::internal)?
    .map_err(|e| ServiceError::internal(anyhow::anyhow!("rendering {}: {e}", r.report_id)))
}

/// How long a request waits for a rendering another worker holds before it
/// is told to come back (503 with Retry-After).
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(20);

/// The PDF of a complete report now: stored, or rendered for this request
/// (taking its job, so no worker renders it at the same time), or, while
/// another worker renders it, that worker's once stored. `true` when it was
/// rendered for this request.
pub async fn pdf_now(app: &App, r: &reports::Stored) -> Result<(Vec<u8>, bool)> {
    let q = &app.render;
    let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHERS;
    loop {
        if let Some(b64) = reports::pdf(&app.db, &r.report_id).await? {
            return Ok((B64.decode(b64).map_err(ServiceError::internal)?, false));
        }
        if let Some(taken) =
            render::take_report(&app.db, &r.report_id, &q.signals.id, now_ms(), q.lease_ms())
                .await?
        {
            return run(app, &taken).await.map(|pdf| (pdf, true));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ServiceError::Rendering {
                retry_after: Duration::from_secs(5),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reason_is_one_bounded_line() {
        let e = ServiceError::internal(anyhow::anyhow!("rendering r-1: error\n  at line 3\n"));
        assert_eq!(failure_reason(&e), "rendering r-1: error   at line 3");
        let long = ServiceError::internal(anyhow::anyhow!("é{}", "x".repeat(400)));
        let reason = failure_reason(&long);
        assert_eq!(reason.chars().count(), REASON_LIMIT + 1);
        assert!(reason.starts_with('é') && reason.ends_with('…'));
        let exact = ServiceError::internal(anyhow::anyhow!("{}", "y".repeat(REASON_LIMIT)));
        assert_eq!(failure_reason(&exact), "y".repeat(REASON_LIMIT));
    }
}
