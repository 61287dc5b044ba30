//! The compliance API: subscriptions, packet generation, listing, download,
//! the published keys and the legacy HMAC report.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use sqlx::Row;
use vouch_engine::records::{from_clean_value, parse_json_input};
use vouch_engine::signing::{body_from_parts, Signature};
use vouch_engine::{assemble_with, Period, Timestamp};
use warp::http::{HeaderValue, StatusCode};

use crate::app::{App, Caller};
use crate::auth::Role;
use crate::http::{json, json_bytes, ApiError, HandlerResult, Request};

fn framework_or_404<'a>(app: &'a App, id: &str) -> Result<&'a vouch_engine::Framework, ApiError> {
    app.frameworks.get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_framework",
            format!(
                "no framework `{id}`; the frameworks are {}",
                app.frameworks.ids().join(", ")
            ),
        )
    })
}

// ---------------------------------------------------------------------------
// Subscriptions

#[derive(Debug, Serialize)]
pub struct SubscriptionView {
    pub framework: String,
    pub name: String,
    pub attests: String,
    pub monthly_price_eur: u32,
    pub enabled: bool,
    pub subscribed_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
}

async fn subscription_views(app: &App, org: &str) -> Result<Vec<SubscriptionView>, ApiError> {
    let rows = sqlx::query("SELECT framework, subscribed_at, cancelled_at FROM subscriptions WHERE organization_id = $1")
        .bind(org)
        .fetch_all(&app.db.pool)
        .await?;
    let mut out = vec![];
    for fw in app.frameworks.iter() {
        let row = rows.iter().find(|r| {
            r.try_get::<String, _>("framework")
                .is_ok_and(|f| f == fw.framework)
        });
        let (subscribed_at, cancelled_at) = match row {
            Some(r) => (
                r.try_get::<i64, _>("subscribed_at")
                    .ok()
                    .and_then(Timestamp::from_unix_seconds),
                r.try_get::<Option<i64>, _>("cancelled_at")?
                    .and_then(Timestamp::from_unix_seconds),
            ),
            None => (None, None),
        };
        out.push(SubscriptionView {
            framework: fw.framework.clone(),
            name: fw.name.clone(),
            attests: fw.attests.clone(),
            monthly_price_eur: fw.monthly_price_eur,
            enabled: subscribed_at.is_some() && cancelled_at.is_none(),
            subscribed_at,
            cancelled_at,
        });
    }
    Ok(out)
}

pub async fn list_subscriptions(app: &App, req: &Request, org: &str) -> HandlerResult {
    app.authorize(req, org, Role::Member).await?;
    json(
        StatusCode::OK,
        &json!({ "subscriptions": subscription_views(app, org).await? }),
    )
}

async fn one_subscription(app: &App, org: &str, framework: &str) -> HandlerResult {
    let view = subscription_views(app, org)
        .await?
        .into_iter()
        .find(|s| s.framework == framework)
        .ok_or_else(ApiError::not_found)?;
    json(StatusCode::OK, &view)
}

pub async fn subscribe(app: &App, req: &Request, org: &str, framework: &str) -> HandlerResult {
    set_subscription(app, req, org, framework, true).await
}

pub async fn unsubscribe(app: &App, req: &Request, org: &str, framework: &str) -> HandlerResult {
    set_subscription(app, req, org, framework, false).await
}

