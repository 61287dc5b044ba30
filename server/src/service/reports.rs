//! Reports after generation: the listing, the packet download, the PDF
//! rendition, and the published keys that verify them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use schemars::JsonSchema;
use serde::Serialize;
use vouch_engine::attest::Predicate;
use vouch_engine::Timestamp;

use super::{App, Caller, Result, ServiceError};
use crate::store::reports;

/// One line of the listing, as answered.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportRecord {
    pub report_id: String,
    pub framework: String,
    pub schema_version: String,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    pub generated_at: Option<Timestamp>,
    pub key_id: Option<String>,
    #[schemars(schema_with = "report_status")]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub pdf_available: bool,
    /// Where the PDF's rendering is: `queued` (waiting, or waiting to be
    /// tried again after a failed attempt), `rendering`, `ready`, or
    /// `failed` (out of attempts; `GET .../pdf` still tries once more).
    /// Absent for a failed report.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "pdf_status")]
    pub pdf_status: Option<&'static str>,
    /// Why the last rendering attempt failed, while the PDF is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pdf_error: Option<String>,
    /// Who asked for it: a member (`on_demand`) or the schedule (`scheduled`).
    #[schemars(schema_with = "trigger")]
    pub trigger: String,
    /// Until when the packet says its evidence holds (absent when its
    /// framework sets no validity, and for failed reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    /// Whether `valid_until` has passed: the packet is stale.
    pub stale: bool,
    /// The canonical_sha256 of the packet before it in its series (absent
    /// for the first, for failed reports and for packets from before series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_canonical_sha256: Option<String>,
}

fn trigger(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["on_demand", "scheduled"]
    })
}

fn pdf_status(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["queued", "rendering", "ready", "failed"]
    })
}

fn report_status(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": [reports::Status::Complete.as_str(), reports::Status::Failed.as_str()]
    })
}

/// A page of the listing.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "ReportList")]
pub struct Page {
    pub reports: Vec<ReportRecord>,
    pub next_cursor: Option<String>,
}

/// What the listing asks for.
#[derive(Debug, Default)]
pub struct Listing {
    pub framework: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

fn encode_cursor(generated_at: i64, id: &str) -> String {
    B64URL.encode(format!("{generated_at}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let text = String::from_utf8(B64URL.decode(c).ok()?).ok()?;
    let (t, id) = text.split_once(':')?;
    Some((t.parse().ok()?, id.to_owned()))
}

/// Newest first; the cursor is the (generated_at, report_id) of the last
/// record returned, so reports generated meanwhile never shift a page.
pub async fn list(app: &App, caller: &Caller, q: Listing) -> Result<Page> {
    let limit = match q.limit {
        None => 50,
        Some(n) if (1..=200).contains(&n) => n,
        Some(_) => {
            return Err(ServiceError::bad(
                "bad_limit",
                "limit is an integer from 1 to 200",
            ))
        }
    };
    if let Some(f) = &q.framework {
        app.framework(f)?;
    }
    let cursor = match &q.cursor {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ServiceError::bad("bad_cursor", "cursor is not one this server gave out")
        })?),
    };
    let rows = reports::list(
        &app.db,
        &caller.org_id,
        q.framework.as_deref(),
        cursor.as_ref().map(|(t, id)| (*t, id.as_str())),
        limit + 1,
        caller.scopes.as_deref(),
    )
    .await?;
    if caller.scopes.is_some() {
        // Every read of an outside auditor is in the audit log.
        caller
            .audit(app, "report.list", q.framework.as_deref().unwrap_or("*"))
            .await?;
    }
    let next_cursor = (rows.len() as i64 > limit)
        .then(|| rows.get(limit as usize - 1))
        .flatten()
        .map(|r| encode_cursor(r.generated_at, &r.report_id));
    let now = app.now();
    let reports = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| ReportRecord {
            trigger: r.trigger,
            valid_until: r.valid_until.and_then(Timestamp::from_unix_seconds),
            stale: r.valid_until.is_some_and(|t| t < now.unix_seconds()),
            previous_canonical_sha256: r.previous_sha256,
            report_id: r.report_id,
            framework: r.framework,
            schema_version: r.schema_version,
            period_start: Timestamp::from_unix_seconds(r.period_start),
            period_end: Timestamp::from_unix_seconds(r.period_end),
            generated_at: Timestamp::from_unix_seconds(r.generated_at),
            key_id: r.key_id,
            status: r.status.as_str(),
            failure_reason: r.failure_reason,
            pdf_status: (r.status == reports::Status::Complete).then_some(
                match (r.pdf_available, r.render_state.as_deref()) {
                    (true, _) | (false, Some("done")) => "ready",
                    (false, Some("running")) => "rendering",
                    (false, Some("failed")) => "failed",
                    (false, _) => "queued",
                },
            ),
            pdf_error: r.render_error.filter(|_| !r.pdf_available),
            pdf_available: r.pdf_available,
        })
        .collect();
    Ok(Page {
        reports,
        next_cursor,
    })
}

