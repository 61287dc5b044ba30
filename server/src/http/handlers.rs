//! Handlers: parse the request, call one service function, serialize.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use vouch_engine::records::{from_clean_value, parse_json_input};
use vouch_engine::{Period, Timestamp};
use warp::http::{HeaderValue, StatusCode};

use super::routes::Endpoint;
use super::{json, json_bytes, ApiError, HandlerResult, Request};
use crate::auth::Role;
use crate::service::{
    self, access, generate, grants, records, reports, schedule, subscriptions, webhooks, App,
    Caller,
};

pub async fn handle(app: &App, endpoint: Endpoint, req: &Request) -> HandlerResult {
    use Endpoint as E;
    match endpoint {
        E::Healthz => json(StatusCode::OK, &json!({"status": "ok"})),
        E::Readyz => readyz(app).await,
        E::Metrics => {
            let mut resp = json_bytes(StatusCode::OK, app.metrics.render());
            resp.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(resp)
        }
        E::OpenApi => Ok(json_bytes(
            StatusCode::OK,
            crate::OPENAPI.as_bytes().to_vec(),
        )),
        E::SigningKeys => signing_keys(app, req).await,
        E::AdminRecords => {
            let applied = records::import(app, req.body.clone(), req.remote_ip()).await?;
            json(StatusCode::OK, &json!({ "applied": applied }))
        }
        E::Records => {
            let caller = member(req, Role::Member)?;
            let period = period_from_query(app, req)?;
            json(StatusCode::OK, &records::read(app, &caller, &period).await?)
        }
        E::Subscriptions => {
            let caller = member(req, Role::Member)?;
            let list = subscriptions::list(app, &caller).await?;
            json(StatusCode::OK, &json!({ "subscriptions": list }))
        }
        E::Subscribe | E::Unsubscribe => {
            let caller = member(req, Role::Admin)?;
            access::check_write(app, &caller, &req.marks())?;
            let view = subscriptions::set(
                app,
                &caller,
                req.param("framework"),
                endpoint == E::Subscribe,
            )
            .await?;
            json(StatusCode::OK, &view)
        }
        E::Reports => {
            let caller = reader(app, req).await?;
            let limit = match req.query_param("limit") {
                None => None,
                Some(v) => Some(v.parse().map_err(|_| {
                    ApiError::bad_request("bad_limit", "limit is an integer from 1 to 200")
                })?),
            };
            let q = reports::Listing {
                framework: req.query_param("framework"),
                limit,
                cursor: req.query_param("cursor"),
            };
            json(StatusCode::OK, &reports::list(app, &caller, q).await?)
        }
        E::Generate => generate(app, req).await,
        E::Report => {
            let caller = reader(app, req).await?;
            let body = reports::download(app, &caller, req.param("reportId")).await?;
            Ok(json_bytes(StatusCode::OK, body))
        }
        E::ReportPdf => pdf(app, req).await,
        E::ReportRecords => {
            let caller = reader(app, req).await?;
            let body = reports::records(app, &caller, req.param("reportId")).await?;
            Ok(json_bytes(StatusCode::OK, body))
        }
        E::ReportAttestation => {
            let caller = reader(app, req).await?;
            let predicate = match req.query_param("predicate") {
                None => vouch_engine::attest::Predicate::Vouch,
                Some(p) => vouch_engine::attest::Predicate::parse(&p).ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_predicate",
                        "predicate is `vouch` (the default) or `trestle`",
                    )
                })?,
            };
            let form = reports::Form::Attestation(predicate);
            let body = reports::attestation(app, &caller, req.param("reportId"), form).await?;
            typed(body, "application/vnd.in-toto+json")
        }
        E::ReportBundle => {
            let caller = reader(app, req).await?;
            let body =
                reports::attestation(app, &caller, req.param("reportId"), reports::Form::Bundle)
                    .await?;
            typed(body, "application/vnd.dev.sigstore.bundle.v0.3+json")
        }
        E::ReportOscal => {
            let caller = reader(app, req).await?;
            let body = reports::oscal(app, &caller, req.param("reportId")).await?;
            Ok(json_bytes(StatusCode::OK, body))
        }
        E::SigningKeyPem => {
            // `{keyId}.pem`; any other file name is not there.
            let key_id = req
                .param("keyFile")
                .strip_suffix(".pem")
                .ok_or(service::ServiceError::NotFound)?;
            let pem = reports::key_pem(app, key_id).await?;
            let mut resp = typed(pem.into_bytes(), "application/x-pem-file")?;
            let h = resp.headers_mut();
            h.insert(
                "cache-control",
                HeaderValue::from_static("public, max-age=300"),
            );
            h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
            Ok(resp)
        }
        E::ReportInclusion => {
            let caller = reader(app, req).await?;
            let proof = reports::inclusion(app, &caller, req.param("reportId")).await?;
            json(StatusCode::OK, &proof)
        }
        E::ReportTimestamp => {
            let caller = reader(app, req).await?;
            let resp = reports::timestamp(app, &caller, req.param("reportId")).await?;
            typed(resp, "application/timestamp-reply")
        }
        E::ReportDiff => {
            let caller = reader(app, req).await?;
            let against = req.query_param("against");
            let diff =
                reports::diff(app, &caller, req.param("reportId"), against.as_deref()).await?;
            json(StatusCode::OK, &diff)
        }
        E::Schedule => {
            let caller = member(req, Role::Member)?;
            json(StatusCode::OK, &schedule::view(app, &caller).await?)
        }
        E::SetCadence => {
            let caller = member(req, Role::Admin)?;
            access::check_write(app, &caller, &req.marks())?;
            let body: CadenceBody = settings_body(req)?;
            json(
                StatusCode::OK,
                &schedule::set_cadence(app, &caller, body.cadence).await?,
            )
        }
        E::PauseSchedule => {
            let caller = member(req, Role::Admin)?;
            access::check_write(app, &caller, &req.marks())?;
            let body: PauseBody = settings_body(req)?;
            let view =
                schedule::set_paused(app, &caller, req.param("framework"), body.paused).await?;
            json(StatusCode::OK, &view)
        }
        E::Webhooks => {
            let caller = member(req, Role::Admin)?;
            let list = webhooks::list(app, &caller).await?;
            json(StatusCode::OK, &json!({ "webhooks": list }))
        }
        E::CreateWebhook => {
            let caller = member(req, Role::Admin)?;
            access::check_write(app, &caller, &req.marks())?;
            let body: webhooks::NewWebhook = settings_body(req)?;
            json(
                StatusCode::CREATED,
                &webhooks::register(app, &caller, body).await?,
            )
        }
        E::DeleteWebhook => {
            let caller = member(req, Role::Admin)?;
            access::check_write(app, &caller, &req.marks())?;
            let id = req.param("endpointId");
            webhooks::delete(app, &caller, id).await?;
            json(StatusCode::OK, &json!({ "deleted": id }))
        }
        E::Grants => {
            let caller = member(req, Role::Admin)?;
            let list = grants::list(app, &caller).await?;
            json(StatusCode::OK, &json!({ "grants": list }))
        }
        E::CreateGrant => {
            let caller = member(req, Role::Admin)?;
            access::check_write(app, &caller, &req.marks())?;
            let body: grants::NewGrant = settings_body(req)?;
            json(
                StatusCode::CREATED,
                &grants::grant(app, &caller, body).await?,
            )
        }
        E::RevokeGrant => {
            let caller = member(req, Role::Admin)?;
            access::check_write(app, &caller, &req.marks())?;
            let id = req.param("grantId");
            grants::revoke(app, &caller, id).await?;
            json(StatusCode::OK, &json!({ "revoked": id }))
        }
        E::LogCheckpoint => {
            let note = app.log.checkpoint(&app.db).await?;
            let mut resp = typed(note.into_bytes(), "text/plain; charset=utf-8")?;
            public_log(&mut resp);
            Ok(resp)
        }
        E::LogConsistency => {
            let first = tree_size(req, "first")?.unwrap_or(0);
            let second = tree_size(req, "second")?;
            let proof = app.log.consistency(&app.db, first, second).await?;
            let mut resp = json(StatusCode::OK, &proof)?;
            public_log(&mut resp);
            Ok(resp)
        }
        E::LogEntries => {
            let start = tree_size(req, "start")?.unwrap_or(0);
            let end = tree_size(req, "end")?;
            let page = app.log.entries(&app.db, start, end).await?;
            let mut resp = json(StatusCode::OK, &page)?;
            public_log(&mut resp);
            Ok(resp)
        }
        E::LegacyReport => {
            let caller = member(req, Role::Member)?;
            let body = service::legacy::report(app, &caller).await?;
            Ok(json_bytes(StatusCode::OK, body))
        }
        E::UiPage => {
            let caller = reader(app, req).await?;
            super::ui::page(app, &caller).await
        }
        E::UiAsset => super::ui::asset(req.param("file")),
    }
}