/// Subscribes (idempotent; a cancelled subscription is reinstated) or cancels;
/// an actual change is recorded in the audit log in the same transaction.
async fn set_subscription(
    app: &App,
    req: &Request,
    org: &str,
    framework: &str,
    subscribe: bool,
) -> HandlerResult {
    let caller = app.authorize(req, org, Role::Admin).await?;
    crate::ui::check_csrf(app, req, &caller)?;
    framework_or_404(app, framework)?;
    let now = app.now();
    let (sql, action) = if subscribe {
        (
            "INSERT INTO subscriptions (organization_id, framework, subscribed_at, cancelled_at) VALUES ($1, $2, $3, NULL) \
             ON CONFLICT (organization_id, framework) DO UPDATE SET subscribed_at = excluded.subscribed_at, cancelled_at = NULL \
             WHERE subscriptions.cancelled_at IS NOT NULL",
            "subscription.subscribe",
        )
    } else {
        (
            "UPDATE subscriptions SET cancelled_at = $3 WHERE organization_id = $1 AND framework = $2 AND cancelled_at IS NULL",
            "subscription.cancel",
        )
    };
    {
        let _turn = app.db.write_turn().await;
        let mut tx = app.db.pool.begin().await?;
        let changed = sqlx::query(sql)
            .bind(org)
            .bind(framework)
            .bind(now.unix_seconds())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed > 0 {
            let remote = req.remote_ip();
            crate::audit::append_tx(
                &mut tx,
                Some(org),
                now,
                &caller.username,
                action,
                framework,
                remote.as_deref(),
            )
            .await?;
        }
        tx.commit().await?;
    }
    one_subscription(app, org, framework).await
}

async fn is_subscribed(app: &App, org: &str, framework: &str) -> Result<bool, ApiError> {
    Ok(sqlx::query("SELECT 1 FROM subscriptions WHERE organization_id = $1 AND framework = $2 AND cancelled_at IS NULL")
        .bind(org)
        .bind(framework)
        .fetch_optional(&app.db.pool)
        .await?
        .is_some())
}

// ---------------------------------------------------------------------------
// Generation

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody {
    framework: String,
    #[serde(default)]
    period_start: Option<Timestamp>,
    #[serde(default)]
    period_end: Option<Timestamp>,
}

fn report_id() -> String {
    format!("r-{}", uuid::Uuid::now_v7())
}

/// A stored report's answer body: byte for byte what generation answered.
fn stored_body(report_id: &str, canonical: &str, signature: &str) -> Result<Vec<u8>, ApiError> {
    let sig: Signature = serde_json::from_str(signature).map_err(ApiError::internal)?;
    Ok(body_from_parts(Some(report_id), canonical.as_bytes(), &sig))
}

fn created(report_id: &str, body: Vec<u8>, org: &str) -> HandlerResult {
    let mut resp = json_bytes(StatusCode::CREATED, body);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "/organizations/{org}/compliance-reports/{report_id}"
    )) {
        resp.headers_mut().insert("location", v);
    }
    Ok(resp)
}

/// The report an Idempotency-Key already produced, if any.
async fn replay(
    app: &App,
    org: &str,
    key: &str,
    digest: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(row) = sqlx::query(
        "SELECT report_id, status, canonical, signature, request_digest, failure_reason FROM reports WHERE organization_id = $1 AND idempotency_key = $2",
    )
    .bind(org)
    .bind(key)
    .fetch_optional(&app.db.pool)
    .await?
    else {
        return Ok(None);
    };
    let stored_digest: Option<String> = row.try_get("request_digest")?;
    if stored_digest.as_deref() != Some(digest) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    let id: String = row.try_get("report_id")?;
    let status: String = row.try_get("status")?;
    if status != "complete" {
        let reason: Option<String> = row.try_get("failure_reason")?;
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generation_failed",
            format!("report {id} failed: {}", reason.unwrap_or_default()),
        ));
    }
    let canonical: String = row.try_get("canonical")?;
    let signature: String = row.try_get("signature")?;
    Ok(Some(stored_body(&id, &canonical, &signature)?))
}

