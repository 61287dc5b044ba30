//! Routing and the handlers of the platform-records half of the API.

use serde_json::json;
use warp::http::{Method, StatusCode};

use crate::app::App;
use crate::auth::Role;
use crate::compliance;
use crate::http::{json, json_bytes, ApiError, HandlerResult, Request};
use crate::import::{self, Actor, ImportError};

/// Routes a request to its handler.
pub async fn dispatch(app: &App, req: &Request) -> HandlerResult {
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let m = &req.method;
    match segs.as_slice() {
        ["healthz"] => only(m, &[Method::GET], || {
            json(StatusCode::OK, &json!({"status": "ok"}))
        }),
        ["readyz"] => {
            allow(m, &[Method::GET])?;
            if app.db.ping().await {
                json(StatusCode::OK, &json!({"status": "ready"}))
            } else {
                Err(ApiError::unavailable(
                    "database_unreachable",
                    "the database does not answer",
                ))
            }
        }
        ["metrics"] => {
            allow(m, &[Method::GET])?;
            let mut resp = json_bytes(StatusCode::OK, app.metrics.render());
            resp.headers_mut().insert(
                "content-type",
                warp::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(resp)
        }
        ["admin", "v1", "records"] => {
            allow(m, &[Method::POST])?;
            admin_records(app, req).await
        }
        ["organizations", org, "records"] => {
            allow(m, &[Method::GET])?;
            records(app, req, org).await
        }
        [".well-known", "compliance-signing-keys"] => {
            allow(m, &[Method::GET])?;
            compliance::well_known_keys(app, req).await
        }
        ["organizations", org, "compliance-subscriptions"] => {
            allow(m, &[Method::GET])?;
            compliance::list_subscriptions(app, req, org).await
        }
        ["organizations", org, "compliance-subscriptions", framework] => match *m {
            Method::PUT => compliance::subscribe(app, req, org, framework).await,
            Method::DELETE => compliance::unsubscribe(app, req, org, framework).await,
            _ => Err(method_not_allowed(&[Method::PUT, Method::DELETE])),
        },
        ["organizations", org, "compliance-reports"] => match *m {
            Method::GET => compliance::list_reports(app, req, org).await,
            Method::POST => compliance::generate(app, req, org).await,
            _ => Err(method_not_allowed(&[Method::GET, Method::POST])),
        },
        ["organizations", org, "compliance-reports", report] => {
            allow(m, &[Method::GET])?;
            compliance::download(app, req, org, report).await
        }
        ["organizations", org, "compliance-reports", report, "pdf"] => {
            allow(m, &[Method::GET])?;
            compliance::download_pdf(app, req, org, report).await
        }
        ["organizations", org, "compliance-report"] => {
            allow(m, &[Method::GET])?;
            compliance::legacy_report(app, req, org).await
        }
        ["ui", "organizations", org, "compliance"] => {
            allow(m, &[Method::GET])?;
            crate::ui::page(app, req, org).await
        }
        ["ui", "static", file] => {
            allow(m, &[Method::GET])?;
            crate::ui::asset(file)
        }
        ["openapi.json"] => {
            allow(m, &[Method::GET])?;
            Ok(json_bytes(
                StatusCode::OK,
                crate::OPENAPI.as_bytes().to_vec(),
            ))
        }
        _ => Err(ApiError::not_found()),
    }
}

fn method_not_allowed(allowed: &[Method]) -> ApiError {
    let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {}", names.join(" or ")),
    )
}

fn allow(m: &Method, allowed: &[Method]) -> Result<(), ApiError> {
    if allowed.contains(m) {
        Ok(())
    } else {
        Err(method_not_allowed(allowed))
    }
}

fn only(m: &Method, allowed: &[Method], f: impl FnOnce() -> HandlerResult) -> HandlerResult {
    allow(m, allowed)?;
    f()
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::Input(e) => ApiError::bad_request("invalid_records", e.to_string()),
        ImportError::Invalid { .. } => ApiError::bad_request("invalid_records", e.to_string()),
        ImportError::Database(e) => ApiError::internal(e),
        ImportError::Internal(e) => ApiError::internal(format!("{e:#}")),
    }
}

/// `POST /admin/v1/records`: a batch of platform records, all or nothing.
async fn admin_records(app: &App, req: &Request) -> HandlerResult {
    app.authorize_admin(req)?;
    let batch = import::parse(&req.body, &app.zones).map_err(import_error)?;
    let actor = Actor {
        name: "admin-api".into(),
        remote_addr: req.remote_ip(),
    };
    let applied = import::apply(&app.db, batch, &actor, app.now())
        .await
        .map_err(import_error)?;
    json(StatusCode::OK, &json!({ "applied": applied }))
}

/// The period of a request: `period_start`/`period_end` query parameters, or
/// the calendar month ending now.
pub fn period_from(app: &App, req: &Request) -> Result<vouch_engine::Period, ApiError> {
    let parse = |name: &str| -> Result<Option<vouch_engine::Timestamp>, ApiError> {
        req.query_param(name)
            .map(|v| {
                v.parse().map_err(|e: vouch_engine::time::TimestampError| {
                    ApiError::bad_request("bad_period", format!("{name}: {e}"))
                })
            })
            .transpose()
    };
    let end = parse("period_end")?.unwrap_or_else(|| app.now());
    match parse("period_start")? {
        Some(start) => vouch_engine::Period::new(start, end)
            .map_err(|e| ApiError::bad_request("bad_period", e.to_string())),
        None => Ok(vouch_engine::Period::month_ending_at(end)),
    }
}

/// `GET /organizations/{orgId}/records`: the records document packets are evaluated on.
async fn records(app: &App, req: &Request, org: &str) -> HandlerResult {
    let caller = app.authorize(req, org, Role::Member).await?;
    let period = period_from(app, req)?;
    let doc = crate::snapshot::snapshot(&app.db, &app.zones, org, &period)
        .await?
        .ok_or_else(ApiError::not_found)?;
    crate::audit::append(
        &app.db,
        Some(org),
        app.now(),
        &caller.username,
        "records.read",
        org,
        req.remote_ip().as_deref(),
    )
    .await?;
    json(StatusCode::OK, &doc)
}
