//! Generation: a signed evidence packet, in six named steps.
//!
//! ```text
//! authorize  -> the caller is a member; the body names a framework and a valid period
//! (replay)   -> an Idempotency-Key already used for this body answers its report again
//! subscribed -> 402 unless the organization pays for the framework
//! snapshot   -> the records document of the period, read in one transaction
//! evaluate   -> the engine judges every control (plugins included), off the async workers
//! link       -> the packet names the end of its series (the last complete packet of
//!               the organization and framework) inside the signed bytes
//! sign       -> Ed25519 over the OLPC canonical bytes, with the configured key
//! store      -> the report, its audit entry and its render job, in one transaction
//!               that moves the series' end (or, when another packet of the series
//!               was stored since it was read, nothing: link and sign again)
//! enqueue    -> the PDF's render job, stored with the report, wakes a worker; its failure never touches the packet
//! ```
//!
//! A failure after the report id is chosen is stored as a `failed` report
//! (listed, with a reason that names no internal detail); the cause goes to
//! the log with the request id. A failed attempt does not pin its
//! Idempotency-Key: a retry after the fault is fixed generates the packet.

use serde_json::json;
use vouch_engine::attest;
use vouch_engine::packet::assemble_archived;
use vouch_engine::signing::{body_from_parts, PacketSigner, Signature, SignedPacket};
use vouch_engine::{Framework, Period, Timestamp};

use super::{App, Caller, Result, ServiceError};
use crate::store::{self, audit, reports, schedule, series, webhooks};

/// Why a packet is generated.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A member asked for it.
    OnDemand,
    /// The schedule, for a period claimed by this server ([`super::schedule`]).
    Scheduled(schedule::Claimed),
}

impl Trigger {
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::OnDemand => "on_demand",
            Trigger::Scheduled(_) => "scheduled",
        }
    }
}

/// Attempts at linking a packet to the end of its series while other
/// packets of the same series are stored concurrently (each attempt signs
/// again over the new end; one of the concurrent attempts always stores).
const SERIES_ATTEMPTS: usize = 32;

/// What the caller asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub framework: String,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    /// 1 to 255 visible ASCII characters (checked here).
    pub idempotency_key: Option<String>,
}

/// A generated (or replayed) report: the answer body, byte for byte.
#[derive(Debug, Clone)]
pub struct Generated {
    pub report_id: String,
    pub body: Vec<u8>,
    /// Whether an Idempotency-Key answered an earlier report.
    pub replayed: bool,
}

/// What members are told when generation fails; the cause is in the log.
pub const FAILURE_REASON: &str =
    "generation failed; the server log has the cause under this request's id";

pub async fn generate(app: &App, caller: &Caller, req: Request) -> Result<Generated> {
    generate_as(app, caller, req, Trigger::OnDemand).await
}