/// The complete report `report` of the caller's organization; 404 when there
/// is none (or it is another organization's), 409 when it failed.
async fn complete(app: &App, caller: &Caller, report: &str) -> Result<reports::Stored> {
    let r = reports::get(&app.db, &caller.org_id, report)
        .await?
        .filter(|r| caller.sees(&r.framework, r.period_start, r.period_end))
        .ok_or(ServiceError::NotFound)?;
    if r.status != reports::Status::Complete {
        return Err(ServiceError::ReportFailed);
    }
    Ok(r)
}

/// The same body as at generation, packet bytes identical.
pub async fn download(app: &App, caller: &Caller, report: &str) -> Result<Vec<u8>> {
    let r = complete(app, caller, report).await?;
    let body = super::generate::stored_body(&r)?;
    caller.audit(app, "report.download", report).await?;
    Ok(body)
}

/// The records document the packet was evaluated on: the exact canonical
/// bytes whose SHA-256 the packet names. A report from before the archive
/// existed has none (404).
/// They are served only when their digest is the packet's: a damaged
/// archive is an internal error, never a different document.
pub async fn records(app: &App, caller: &Caller, report: &str) -> Result<Vec<u8>> {
    let r = complete(app, caller, report).await?;
    let archive = reports::records(&app.db, &caller.org_id, report)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let named = archived_digest(&r)?;
    let bytes = tokio::task::spawn_blocking(move || archive.decompress())
        .await
        .map_err(ServiceError::internal)??;
    if vouch_engine::signing::sha256_hex(&bytes) != named {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "the archived records of {report} do not have the digest its packet names"
        )));
    }
    caller.audit(app, "report.records_download", report).await?;
    Ok(bytes)
}

/// The `inputs.records_sha256` a stored packet names.
fn archived_digest(r: &reports::Stored) -> Result<String> {
    let (canonical, _) = super::generate::signed_parts(r)?;
    let (_, inputs) = vouch_engine::reproduce::named_inputs(canonical.as_bytes())
        .map_err(ServiceError::internal)?;
    Ok(inputs.records_sha256)
}

/// Whether a PDF comes from the store or was rendered for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    Stored,
    RenderedNow,
}

/// The PDF of a report: the stored rendition, or rendered now (and stored)
/// when the queue has not rendered it yet or its rendering failed.
pub async fn pdf(app: &App, caller: &Caller, report: &str) -> Result<(Vec<u8>, Rendition)> {
    let r = complete(app, caller, report).await?;
    let (pdf, now) = super::render::pdf_now(app, &r).await?;
    caller.audit(app, "report.download_pdf", report).await?;
    let how = if now {
        Rendition::RenderedNow
    } else {
        Rendition::Stored
    };
    Ok((pdf, how))
}

/// A packet's RFC 3161 time-stamp response (DER); 404 when the server had
/// no authority configured when it was generated.
pub async fn timestamp(app: &App, caller: &Caller, report: &str) -> Result<Vec<u8>> {
    complete(app, caller, report).await?;
    let resp = reports::timestamp(&app.db, &caller.org_id, report)
        .await?
        .ok_or(ServiceError::NotFound)?;
    caller
        .audit(app, "report.timestamp_download", report)
        .await?;
    Ok(resp)
}

/// A packet's inclusion proof in the transparency log, against the log now.
pub async fn inclusion(
    app: &App,
    caller: &Caller,
    report: &str,
) -> Result<vouch_engine::tlog::InclusionProof> {
    complete(app, caller, report).await?;
    let proof = app
        .log
        .inclusion(&app.db, &vouch_engine::tlog::entry::packet_subject(report))
        .await?
        .ok_or(ServiceError::NotFound)?;
    caller
        .audit(app, "report.inclusion_download", report)
        .await?;
    Ok(proof)
}