pub async fn generate(app: &App, req: &Request, org: &str) -> HandlerResult {
    let caller = app.authorize(req, org, Role::Member).await?;
    crate::ui::check_csrf(app, req, &caller)?;
    let value = parse_json_input(&req.body)
        .map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "bad_body",
            "the body is a JSON object such as {\"framework\":\"soc2\"}",
        ));
    }
    let body: GenerateBody =
        from_clean_value(value).map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
    let framework = framework_or_404(app, &body.framework)?.clone();
    let now = app.now();
    let period = match (body.period_start, body.period_end) {
        (None, None) => Period::month_ending_at(now),
        (None, Some(end)) => Period::month_ending_at(end),
        (Some(start), end) => Period::new(start, end.unwrap_or(now))
            .map_err(|e| ApiError::bad_request("bad_period", e.to_string()))?,
    };
    if period.end > now {
        return Err(ApiError::bad_request(
            "bad_period",
            format!("period_end {} is in the future", period.end),
        ));
    }
    let idempotency_key = req.header("idempotency-key").map(str::to_owned);
    if let Some(k) = &idempotency_key {
        if k.is_empty() || k.len() > 255 || !k.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ApiError::bad_request(
                "bad_idempotency_key",
                "an Idempotency-Key is 1 to 255 visible ASCII characters",
            ));
        }
    }
    // What was asked (not the defaults filled in), so that a retry of the same
    // body matches its Idempotency-Key whatever the clock says by then.
    let digest = vouch_engine::signing::sha256_hex(
        &serde_json::to_vec(&json!({"framework": body.framework, "period_start": body.period_start, "period_end": body.period_end}))
            .map_err(ApiError::internal)?,
    );
    if let Some(k) = &idempotency_key {
        if let Some(bytes) = replay(app, org, k, &digest).await? {
            return created(&report_id_of(&bytes), bytes, org);
        }
    }
    if !is_subscribed(app, org, &framework.framework).await? {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "subscription_required",
            format!("the organization is not subscribed to {}: an owner or admin subscribes with PUT /organizations/{org}/compliance-subscriptions/{}", framework.framework, framework.framework),
        ));
    }
    let signer = match app.keys.signer(&app.db, now).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(ApiError::unavailable(
                "signing_key_unavailable",
                "the platform's signing key is not configured",
            ));
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "signing key unusable");
            return Err(ApiError::unavailable(
                "signing_key_unavailable",
                "the platform's signing key is not usable; see the server log",
            ));
        }
    };
    let id = report_id();
    let key_id = signer.key_id().to_owned();
    let outcome = async {
        let records = crate::snapshot::snapshot(&app.db, &app.zones, org, &period)
            .await?
            .ok_or_else(|| anyhow::anyhow!("organization {org} vanished"))?;
        // Evaluation (plugins included) runs off the async workers, so that a
        // slow plugin never delays other requests.
        let plugins = app.plugins.clone();
        let framework = framework.clone();
        let signed = tokio::task::spawn_blocking(move || {
            let host: &dyn vouch_engine::PluginHost = match &plugins {
                Some(p) => p.as_ref(),
                None => &vouch_engine::NoPluginHost,
            };
            let packet = assemble_with(&framework, &records, now, Some(period), host)?;
            anyhow::Ok(signer.sign(packet)?)
        })
        .await??;
        anyhow::Ok(signed)
    }
    .await;
    let caller_ip = req.remote_ip();
    match outcome {
        Ok(signed) => {
            let canonical =
                String::from_utf8(signed.canonical.clone()).map_err(ApiError::internal)?;
            let signature = serde_json::to_string(&signed.signature).map_err(ApiError::internal)?;
            let stored = store_report(
                app,
                &caller,
                &id,
                &framework.framework,
                &period,
                now,
                Some(&key_id),
                "complete",
                None,
                Some((&canonical, &signature)),
                idempotency_key.as_deref(),
                &digest,
                caller_ip.as_deref(),
            )
            .await;
            match stored {
                Ok(()) => {}
                Err(e) if idempotency_key.is_some() && is_unique_violation(&e) => {
                    // A concurrent retry with the same key won: answer with its report.
                    if let Some(bytes) = replay(
                        app,
                        org,
                        idempotency_key.as_deref().unwrap_or_default(),
                        &digest,
                    )
                    .await?
                    {
                        return created(&report_id_of(&bytes), bytes, org);
                    }
                    return Err(ApiError::internal(e));
                }
                Err(e) => return Err(ApiError::internal(e)),
            }
            app.metrics
                .packets
                .with_label_values(&[&framework.framework, "complete"])
                .inc();
            if let Some(app) = app.me.upgrade() {
                // The PDF renders in the background; a failure there never
                // touches the packet or its status.
                let report = StoredReport {
                    canonical: canonical.clone(),
                    signature: signed.signature.clone(),
                    framework: framework.framework.clone(),
                };
                let id = id.clone();
                tokio::spawn(async move {
                    if let Err(e) = render_and_store(&app, &id, report).await {
                        tracing::warn!(report_id = %id, error = %e.message, "background PDF rendering failed");
                    }
                });
            }
            created(&id, signed.body(Some(&id)), org)
        }
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::error!(report_id = %id, error = %reason, "generation failed");
            let _ = store_report(
                app,
                &caller,
                &id,
                &framework.framework,
                &period,
                now,
                None,
                "failed",
                Some(&reason),
                None,
                idempotency_key.as_deref(),
                &digest,
                caller_ip.as_deref(),
            )
            .await;
            app.metrics
                .packets
                .with_label_values(&[&framework.framework, "failed"])
                .inc();
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "generation_failed",
                format!("report {id} failed; it is listed with status failed"),
            ))
        }
    }
}

