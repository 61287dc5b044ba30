//! Scheduled packets: every active, unpaused subscription gets a packet for
//! each period of its organization's cadence (calendar months by default,
//! or weeks from Monday, UTC), [`DELAY`] after the period ends.
//!
//! Every server runs [`run_due`] every [`INTERVAL`]; the database decides
//! who generates what. A server claims a subscription (a lease in the
//! subscription's row), generates its due periods oldest first, so that the
//! series is in period order, and records each period as done in the
//! transaction that stores its packet: the period's key refuses a second
//! packet, and a server whose claim was taken over (its lease passed) stores
//! nothing. A server that was down finds the periods it missed due when it
//! returns. A failed period is tried again after a backoff, at most
//! [`MAX_ATTEMPTS`] times; later periods wait for it until then.

use chrono::{Datelike, Duration, TimeZone, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vouch_engine::{Period, Timestamp};

use super::generate::{self, Trigger};
use super::{App, Caller, Result, ServiceError};
use crate::auth::Role;
use crate::store::{audit, schedule};

/// How long after a period ends its packet is generated: records of its
/// last hours (backup runs, imports) arrive by then.
pub const DELAY: i64 = 3600;
/// How often each server looks for due packets.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a claim on a subscription's schedule holds without renewal.
pub const LEASE: i64 = 600;
/// Attempts at one scheduled period before it is left failed.
pub const MAX_ATTEMPTS: i64 = 5;
/// Periods generated for one subscription in one pass, at most: a server
/// back after a long absence catches up over several passes.
pub const MAX_PER_PASS: usize = 120;
/// Who the audit log and the report listing name for scheduled packets
/// (not a username: a colon cannot be in one).
pub const ACTOR: &str = "vouch:scheduler";

/// How often packets are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Calendar months, UTC.
    Monthly,
    /// Weeks from Monday 00:00, UTC.
    Weekly,
}

impl Cadence {
    pub fn parse(s: &str) -> Option<Cadence> {
        match s {
            "monthly" => Some(Cadence::Monthly),
            "weekly" => Some(Cadence::Weekly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cadence::Monthly => "monthly",
            Cadence::Weekly => "weekly",
        }
    }

    /// The period of this cadence that holds `t` (start included, end not).
    pub fn period_of(self, t: Timestamp) -> Period {
        let at = t.as_datetime();
        let start = match self {
            Cadence::Monthly => Utc
                .with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
                .single()
                .unwrap_or(at),
            Cadence::Weekly => {
                let day = at.date_naive()
                    - Duration::days(i64::from(at.weekday().num_days_from_monday()));
                day.and_hms_opt(0, 0, 0).map_or(at, |d| d.and_utc())
            }
        };
        let end = match self {
            Cadence::Monthly => start
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(start),
            Cadence::Weekly => start + Duration::days(7),
        };
        Period {
            start: Timestamp::from_datetime(start),
            end: Timestamp::from_datetime(end),
        }
    }

    /// The periods that end after `from` and whose packet is due at `now`,
    /// oldest first (a few hundred a decade: done or not, [`pending`]
    /// bounds what one pass generates).
    pub fn due(self, from: Timestamp, now: Timestamp) -> Vec<Period> {
        let mut out = vec![];
        let mut p = self.period_of(from);
        while p.end.unix_seconds() + DELAY <= now.unix_seconds() {
            out.push(p);
            let next = self.period_of(p.end);
            if next.start <= p.start {
                break;
            }
            p = next;
        }
        out
    }
}

/// This server's part in scheduling: its claims' name
/// (`subscriptions.schedule_holder`) and its stop signal.
#[derive(Debug, Default)]
pub struct Scheduler {
    pub signals: super::Signals,
}

impl Scheduler {
    pub fn stop(&self) {
        self.signals.stop();
    }
}

/// Runs [`run_due`] now and every [`INTERVAL`] until the server stops.
pub fn start(app: &std::sync::Arc<App>) {
    let app = app.clone();
    app.background.clone().spawn(async move {
        let signals = &app.scheduler.signals;
        while !signals.stopped() {
            match run_due(&app).await {
                Ok(n) if n.generated + n.failed > 0 => {
                    tracing::info!(
                        generated = n.generated,
                        failed = n.failed,
                        "scheduled packets"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "the schedule could not be read")
                }
            }
            signals.idle(INTERVAL).await;
        }
    });
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub generated: usize,
    pub failed: usize,
}

/// Generates every scheduled packet due now that no server has generated.
pub async fn run_due(app: &App) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    for sub in schedule::subscriptions(&app.db, None).await? {
        if sub.paused_at.is_some() || app.frameworks.get(&sub.framework).is_none() {
            continue;
        }
        let now = app.now();
        // A read first, so that a server claims only what has work.
        if pending(app, &sub, now).await?.is_empty() {
            continue;
        }
        let holder = &app.scheduler.signals.id;
        let (org, fw) = (&sub.organization_id, &sub.framework);
        let until = now.unix_seconds() + LEASE;
        if !schedule::claim(&app.db, org, fw, holder, now.unix_seconds(), until).await? {
            continue;
        }
        // Again under the claim: another server may have just done them.
        let result = match pending(app, &sub, now).await {
            Ok(periods) => run_subscription(app, &sub, periods, &mut pass).await,
            Err(e) => Err(e),
        };
        schedule::release(&app.db, org, fw, holder).await?;
        result?;
    }
    Ok(pass)
}