/// [`generate`] for a member's request or for the schedule.
pub async fn generate_as(
    app: &App,
    caller: &Caller,
    req: Request,
    trigger: Trigger,
) -> Result<Generated> {
    // authorize (membership was checked by the caller's construction)
    let framework = app.framework_shared(&req.framework)?;
    let now = app.now();
    let period = period_of(&req, now)?;
    let key = idempotency_key(req.idempotency_key.as_deref())?;
    let digest = request_digest(&req)?;
    if let Some(k) = key {
        if let Some(done) = replay(app, caller, k, &digest).await? {
            return Ok(done);
        }
    }
    // subscribed
    if !store::subscriptions::is_active(&app.db, &caller.org_id, &framework.framework).await? {
        return Err(ServiceError::SubscriptionRequired {
            org: caller.org_id.clone(),
            framework: framework.framework.clone(),
        });
    }
    let signer = std::sync::Arc::new(signer(app, now).await?);
    let report_id = format!("r-{}", uuid::Uuid::now_v7());
    let key_id = signer.key_id().to_owned();
    let pending = Pending {
        caller,
        report_id: &report_id,
        framework: &framework.framework,
        period: &period,
        now,
        key,
        digest: &digest,
        key_id: &key_id,
        trigger: &trigger,
    };
    // snapshot, evaluate
    let (mut packet, mut archive) = match evaluate(app, caller, &framework, period, now).await {
        Ok(e) => e,
        Err(cause) => return Err(pending.failed(app, cause).await),
    };
    // link to the end of the series, sign, and store, with the records it was
    // computed from and its attestations; again over the new end when
    // another packet of the series was stored in between
    let mut attempt = 0;
    let regressed_wanted =
        webhooks::wanted(&app.db, Some(&caller.org_id), "control.regressed").await?;
    let turn = app.series_turn(&caller.org_id, &framework.framework).await;
    let (done, deliveries) = loop {
        attempt += 1;
        let end = series::end(&app.db, &caller.org_id, &framework.framework).await?;
        packet.series = Some(vouch_engine::packet::SeriesLink {
            previous_canonical_sha256: end.canonical_sha256.clone(),
        });
        let regressed = if regressed_wanted {
            regressions(app, caller, &end, &packet).await?
        } else {
            None
        };
        let done = match seal(app, packet, archive, signer.clone()).await {
            Ok(s) => s,
            Err(cause) => return Err(pending.failed(app, cause).await),
        };
        match pending.store(app, &done, &end, regressed).await? {
            Stored::Done { deliveries } => break (done, deliveries),
            Stored::Replayed(earlier) => return Ok(earlier),
            Stored::SeriesMoved if attempt < SERIES_ATTEMPTS => {
                (packet, archive) = (done.signed.packet, done.archive);
            }
            Stored::SeriesMoved => {
                let cause = anyhow::anyhow!(
                    "the series moved on {SERIES_ATTEMPTS} times while this packet was stored"
                );
                return Err(pending.failed(app, cause).await);
            }
        }
    };
    drop(turn);
    let signed = &done.signed;
    app.metrics
        .packets
        .with_label_values(&[&framework.framework, "complete"])
        .inc();
    // enqueue: the PDF's job was stored with the report, its webhook
    // deliveries (if any endpoint receives them) too; workers here take them now
    app.render.wake();
    if deliveries > 0 {
        app.webhooks.wake();
    }
    Ok(Generated {
        body: signed.body(Some(&report_id)),
        report_id,
        replayed: false,
    })
}

/// The controls that regressed since the packet at the end of the series,
/// for a `control.regressed` webhook (asked only when an endpoint receives
/// it); `None` when nothing regressed.
async fn regressions(
    app: &App,
    caller: &Caller,
    end: &series::End,
    packet: &vouch_engine::Packet,
) -> Result<Option<serde_json::Value>> {
    let Some(previous) = &end.report_id else {
        return Ok(None);
    };
    let Some(stored) = reports::get(&app.db, &caller.org_id, previous).await? else {
        return Ok(None);
    };
    let (canonical, _) = signed_parts(&stored)?;
    let earlier: vouch_engine::Packet =
        serde_json::from_str(canonical).map_err(ServiceError::internal)?;
    let Ok(c) = vouch_engine::compare::compare(&earlier, packet) else {
        return Ok(None);
    };
    let controls: Vec<serde_json::Value> = c
        .regressed()
        .map(|r| json!({ "control_id": r.control_id, "before": r.before, "after": r.after, "findings_added": r.findings_added }))
        .collect();
    Ok((!controls.is_empty()).then(|| {
        json!({ "previous_report_id": previous, "previous_canonical_sha256": end.canonical_sha256, "controls": controls })
    }))
}

/// The period asked for ([`super::period`]), never ending in the future.
fn period_of(req: &Request, now: Timestamp) -> Result<Period> {
    let period = super::period(req.period_start, req.period_end, now)?;
    if period.end > now {
        return Err(ServiceError::bad(
            "bad_period",
            format!("period_end {} is in the future", period.end),
        ));
    }
    Ok(period)
}

fn idempotency_key(key: Option<&str>) -> Result<Option<&str>> {
    match key {
        Some(k) if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(ServiceError::bad(
                "bad_idempotency_key",
                "an Idempotency-Key is 1 to 255 visible ASCII characters",
            ))
        }
        other => Ok(other),
    }
}