fn report_id_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["report_id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

#[allow(clippy::too_many_arguments)]
async fn store_report(
    app: &App,
    caller: &Caller,
    id: &str,
    framework: &str,
    period: &Period,
    generated_at: Timestamp,
    key_id: Option<&str>,
    status: &str,
    failure: Option<&str>,
    signed: Option<(&str, &str)>,
    idempotency_key: Option<&str>,
    digest: &str,
    remote: Option<&str>,
) -> Result<(), sqlx::Error> {
    let _turn = app.db.write_turn().await;
    let mut tx = app.db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO reports (report_id, organization_id, framework, schema_version, period_start, period_end, generated_at, key_id, \
         status, failure_reason, canonical, signature, idempotency_key, request_digest, pdf_available, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, $15)",
    )
    .bind(id)
    .bind(&caller.org_id)
    .bind(framework)
    .bind(vouch_engine::packet::SCHEMA_VERSION)
    .bind(period.start.unix_seconds())
    .bind(period.end.unix_seconds())
    .bind(generated_at.unix_seconds())
    .bind(key_id)
    .bind(status)
    .bind(failure)
    .bind(signed.map(|s| s.0))
    .bind(signed.map(|s| s.1))
    .bind(idempotency_key)
    .bind(digest)
    .bind(&caller.username)
    .execute(&mut *tx)
    .await?;
    let action = if status == "complete" {
        "report.generate"
    } else {
        "report.generate_failed"
    };
    crate::audit::append_tx(
        &mut tx,
        Some(&caller.org_id),
        generated_at,
        &caller.username,
        action,
        id,
        remote,
    )
    .await?;
    tx.commit().await
}

// ---------------------------------------------------------------------------
// Listing and download

#[derive(Debug, Serialize)]
pub struct ReportRecord {
    pub report_id: String,
    pub framework: String,
    pub schema_version: String,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    pub generated_at: Option<Timestamp>,
    pub key_id: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub pdf_available: bool,
}

