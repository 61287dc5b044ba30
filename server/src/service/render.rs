//! The PDF render queue: generation stores a job beside the report
//! (`store::render::enqueue`), and a bounded pool of workers on each server
//! takes jobs from the database and renders them. A request for a PDF that
//! is not rendered yet takes its job and renders it now, or, when another
//! worker holds it, waits for that rendering: never two at once.
//!
//! The workers render in a pool of their own at the lowest CPU priority
//! (`SCHED_IDLE` on Linux), so queued renderings take the CPU that generation
//! and requests leave: under a burst the queue grows and drains afterwards. A
//! request's own rendering (`GET …/pdf`) runs at the server's priority, since
//! someone waits for it.
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
        crate::cores().saturating_sub(1).max(1)
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

/// Starts this server's workers on the app's background tracker, rendering
/// in a pool of as many threads as the machine has cores at the lowest
/// priority (the workers bound how many jobs render at once).
pub fn start_workers(app: &Arc<App>) {
    let workers = app.render.settings.workers;
    if workers == 0 {
        return;
    }
    let lane = match idle_pool(crate::cores()) {
        Ok(pool) => Lane::Queue(Arc::new(pool)),
        Err(e) => {
            tracing::warn!(error = %e, "no render pool: the queue renders at the server's priority");
            Lane::Request
        }
    };
    for _ in 0..workers {
        let (app, lane) = (app.clone(), lane.clone());
        app.background
            .clone()
            .spawn(async move { work(app, lane).await });
    }
}

async fn work(app: Arc<App>, lane: Lane) {
    let q = &app.render;
    while !q.signals.stopped() {
        match run_one(&app, &lane).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "the render queue is unreachable"),
        }
        q.signals.idle(q.settings.poll).await;
    }
}

/// Takes and runs one ready job; `false` when none was ready.
async fn run_one(app: &App, lane: &Lane) -> anyhow::Result<bool> {
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
    if let Err(e) = run(app, &taken, lane).await {
        tracing::warn!(report_id = %taken.report_id, attempt = taken.attempts, error = %e, "PDF rendering failed");
    }
    Ok(true)
}

/// Runs every ready job in the calling task, at the server's priority; how
/// many ran (for tests and tools that drain the queue without workers).
pub async fn run_ready(app: &App) -> anyhow::Result<usize> {
    let mut n = 0;
    while run_one(app, &Lane::Request).await? {
        n += 1;
    }
    Ok(n)
}

/// Renders a taken job and records the outcome: the PDF stored and the job
/// done, or the attempt's error with a back-off (doubling from 2 s, at most
/// 5 min) or, after the last attempt, failed for good.
async fn run(app: &App, taken: &render::Taken, lane: &Lane) -> Result<Vec<u8>> {
    let q = &app.render;
    let rendering = async {
        match reports::with_org(&app.db, &taken.report_id).await? {
            Some((org, stored)) => render_pdf(app, &org, &stored, lane).await,
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

/// Renders a complete report's PDF on `lane` (bounded with the other
/// renderings in flight on this server by the app's render slots).
async fn render_pdf(app: &App, org: &str, r: &reports::Stored, lane: &Lane) -> Result<Vec<u8>> {
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
    lane.run(move || renderer.render(&id, &canonical, &signature, &framework_name, &links))
        .await?
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("rendering {}: {e}", r.report_id)))
}

/// Where a rendering runs.
#[derive(Debug, Clone)]
enum Lane {
    /// On tokio's blocking pool at the server's priority: a request waits.
    Request,
    /// In the queue's pool ([`idle_pool`]), at the lowest priority.
    Queue(Arc<rayon::ThreadPool>),
}

impl Lane {
    /// Runs `f` on the lane; a panic in it is an error (in the queue's pool
    /// rayon would otherwise abort the process), and the lane goes on.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let pool = match self {
            Lane::Request => {
                return tokio::task::spawn_blocking(f)
                    .await
                    .map_err(ServiceError::internal)
            }
            Lane::Queue(pool) => pool,
        };
        let (done, answer) = tokio::sync::oneshot::channel();
        pool.spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = done.send(outcome);
        });
        let answer = answer.await.map_err(|_| {
            ServiceError::internal(anyhow::anyhow!("the render pool dropped a rendering"))
        })?;
        answer.map_err(|panic| {
            ServiceError::internal(anyhow::anyhow!(
                "the renderer panicked: {}",
                panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(no message)")
            ))
        })
    }
}

/// The render queue's threads: a rayon pool of `threads` threads (typst and
/// krilla render on rayon, and inside the pool their parallel work stays on
/// it) at the lowest CPU priority ([`lowest_priority`]). A request's
/// rendering runs outside it, its parallel work on rayon's global pool at
/// the server's priority.
fn idle_pool(
    threads: usize,
) -> std::result::Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("vouch-render-{i}"))
        .start_handler(|_| {
            if let Err(e) = lowest_priority() {
                tracing::warn!(error = ?e, "a render thread keeps the server's priority");
            }
        })
        .build()
}

/// Puts the calling thread at the lowest CPU priority an unprivileged
/// process can give one: on Linux `SCHED_IDLE`, which runs only on a core
/// no other thread wants and gives it up as soon as one wakes (nice 19
/// would still take its share of a busy core); elsewhere the lowest nice
/// value.
fn lowest_priority() -> std::result::Result<(), thread_priority::Error> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    }
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
            return run(app, &taken, &Lane::Request)
                .await
                .map(|pdf| (pdf, true));
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

    /// The scheduling policy of the calling thread, from `/proc`.
    #[cfg(target_os = "linux")]
    fn own_policy() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // After the command's closing parenthesis: state is field 3, policy field 41.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(38).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_queue_renders_at_the_lowest_priority_and_a_request_at_the_servers() {
        assert_eq!(own_policy(), libc::SCHED_OTHER);
        // typst's parallel work (rayon) stays at the priority of the lane
        // it was started on: the queue's pool, or rayon's global pool.
        let both = || rayon::join(own_policy, own_policy);
        let idle = (libc::SCHED_IDLE, libc::SCHED_IDLE);
        let queue = Lane::Queue(Arc::new(idle_pool(2).unwrap()));
        assert_eq!(queue.run(own_policy).await.unwrap(), libc::SCHED_IDLE);
        assert_eq!(queue.run(both).await.unwrap(), idle);
        let normal = (libc::SCHED_OTHER, libc::SCHED_OTHER);
        assert_eq!(
            Lane::Request.run(own_policy).await.unwrap(),
            libc::SCHED_OTHER
        );
        assert_eq!(Lane::Request.run(both).await.unwrap(), normal);
    }

    #[tokio::test]
    async fn a_panicking_render_is_an_error_and_the_pool_renders_the_next_one() {
        let pool = Lane::Queue(Arc::new(idle_pool(1).unwrap()));
        let err = pool
            .run(|| -> u8 { panic!("template exploded") })
            .await
            .unwrap_err();
        assert!(
            format!("{err:?}").contains("the renderer panicked: template exploded"),
            "{err:?}"
        );
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
        let err = pool
            .run(|| -> u8 { panic!("{}", String::from("formatted")) })
            .await
            .unwrap_err();
        assert!(format!("{err:?}").contains("formatted"), "{err:?}");
    }

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