/// What was asked (not the defaults filled in), so that a retry of the same
/// body matches its Idempotency-Key whatever the clock says by then.
fn request_digest(req: &Request) -> Result<String> {
    let asked = json!({
        "framework": req.framework,
        "period_start": req.period_start,
        "period_end": req.period_end,
    });
    Ok(vouch_engine::signing::sha256_hex(
        &serde_json::to_vec(&asked).map_err(ServiceError::internal)?,
    ))
}

/// The report an Idempotency-Key already produced for this body; 409 for
/// another body. A replay is audited like the generation it repeats.
async fn replay(app: &App, caller: &Caller, key: &str, digest: &str) -> Result<Option<Generated>> {
    let Some(r) = reports::by_idempotency_key(&app.db, &caller.org_id, key).await? else {
        return Ok(None);
    };
    if r.request_digest.as_deref() != Some(digest) {
        return Err(ServiceError::IdempotencyKeyReused);
    }
    if r.status != reports::Status::Complete {
        // Written by an older version that pinned keys to failures.
        return Ok(None);
    }
    let body = stored_body(&r)?;
    caller
        .audit(app, "report.generate_replayed", &r.report_id)
        .await?;
    Ok(Some(Generated {
        report_id: r.report_id,
        body,
        replayed: true,
    }))
}

/// The canonical packet bytes and the signature of a complete stored report.
pub(super) fn signed_parts(r: &reports::Stored) -> Result<(&str, Signature)> {
    let (Some(canonical), Some(signature)) = (&r.canonical, &r.signature) else {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "report {} is complete but holds no packet",
            r.report_id
        )));
    };
    let sig: Signature = serde_json::from_str(signature).map_err(ServiceError::internal)?;
    Ok((canonical, sig))
}

/// A stored complete report's answer body: byte for byte what generation answered.
pub(super) fn stored_body(r: &reports::Stored) -> Result<Vec<u8>> {
    let (canonical, sig) = signed_parts(r)?;
    Ok(body_from_parts(
        Some(&r.report_id),
        canonical.as_bytes(),
        &sig,
    ))
}

/// The configured signing key, read off the async workers (the path may be
/// anything, a FIFO included); 503 when none is configured or it is unusable.
async fn signer(app: &App, now: Timestamp) -> Result<PacketSigner> {
    match app.keys.signer(&app.db, now).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(ServiceError::SigningKeyMissing),
        Err(e) => Err(ServiceError::SigningKeyUnusable(e)),
    }
}

/// The records of the period, read in one transaction, judged by the
/// framework (plugins included) off the async workers, so that a slow
/// plugin never delays other requests; with the records' bytes whose
/// digest the packet names, compressed to archive beside it.
async fn evaluate(
    app: &App,
    caller: &Caller,
    framework: &std::sync::Arc<Framework>,
    period: Period,
    now: Timestamp,
) -> anyhow::Result<(vouch_engine::Packet, reports::Archive)> {
    let records = store::snapshot::snapshot(&app.db, &app.zones, &caller.org_id, &period)
        .await?
        .ok_or_else(|| anyhow::anyhow!("organization {} vanished", caller.org_id))?;
    let plugins = app.plugins.clone();
    let framework = std::sync::Arc::clone(framework);
    tokio::task::spawn_blocking(move || {
        let host: &dyn vouch_engine::PluginHost = match &plugins {
            Some(p) => p.as_ref(),
            None => &vouch_engine::NoPluginHost,
        };
        let (packet, archived) = assemble_archived(&framework, &records, now, Some(period), host)?;
        anyhow::Ok((packet, reports::Archive::compress(&archived)?))
    })
    .await?
}