fn encode_cursor(generated_at: i64, id: &str) -> String {
    B64URL.encode(format!("{generated_at}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let text = String::from_utf8(B64URL.decode(c).ok()?).ok()?;
    let (t, id) = text.split_once(':')?;
    Some((t.parse().ok()?, id.to_owned()))
}

pub async fn list_reports(app: &App, req: &Request, org: &str) -> HandlerResult {
    app.authorize(req, org, Role::Member).await?;
    let limit: i64 = match req.query_param("limit") {
        None => 50,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request("bad_limit", "limit is an integer from 1 to 200")
            })?,
    };
    let framework = req.query_param("framework");
    if let Some(f) = &framework {
        framework_or_404(app, f)?;
    }
    let cursor = match req.query_param("cursor") {
        None => None,
        Some(c) => Some(decode_cursor(&c).ok_or_else(|| {
            ApiError::bad_request("bad_cursor", "cursor is not one this server gave out")
        })?),
    };
    // Newest first; the cursor is the (generated_at, report_id) of the last
    // record returned, so reports generated meanwhile never shift a page.
    let (after_t, after_id) = cursor.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(
        "SELECT report_id, framework, schema_version, period_start, period_end, generated_at, key_id, status, failure_reason, pdf_available \
         FROM reports WHERE organization_id = $1 AND ($2 = '' OR framework = $2) \
         AND (generated_at < $3 OR (generated_at = $3 AND ($4 = '' OR report_id < $4))) \
         ORDER BY generated_at DESC, report_id DESC LIMIT $5",
    )
    .bind(org)
    .bind(framework.unwrap_or_default())
    .bind(after_t)
    .bind(&after_id)
    .bind(limit + 1)
    .fetch_all(&app.db.pool)
    .await?;
    let mut records = vec![];
    let mut last = None;
    for r in rows.iter().take(limit as usize) {
        let generated_at: i64 = r.try_get("generated_at")?;
        let id: String = r.try_get("report_id")?;
        last = Some((generated_at, id.clone()));
        records.push(ReportRecord {
            report_id: id,
            framework: r.try_get("framework")?,
            schema_version: r.try_get("schema_version")?,
            period_start: Timestamp::from_unix_seconds(r.try_get("period_start")?),
            period_end: Timestamp::from_unix_seconds(r.try_get("period_end")?),
            generated_at: Timestamp::from_unix_seconds(generated_at),
            key_id: r.try_get("key_id")?,
            status: r.try_get("status")?,
            failure_reason: r.try_get("failure_reason")?,
            pdf_available: r.try_get::<i64, _>("pdf_available")? != 0,
        });
    }
    let next = if rows.len() as i64 > limit {
        last.map(|(t, id)| encode_cursor(t, &id))
    } else {
        None
    };
    json(
        StatusCode::OK,
        &json!({ "reports": records, "next_cursor": next }),
    )
}

pub async fn download(app: &App, req: &Request, org: &str, report: &str) -> HandlerResult {
    let caller = app.authorize(req, org, Role::Member).await?;
    let r = complete_report(app, org, report).await?;
    let body = body_from_parts(Some(report), r.canonical.as_bytes(), &r.signature);
    crate::audit::append(
        &app.db,
        Some(org),
        app.now(),
        &caller.username,
        "report.download",
        report,
        req.remote_ip().as_deref(),
    )
    .await?;
    Ok(json_bytes(StatusCode::OK, body))
}

// ---------------------------------------------------------------------------
// Published keys

pub async fn well_known_keys(app: &App, req: &Request) -> HandlerResult {
    let doc = crate::keys::document(&app.db).await?;
    let body = serde_json::to_vec(&doc).map_err(ApiError::internal)?;
    let etag = format!("\"{}\"", &vouch_engine::signing::sha256_hex(&body)[..32]);
    let mut resp = if req.header("if-none-match") == Some(etag.as_str()) {
        let mut r = json_bytes(StatusCode::NOT_MODIFIED, vec![]);
        r.headers_mut().remove("content-type");
        r
    } else {
        json_bytes(StatusCode::OK, body)
    };
    let h = resp.headers_mut();
    h.insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=300"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert("etag", v);
    }
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    Ok(resp)
}

// ---------------------------------------------------------------------------
// Legacy HMAC report (seed 001)

#[derive(Serialize)]
struct LegacyReport<'a> {
    organization_id: &'a str,
    organization_name: &'a str,
    generated_at: Timestamp,
    service_count: usize,
    all_services_eu_residency: bool,
    services: Vec<LegacyService<'a>>,
    audit_log: LegacyAudit<'a>,
}