/// The due periods of `sub` not yet done, oldest first, with the attempts
/// each had, up to the first that waits for a retry and at most
/// [`MAX_PER_PASS`]; a period out of attempts is passed over.
async fn pending(
    app: &App,
    sub: &schedule::Subscription,
    now: Timestamp,
) -> anyhow::Result<Vec<(Period, i64)>> {
    let cadence = Cadence::parse(&sub.cadence).unwrap_or(Cadence::Monthly);
    let from = Timestamp::from_unix_seconds(sub.from).unwrap_or(now);
    let runs = schedule::runs(&app.db, &sub.organization_id, &sub.framework, sub.from).await?;
    let mut out = vec![];
    for p in cadence.due(from, now) {
        let key = (p.start.unix_seconds(), p.end.unix_seconds());
        match runs.iter().find(|r| (r.period_start, r.period_end) == key) {
            Some(r) if r.done => {}
            Some(r) if r.attempts >= MAX_ATTEMPTS => {}
            Some(r) if r.next_attempt_at > now.unix_seconds() => break,
            run => out.push((p, run.map_or(0, |r| r.attempts))),
        }
        if out.len() == MAX_PER_PASS {
            break;
        }
    }
    Ok(out)
}

async fn run_subscription(
    app: &App,
    sub: &schedule::Subscription,
    periods: Vec<(Period, i64)>,
    pass: &mut Pass,
) -> anyhow::Result<()> {
    let caller = Caller {
        username: ACTOR.to_owned(),
        org_id: sub.organization_id.clone(),
        role: Role::Member,
        remote: None,
        scopes: None,
    };
    for (period, attempts) in periods {
        let claim = schedule::Claimed {
            holder: app.scheduler.signals.id.clone(),
            period_start: period.start.unix_seconds(),
            period_end: period.end.unix_seconds(),
        };
        let asked = generate::Request {
            framework: sub.framework.clone(),
            period_start: Some(period.start),
            period_end: Some(period.end),
            idempotency_key: None,
        };
        match generate::generate_as(app, &caller, asked, Trigger::Scheduled(claim.clone())).await {
            Ok(_) => pass.generated += 1,
            Err(ServiceError::LostClaim) => return Ok(()),
            Err(e) => {
                pass.failed += 1;
                // This attempt was number attempts + 1.
                let backoff = 300i64.saturating_mul(1 << attempts.clamp(0, 10));
                let reason = match &e {
                    ServiceError::GenerationFailed { .. } => generate::FAILURE_REASON.to_owned(),
                    other => other.to_string(),
                };
                tracing::warn!(organization = %sub.organization_id, framework = %sub.framework,
                    period_start = %period.start, error = %e, "a scheduled packet failed");
                schedule::record_failed(
                    &app.db,
                    &sub.organization_id,
                    &sub.framework,
                    &claim,
                    &reason,
                    app.now().unix_seconds().saturating_add(backoff),
                )
                .await?;
                // Later periods wait, so that the series stays in order.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A subscription's schedule, as members see it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SubscriptionSchedule {
    pub framework: String,
    pub paused: bool,
    pub paused_at: Option<Timestamp>,
    /// The next period whose packet is not generated yet, and when it is due.
    pub next_period_start: Option<Timestamp>,
    pub next_period_end: Option<Timestamp>,
    pub next_run_at: Option<Timestamp>,
    /// The latest scheduled period: done (with its report) or failed.
    pub last_run: Option<RunView>,
}

/// One scheduled period's outcome.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunView {
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    /// `done` or `failed`.
    pub state: String,
    pub report_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// An organization's schedule.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Schedule")]
pub struct ScheduleView {
    pub cadence: Cadence,
    /// Seconds after a period ends that its packet is generated.
    pub delay_seconds: i64,
    pub subscriptions: Vec<SubscriptionSchedule>,
}

/// The organization's cadence and each active subscription's schedule.
pub async fn view(app: &App, caller: &Caller) -> Result<ScheduleView> {
    let (cadence, _) = schedule::cadence(&app.db, &caller.org_id).await?;
    let cadence = Cadence::parse(&cadence).unwrap_or(Cadence::Monthly);
    let now = app.now();
    let mut subscriptions = vec![];
    for sub in schedule::subscriptions(&app.db, Some(&caller.org_id)).await? {
        let runs = schedule::runs(&app.db, &sub.organization_id, &sub.framework, sub.from).await?;
        let from = Timestamp::from_unix_seconds(sub.from).unwrap_or(now);
        // The first period from `from` on without a done run.
        let mut p = cadence.period_of(from);
        for _ in 0..10_000 {
            let key = (p.start.unix_seconds(), p.end.unix_seconds());
            if !runs
                .iter()
                .any(|r| r.done && (r.period_start, r.period_end) == key)
            {
                break;
            }
            p = cadence.period_of(p.end);
        }
        let ts = Timestamp::from_unix_seconds;
        let paused = sub.paused_at.is_some();
        subscriptions.push(SubscriptionSchedule {
            framework: sub.framework.clone(),
            paused,
            paused_at: sub.paused_at.and_then(ts),
            next_period_start: (!paused).then_some(p.start),
            next_period_end: (!paused).then_some(p.end),
            next_run_at: (!paused)
                .then(|| ts(p.end.unix_seconds() + DELAY))
                .flatten(),
            last_run: runs.last().and_then(|r| {
                Some(RunView {
                    period_start: ts(r.period_start)?,
                    period_end: ts(r.period_end)?,
                    state: if r.done { "done" } else { "failed" }.to_owned(),
                    report_id: r.report_id.clone(),
                    attempts: r.attempts,
                    last_error: r.last_error.clone(),
                })
            }),
        });
    }
    Ok(ScheduleView {
        cadence,
        delay_seconds: DELAY,
        subscriptions,
    })
}

/// Sets the organization's cadence (owner, admin); audited when it changes.
pub async fn set_cadence(app: &App, caller: &Caller, cadence: Cadence) -> Result<ScheduleView> {
    let now = app.now();
    let mut tx = app.db.write().await?;
    if schedule::set_cadence(
        &mut tx,
        &caller.org_id,
        cadence.as_str(),
        now.unix_seconds(),
    )
    .await?
    {
        audit::append_tx(
            &mut tx,
            &caller.entry(now, "schedule.cadence", cadence.as_str()),
        )
        .await?;
    }
    tx.commit().await?;
    view(app, caller).await
}

/// Pauses or resumes a subscription's schedule (owner, admin); 402 when the
/// organization is not subscribed to the framework.
pub async fn set_paused(
    app: &App,
    caller: &Caller,
    framework: &str,
    paused: bool,
) -> Result<ScheduleView> {
    app.framework(framework)?;
    let now = app.now();
    let mut tx = app.db.write().await?;
    match schedule::set_paused(
        &mut tx,
        &caller.org_id,
        framework,
        paused,
        now.unix_seconds(),
    )
    .await?
    {
        None => {
            return Err(ServiceError::SubscriptionRequired {
                org: caller.org_id.clone(),
                framework: framework.to_owned(),
            })
        }
        Some(true) => {
            let action = if paused {
                "schedule.pause"
            } else {
                "schedule.resume"
            };
            audit::append_tx(&mut tx, &caller.entry(now, action, framework)).await?;
        }
        Some(false) => {}
    }
    tx.commit().await?;
    view(app, caller).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Every due period is listed, however many are already done: a cap here
    /// stopped a weekly schedule for good after 120 weeks.
    #[test]
    fn due_lists_every_period_however_many() {
        let weeks = Cadence::Weekly.due(ts("2026-01-05T00:00:00Z"), ts("2029-01-01T01:00:00Z"));
        assert_eq!(weeks.len(), 156);
        assert_eq!(weeks[155].end, ts("2029-01-01T00:00:00Z"));
        let months = Cadence::Monthly.due(ts("2026-01-01T00:00:00Z"), ts("2037-01-01T01:00:00Z"));
        assert_eq!(months.len(), 132);
        assert_eq!(months.last().unwrap().end, ts("2037-01-01T00:00:00Z"));
    }
}