/// Signs the packet, and its in-toto Statements with the same key; with an
/// authority configured, timestamps the signature (no packet is stored
/// without its timestamp then: one that fails fails the generation).
async fn seal(
    app: &App,
    packet: vouch_engine::Packet,
    archive: reports::Archive,
    signer: std::sync::Arc<PacketSigner>,
) -> anyhow::Result<Evaluated> {
    let tsa = app.tsa.clone();
    tokio::task::spawn_blocking(move || {
        let signed = signer.sign(packet)?;
        let envelope = |predicate| -> anyhow::Result<String> {
            let st = attest::statement(&signed, predicate)?;
            Ok(serde_json::to_string(&attest::envelope(&signer, &st))?)
        };
        let envelopes = (
            envelope(attest::Predicate::Vouch)?,
            envelope(attest::Predicate::Trestle)?,
        );
        let timestamp = match &tsa {
            None => None,
            Some(tsa) => {
                use base64::Engine as _;
                let raw =
                    base64::engine::general_purpose::STANDARD.decode(&signed.signature.value)?;
                let (resp, info) = tsa.stamp(&raw)?;
                Some((
                    base64::engine::general_purpose::STANDARD.encode(resp),
                    info.gen_time.unix_seconds(),
                ))
            }
        };
        anyhow::Ok(Evaluated {
            signed,
            archive,
            envelopes,
            timestamp,
        })
    })
    .await?
}

/// A signed packet with what is stored beside it.
struct Evaluated {
    signed: SignedPacket,
    archive: reports::Archive,
    /// DSSE envelopes of the packet's Statement: vouch's predicate, trestle's.
    envelopes: (String, String),
    /// With a TSA: its response (base64 DER) and its time (Unix seconds).
    timestamp: Option<(String, i64)>,
}

/// A generation between choosing its id and storing its result.
struct Pending<'a> {
    caller: &'a Caller,
    report_id: &'a str,
    framework: &'a str,
    period: &'a Period,
    now: Timestamp,
    key: Option<&'a str>,
    digest: &'a str,
    key_id: &'a str,
    trigger: &'a Trigger,
}

/// What became of storing a packet.
enum Stored {
    /// Stored, with this many webhook deliveries.
    Done { deliveries: u64 },
    /// A concurrent request with the same Idempotency-Key stored first: its
    /// report is the answer.
    Replayed(Generated),
    /// Another packet of the series was stored since its end was read:
    /// nothing was written; sign again over the new end.
    SeriesMoved,
}