#[derive(Serialize)]
struct LegacyService<'a> {
    service_id: &'a str,
    name: &'a str,
    database_type: &'a str,
    version: &'a str,
    status: &'a str,
    zones: &'a [String],
    region: &'a str,
    eu_residency: bool,
    storage_region: &'a str,
    storage_encrypted: bool,
    backup_encryption_enabled: bool,
    tls_enabled: bool,
    backups: LegacyBackups<'a>,
}

#[derive(Serialize)]
struct LegacyBackups<'a> {
    last_completed_at: Option<Timestamp>,
    last_backup_type: Option<&'a str>,
    encryption_enabled: bool,
    encryption_algorithm: Option<&'a str>,
    schedule_enabled: bool,
    schedule_cron: Option<&'a str>,
    retention_days: Option<u32>,
}

#[derive(Serialize)]
struct LegacyAudit<'a> {
    retention_policy: &'a str,
    oldest_entry_at: Option<Timestamp>,
    entry_count: u64,
}

const SIGNATURE_MARKER: &[u8] = b",\"signature\"";

pub async fn legacy_report(app: &App, req: &Request, org: &str) -> HandlerResult {
    let caller = app.authorize(req, org, Role::Member).await?;
    let Some(key) = &app.hmac_key else {
        return Err(ApiError::unavailable(
            "hmac_key_unavailable",
            "the platform's HMAC key is not configured",
        ));
    };
    let now = app.now();
    let doc = crate::snapshot::snapshot(&app.db, &app.zones, org, &Period::month_ending_at(now))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let report = LegacyReport {
        organization_id: &doc.organization.id,
        organization_name: &doc.organization.name,
        generated_at: now,
        service_count: doc.services.len(),
        all_services_eu_residency: doc.all_services_eu_residency(),
        services: doc
            .services
            .iter()
            .map(|s| LegacyService {
                service_id: &s.service_id,
                name: &s.name,
                database_type: &s.database_type,
                version: &s.version,
                status: &s.status,
                zones: &s.zones,
                region: &s.region,
                eu_residency: s.eu_residency,
                storage_region: &s.storage_region,
                storage_encrypted: s.storage_encrypted,
                backup_encryption_enabled: s.backup_encryption_enabled,
                tls_enabled: s.tls_enabled,
                backups: LegacyBackups {
                    last_completed_at: s.backups.last_completed_at,
                    last_backup_type: s.backups.last_backup_type.as_deref(),
                    encryption_enabled: s.backups.encryption_enabled,
                    encryption_algorithm: s.backups.encryption_algorithm.as_deref(),
                    schedule_enabled: s.backups.schedule_enabled,
                    schedule_cron: s.backups.schedule_cron.as_deref(),
                    retention_days: s.backups.retention_days,
                },
            })
            .collect(),
        audit_log: LegacyAudit {
            retention_policy: &doc.audit_log.retention_policy,
            oldest_entry_at: doc.audit_log.oldest_entry_at,
            entry_count: doc.audit_log.entry_count,
        },
    };
    let bytes = legacy_report_bytes(&report)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(ApiError::internal)?;
    mac.update(&bytes);
    let value = vouch_engine::signing::hex(&mac.finalize().into_bytes());
    let mut body = Vec::with_capacity(bytes.len() + 120);
    body.extend_from_slice(b"{\"report\":");
    body.extend_from_slice(&bytes);
    body.extend_from_slice(SIGNATURE_MARKER);
    body.extend_from_slice(
        format!(":{{\"algorithm\":\"HMAC-SHA256\",\"value\":\"{value}\"}}}}").as_bytes(),
    );
    crate::audit::append(
        &app.db,
        Some(org),
        now,
        &caller.username,
        "legacy_report.download",
        org,
        req.remote_ip().as_deref(),
    )
    .await?;
    Ok(json_bytes(StatusCode::OK, body))
}