/// The published keys document (compact JSON): every key ever used, and
/// the transparency log's key.
pub async fn keys_document(app: &App) -> Result<Vec<u8>> {
    let mut doc = crate::keys::document(&app.db).await?;
    doc.log = Some(app.log.published());
    serde_json::to_vec(&doc).map_err(ServiceError::internal)
}

/// One published key as PEM (SubjectPublicKeyInfo), for OpenSSL, cosign
/// and trestle; 404 for a key that was never published.
pub async fn key_pem(app: &App, key_id: &str) -> Result<String> {
    let doc = crate::keys::document(&app.db).await?;
    let key = doc.find(key_id).ok_or(ServiceError::NotFound)?;
    key.spki_pem()
        .map_err(|e| ServiceError::internal(anyhow::anyhow!(e)))
}

/// Which signed form of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The in-toto Statement in its DSSE envelope, with this predicate.
    Attestation(Predicate),
    /// The Sigstore bundle v0.3 around the envelope with vouch's predicate.
    Bundle,
}

/// A packet's stored DSSE envelope, or the bundle around it. A report made
/// before attestations were stored has none (404).
pub async fn attestation(app: &App, caller: &Caller, report: &str, form: Form) -> Result<Vec<u8>> {
    complete(app, caller, report).await?;
    let predicate = match form {
        Form::Attestation(p) => p,
        Form::Bundle => Predicate::Vouch,
    };
    let text = reports::envelope(&app.db, &caller.org_id, report, predicate)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let body = match form {
        Form::Bundle => {
            let envelope: vouch_engine::attest::Envelope =
                serde_json::from_str(&text).map_err(ServiceError::internal)?;
            serde_json::to_vec(&vouch_engine::attest::bundle(&envelope))
                .map_err(ServiceError::internal)?
        }
        Form::Attestation(_) => text.into_bytes(),
    };
    let action = match form {
        Form::Bundle => "report.bundle_download",
        Form::Attestation(_) => "report.attestation_download",
    };
    caller.audit(app, action, report).await?;
    Ok(body)
}

/// The packet as OSCAL assessment-results, made from the stored bytes (the
/// same document at every download).
pub async fn oscal(app: &App, caller: &Caller, report: &str) -> Result<Vec<u8>> {
    let r = complete(app, caller, report).await?;
    let (canonical, _) = super::generate::signed_parts(&r)?;
    let href = format!(
        "{}/organizations/{}/compliance-reports/{report}",
        app.public_url, caller.org_id
    );
    let doc = vouch_engine::oscal::assessment_results(canonical.as_bytes(), Some(report), &href)
        .map_err(ServiceError::internal)?;
    caller.audit(app, "report.oscal_download", report).await?;
    serde_json::to_vec(&doc).map_err(ServiceError::internal)
}

/// How a report's packet differs from another's of the same organization
/// and framework: both verified against the published keys first.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "ReportDiff")]
pub struct Diff {
    /// The later packet (the path's report) and the one it is compared with.
    pub report_id: String,
    pub against: String,
    pub framework: String,
    #[serde(flatten)]
    pub comparison: vouch_engine::compare::Comparison,
}

/// The changes from report `against` to report `report`; 400 without
/// `against` or for packets of different frameworks, 404 when either is
/// not the caller's, 409 when either failed.
pub async fn diff(app: &App, caller: &Caller, report: &str, against: Option<&str>) -> Result<Diff> {
    let against = against.filter(|a| !a.is_empty()).ok_or_else(|| {
        ServiceError::bad(
            "bad_against",
            "against names the report to compare with: ?against={reportId}",
        )
    })?;
    let later = complete(app, caller, report).await?;
    let earlier = complete(app, caller, against).await?;
    let keys = crate::keys::document(&app.db).await?;
    let packet = |r: &reports::Stored| -> Result<vouch_engine::Packet> {
        let body = super::generate::stored_body(r)?;
        vouch_engine::verify::verify_body(&body, &keys)
            .map_err(|e| ServiceError::Unverifiable(format!("report {}: {e}", r.report_id)))?;
        let (canonical, _) = super::generate::signed_parts(r)?;
        serde_json::from_str(canonical).map_err(ServiceError::internal)
    };
    let comparison = vouch_engine::compare::compare(&packet(&earlier)?, &packet(&later)?)
        .map_err(|e| ServiceError::bad("different_frameworks", e.to_string()))?;
    caller.audit(app, "report.diff", report).await?;
    Ok(Diff {
        report_id: later.report_id,
        against: earlier.report_id,
        framework: later.framework,
        comparison,
    })
}