/// A 200 with `body` of `content_type`.
fn typed(body: Vec<u8>, content_type: &'static str) -> HandlerResult {
    let mut resp = json_bytes(StatusCode::OK, body);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    Ok(resp)
}

/// The log's public answers: readable from any origin, never cached (a
/// checkpoint changes with every append).
fn public_log(resp: &mut warp::reply::Response) {
    let h = resp.headers_mut();
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
}

/// A tree size or leaf index from the query: decimal digits, at most 2^63 - 1.
fn tree_size(req: &Request, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(v) = req.query_param(name) else {
        return Ok(None);
    };
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "bad_tree_size",
            format!("{name} is a tree size or leaf index: decimal digits"),
        ));
    }
    v.parse::<i64>()
        .map(|n| Some(n as u64))
        .map_err(|_| ApiError::bad_request("bad_tree_size", format!("{name} is too large")))
}

/// The user a `User` route authenticated, with their role in the path's
/// organization (read with their credentials).
fn authenticated(req: &Request) -> Result<&access::Authenticated, ApiError> {
    req.user
        .as_ref()
        .ok_or_else(|| ApiError::from(service::ServiceError::Unauthenticated))
}

/// The authenticated caller as a member of the path's organization with at
/// least `min`; a browser's cross-site read is refused.
fn member(req: &Request, min: Role) -> Result<Caller, ApiError> {
    let user = authenticated(req)?;
    let caller = access::authorize_with(
        &user.username,
        req.param("orgId"),
        user.role.as_deref(),
        min,
        req.remote.map(|a| a.ip()),
    )?;
    if req.method == warp::http::Method::GET {
        access::check_read(&req.marks())?;
    }
    Ok(caller)
}