/// Compact report bytes. Inside a JSON string every `"` is escaped, so `,"`
/// occurs only between members, and no member of the report is named
/// `signature`: the seed's verifier, which slices at the first `,"signature"`,
/// always finds the report's end. Checked anyway, never assumed.
fn legacy_report_bytes(report: &LegacyReport<'_>) -> Result<Vec<u8>, ApiError> {
    let bytes = serde_json::to_vec(report).map_err(ApiError::internal)?;
    if bytes
        .windows(SIGNATURE_MARKER.len())
        .any(|w| w == SIGNATURE_MARKER)
    {
        return Err(ApiError::internal(
            "the legacy report contains the signature marker",
        ));
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// PDF rendition

/// A complete report: the signed packet's canonical bytes and signature.
struct StoredReport {
    canonical: String,
    signature: Signature,
    framework: String,
}

/// The complete report `report` of `org`; 404 when there is none (or it is
/// another organization's), 409 when it failed and holds no packet.
async fn complete_report(app: &App, org: &str, report: &str) -> Result<StoredReport, ApiError> {
    let row = sqlx::query("SELECT status, framework, canonical, signature, failure_reason FROM reports WHERE organization_id = $1 AND report_id = $2")
        .bind(org)
        .bind(report)
        .fetch_optional(&app.db.pool)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let status: String = row.try_get("status")?;
    if status != "complete" {
        let reason: Option<String> = row.try_get("failure_reason")?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "report_failed",
            format!(
                "this report failed and holds no packet: {}",
                reason.unwrap_or_default()
            ),
        ));
    }
    let signature: String = row.try_get("signature")?;
    Ok(StoredReport {
        canonical: row.try_get("canonical")?,
        signature: serde_json::from_str(&signature).map_err(ApiError::internal)?,
        framework: row.try_get("framework")?,
    })
}

/// Renders and stores the PDF of a report; the packet and its status are never touched.
async fn render_and_store(app: &App, report: &str, r: StoredReport) -> Result<Vec<u8>, ApiError> {
    let framework_name = app
        .frameworks
        .get(&r.framework)
        .map(|f| f.name.clone())
        .unwrap_or_else(|| r.framework.clone());
    let keys_url = format!("{}/.well-known/compliance-signing-keys", app.public_url);
    let renderer = app.renderer.clone();
    let id = report.to_owned();
    let pdf = tokio::task::spawn_blocking(move || {
        renderer.render(
            &id,
            r.canonical.as_bytes(),
            &r.signature,
            &framework_name,
            &keys_url,
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::internal(format!("rendering {report}: {e}")))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pdf);
    let _turn = app.db.write_turn().await;
    let mut tx = app.db.pool.begin().await?;
    sqlx::query("INSERT INTO report_pdfs (report_id, pdf_base64, rendered_at) VALUES ($1, $2, $3) ON CONFLICT (report_id) DO NOTHING")
        .bind(report)
        .bind(encoded)
        .bind(app.now().unix_seconds())
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE reports SET pdf_available = 1 WHERE report_id = $1")
        .bind(report)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(pdf)
}

pub async fn download_pdf(app: &App, req: &Request, org: &str, report: &str) -> HandlerResult {
    let caller = app.authorize(req, org, Role::Member).await?;
    // A report of another organization is not found, rendered or not.
    let r = complete_report(app, org, report).await?;
    let stored: Option<(String,)> =
        sqlx::query_as("SELECT pdf_base64 FROM report_pdfs WHERE report_id = $1")
            .bind(report)
            .fetch_optional(&app.db.pool)
            .await?;
    let pdf = match stored {
        Some((b64,)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(ApiError::internal)?,
        None => render_and_store(app, report, r).await?,
    };
    crate::audit::append(
        &app.db,
        Some(org),
        app.now(),
        &caller.username,
        "report.download_pdf",
        report,
        req.remote_ip().as_deref(),
    )
    .await?;
    let mut resp = json_bytes(StatusCode::OK, pdf);
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{report}.pdf\"")) {
        h.insert("content-disposition", v);
    }
    Ok(resp)
}
