//! The Compliance tab: an HTML page rendered from `templates/dashboard.html.j2`
//! and static assets embedded in the binary, served with a strict
//! Content-Security-Policy. It works with the browser's own Basic
//! authentication; its state-changing requests carry a CSRF token
//! ([`crate::auth::csrf`]).

use minijinja::{AutoEscape, Environment};
use warp::http::{HeaderValue, StatusCode};

use super::{json_bytes, ApiError, HandlerResult};
use crate::auth::{csrf, Role};
use crate::service::{App, Caller, ServiceError};

const PAGE: &str = include_str!("../../../templates/dashboard.html.j2");
const SCRIPT: &str = include_str!("../../../templates/static/dashboard.js");
const STYLE: &str = include_str!("../../../templates/static/dashboard.css");

const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn with_security_headers(
    mut resp: warp::http::Response<warp::hyper::Body>,
) -> warp::http::Response<warp::hyper::Body> {
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

/// The page's template, parsed once per process (it is embedded, so a parse
/// error is a build defect, answered as an internal error with its message).
fn page_env() -> Result<&'static Environment<'static>, String> {
    static ENV: std::sync::OnceLock<Result<Environment<'static>, String>> =
        std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.add_template("dashboard.html", PAGE)
            .map_err(|e| e.to_string())?;
        Ok(env)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `GET /ui/organizations/{orgId}/compliance`.
pub async fn page(app: &App, caller: &Caller) -> HandlerResult {
    let name = crate::service::records::organization_name(app, caller).await?;
    let html = page_env()
        .map_err(|e| ServiceError::internal(anyhow::anyhow!(e)))?
        .get_template("dashboard.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                org_id => &caller.org_id,
                org_name => name,
                username => &caller.username,
                role => caller.role.as_str(),
                can_manage => caller.role >= Role::Admin,
                auditor => caller.role == Role::Auditor,
                scopes => caller.scopes.as_ref().map(|list| list.iter().map(|s| {
                    let t = |v: Option<i64>| v.and_then(vouch_engine::Timestamp::from_unix_seconds).map(|t| t.to_string());
                    minijinja::context! { framework => &s.framework, from => t(s.period_start), to => t(s.period_end) }
                }).collect::<Vec<_>>()),
                csrf_token => csrf::token(&app.csrf_key, &caller.username, &caller.org_id),
            })
        })
        .map_err(ServiceError::internal)?;
    let mut resp = json_bytes(StatusCode::OK, html.into_bytes());
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(with_security_headers(resp))
}

/// `GET /ui/static/{file}`: the page's script and stylesheet.
pub fn asset(file: &str) -> HandlerResult {
    let (body, kind) = match file {
        "dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return Err(ApiError::not_found()),
    };
    let mut resp = json_bytes(StatusCode::OK, body.as_bytes().to_vec());
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(kind));
    resp.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(with_security_headers(resp))
}