/// The authenticated caller as a reader of the path's organization's
/// packets: a member, or an outside auditor with a grant in force (limited
/// to it); 404 for anyone else, grants ended included.
async fn reader(app: &App, req: &Request) -> Result<Caller, ApiError> {
    let user = authenticated(req)?;
    let caller = access::authorize_reader_with(
        app,
        &user.username,
        req.param("orgId"),
        user.role.as_deref(),
        req.remote.map(|a| a.ip()),
    )
    .await?;
    if req.method == warp::http::Method::GET {
        access::check_read(&req.marks())?;
    }
    Ok(caller)
}

async fn readyz(app: &App) -> HandlerResult {
    if app.db.ping().await {
        json(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        Err(service::ServiceError::DatabaseUnreachable.into())
    }
}

/// The published keys, with an ETag honoured in `If-None-Match` (strong or
/// weak, alone or in a list, or `*`).
async fn signing_keys(app: &App, req: &Request) -> HandlerResult {
    let body = reports::keys_document(app).await?;
    let tag = &vouch_engine::signing::sha256_hex(&body)[..32];
    let etag = format!("\"{tag}\"");
    let mut resp = if req
        .header("if-none-match")
        .is_some_and(|v| etag_matches(v, tag))
    {
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

/// Weak comparison (RFC 9110 §13.1.2): `*`, or any listed tag, `W/` or not.
fn etag_matches(header: &str, tag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).trim_matches('"') == tag)
}

/// The body of `PUT /organizations/{orgId}/compliance-schedule`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CadenceRequest")]
pub struct CadenceBody {
    /// `monthly` (calendar months, UTC) or `weekly` (weeks from Monday, UTC).
    cadence: schedule::Cadence,
}

/// The body of `PUT /organizations/{orgId}/compliance-subscriptions/{framework}/schedule`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PauseRequest")]
pub struct PauseBody {
    /// `true` pauses the subscription's scheduled packets; `false` resumes
    /// them from the period that ends after now.
    paused: bool,
}

/// A small JSON object body, read with the records' strict parser.
fn settings_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let value = parse_json_input(&req.body)
        .map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "bad_body",
            "the body is a JSON object",
        ));
    }
    from_clean_value(value).map_err(|e| ApiError::bad_request("bad_body", e.to_string()))
}