impl Pending<'_> {
    fn report<'b>(
        &'b self,
        outcome: reports::Outcome<'b>,
        previous: Option<&'b str>,
        valid_until: Option<Timestamp>,
    ) -> reports::NewReport<'b> {
        reports::NewReport {
            report_id: self.report_id,
            organization_id: &self.caller.org_id,
            framework: self.framework,
            period: self.period,
            generated_at: self.now.unix_seconds(),
            key_id: match outcome {
                reports::Outcome::Complete { .. } => Some(self.key_id),
                reports::Outcome::Failed { .. } => None,
            },
            outcome,
            idempotency_key: self.key,
            request_digest: self.digest,
            created_by: &self.caller.username,
            previous,
            trigger: self.trigger.as_str(),
            valid_until: valid_until.map(|t| t.unix_seconds()),
        }
    }

    fn entry<'b>(&'b self, action: &'b str) -> audit::Entry<'b> {
        self.caller.entry(self.now, action, self.report_id)
    }

    /// What webhooks say of this report.
    fn event_data(&self) -> serde_json::Value {
        json!({
            "organization_id": self.caller.org_id,
            "report_id": self.report_id,
            "framework": self.framework,
            "period_start": self.period.start,
            "period_end": self.period.end,
            "trigger": self.trigger.as_str(),
        })
    }

    /// Stores the packet, moving the end of its series from `end`, with its
    /// webhook events (`regressed`: the controls that regressed since `end`).
    async fn store(
        &self,
        app: &App,
        done: &Evaluated,
        end: &series::End,
        regressed: Option<serde_json::Value>,
    ) -> Result<Stored> {
        let signed = &done.signed;
        let canonical = std::str::from_utf8(&signed.canonical).map_err(ServiceError::internal)?;
        let signature = serde_json::to_string(&signed.signature).map_err(ServiceError::internal)?;
        let outcome = reports::Outcome::Complete {
            canonical,
            canonical_sha256: &signed.signature.canonical_sha256,
            signature: &signature,
            records: &done.archive,
            envelopes: (&done.envelopes.0, &done.envelopes.1),
            timestamp: done.timestamp.as_ref().map(|(r, t)| (r.as_str(), *t)),
        };
        let (org, framework) = (self.caller.org_id.as_str(), self.framework);
        let sha = signed.signature.canonical_sha256.as_str();
        let written: std::result::Result<Stored, Lost> = async {
            let mut tx = app.db.write().await?;
            if !series::advance(&mut tx, org, framework, end, sha, self.report_id).await? {
                return Ok(Stored::SeriesMoved);
            }
            if let Trigger::Scheduled(claim) = self.trigger {
                if !schedule::record_done(&mut tx, org, framework, claim, self.report_id).await? {
                    return Err(Lost::Claim);
                }
            }
            if let Some(k) = self.key {
                reports::release_failed_key(&mut tx, org, k).await?;
            }
            audit::append_tx(&mut tx, &self.entry("report.generate")).await?;
            let mut data = self.event_data();
            data["canonical_sha256"] = json!(sha);
            data["previous_canonical_sha256"] = json!(end.canonical_sha256);
            data["valid_until"] = json!(signed.packet.valid_until);
            let mut deliveries =
                webhooks::emit(&mut tx, Some(org), "packet.generated", self.now, data).await?;
            if let Some(mut r) = regressed {
                r["report_id"] = json!(self.report_id);
                r["organization_id"] = json!(org);
                r["framework"] = json!(framework);
                deliveries +=
                    webhooks::emit(&mut tx, Some(org), "control.regressed", self.now, r).await?;
            }
            // Last: it appends to the transparency log (store::log).
            let previous = end.canonical_sha256.as_deref();
            reports::insert(
                &mut tx,
                &self.report(outcome, previous, signed.packet.valid_until),
            )
            .await?;
            tx.commit().await?;
            Ok(Stored::Done { deliveries })
        }
        .await;
        match written {
            Ok(stored) => Ok(stored),
            Err(Lost::Claim) => Err(ServiceError::LostClaim),
            Err(Lost::Db(e)) if self.key.is_some() && store::is_unique_violation(&e) => {
                let k = self.key.unwrap_or_default();
                match replay(app, self.caller, k, self.digest).await? {
                    Some(done) => Ok(Stored::Replayed(done)),
                    None => Err(e.into()),
                }
            }
            Err(Lost::Db(e)) => Err(e.into()),
        }
    }

    /// Records the failure (without the cause) and answers it.
    async fn failed(&self, app: &App, cause: anyhow::Error) -> ServiceError {
        let outcome = reports::Outcome::Failed {
            reason: FAILURE_REASON,
        };
        let written = async {
            let mut tx = app.db.write().await?;
            reports::insert(&mut tx, &self.report(outcome, None, None)).await?;
            audit::append_tx(&mut tx, &self.entry("report.generate_failed")).await?;
            let mut data = self.event_data();
            data["reason"] = json!(FAILURE_REASON);
            let deliveries = webhooks::emit(
                &mut tx,
                Some(&self.caller.org_id),
                "packet.failed",
                self.now,
                data,
            )
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(deliveries)
        }
        .await;
        match written {
            Ok(0) => {}
            Ok(_) => app.webhooks.wake(),
            Err(e) => {
                tracing::error!(report_id = %self.report_id, error = %e, "the failed report could not be recorded");
            }
        }
        app.metrics
            .packets
            .with_label_values(&[self.framework, "failed"])
            .inc();
        ServiceError::GenerationFailed {
            report_id: self.report_id.to_owned(),
            cause,
        }
    }
}

/// Why storing a packet wrote nothing.
enum Lost {
    /// The scheduled period is done, or another server took over its claim.
    Claim,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Lost {
    fn from(e: sqlx::Error) -> Self {
        Lost::Db(e)
    }
}