/// The body of `POST /organizations/{orgId}/compliance-reports`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GenerateRequest")]
pub struct GenerateBody {
    /// A framework the organization subscribes to, e.g. `soc2`.
    #[schemars(pattern(vouch_engine::framework::IDENTIFIER_PATTERN))]
    framework: String,
    /// Start of the period (inclusive); default: one calendar month before its end.
    #[serde(default)]
    period_start: Option<Timestamp>,
    /// End of the period (inclusive), not in the future; default: now.
    #[serde(default)]
    period_end: Option<Timestamp>,
}

async fn generate(app: &App, req: &Request) -> HandlerResult {
    let caller = member(req, Role::Member)?;
    access::check_write(app, &caller, &req.marks())?;
    let body: GenerateBody = settings_body(req)?;
    // A header that is not visible ASCII is refused, not ignored.
    let idempotency_key = match req.headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::bad_request(
                        "bad_idempotency_key",
                        "an Idempotency-Key is 1 to 255 visible ASCII characters",
                    )
                })?
                .to_owned(),
        ),
    };
    let done = generate::generate(
        app,
        &caller,
        generate::Request {
            framework: body.framework,
            period_start: body.period_start,
            period_end: body.period_end,
            idempotency_key,
        },
    )
    .await?;
    let mut resp = json_bytes(StatusCode::CREATED, done.body);
    let location = format!(
        "/organizations/{}/compliance-reports/{}",
        percent_encoding::utf8_percent_encode(&caller.org_id, percent_encoding::NON_ALPHANUMERIC),
        done.report_id
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert("location", v);
    }
    Ok(resp)
}

async fn pdf(app: &App, req: &Request) -> HandlerResult {
    let caller = reader(app, req).await?;
    let report = req.param("reportId");
    let (pdf, how) = reports::pdf(app, &caller, report).await?;
    let mut resp = json_bytes(StatusCode::OK, pdf);
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/pdf"));
    // Report ids are `r-` and a UUID; anything else never reaches here (404).
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{report}.pdf\"")) {
        h.insert("content-disposition", v);
    }
    h.insert(
        "x-vouch-pdf",
        HeaderValue::from_static(match how {
            reports::Rendition::Stored => "stored",
            reports::Rendition::RenderedNow => "rendered",
        }),
    );
    Ok(resp)
}

/// The period of a request: `period_start`/`period_end` query parameters, or
/// the calendar month ending now.
fn period_from_query(app: &App, req: &Request) -> Result<Period, ApiError> {
    let parse = |name: &str| -> Result<Option<Timestamp>, ApiError> {
        req.query_param(name)
            .map(|v| {
                v.parse().map_err(|e: vouch_engine::time::TimestampError| {
                    ApiError::bad_request("bad_period", format!("{name}: {e}"))
                })
            })
            .transpose()
    };
    let end = parse("period_end")?;
    Ok(service::period(parse("period_start")?, end, app.now())?)
}

#[cfg(test)]
mod tests {
    use super::etag_matches;

    #[test]
    fn etags_match_weakly_and_in_lists() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("W/\"abc\"", "abc"));
        assert!(etag_matches("\"x\", W/\"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}
