//! The Compliance tab: an HTML page rendered from `templates/dashboard.html.j2`
//! and static assets embedded in the binary, served with a strict
//! Content-Security-Policy. It works with the browser's own Basic
//! authentication; its state-changing requests carry a CSRF token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use minijinja::{AutoEscape, Environment};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use warp::http::{HeaderValue, StatusCode};

use crate::app::{App, Caller};
use crate::auth::Role;
use crate::db::Db;
use crate::http::{json_bytes, ApiError, HandlerResult, Request};

const PAGE: &str = include_str!("../../templates/dashboard.html.j2");
const SCRIPT: &str = include_str!("../../templates/static/dashboard.js");
const STYLE: &str = include_str!("../../templates/static/dashboard.css");

const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The key of the CSRF tokens: random, made once, shared through the database.
pub async fn csrf_key(db: &Db) -> anyhow::Result<Vec<u8>> {
    use rand_core::RngCore;
    let mut fresh = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut fresh);
    {
        let _turn = db.write_turn().await;
        sqlx::query("INSERT INTO settings (name, value) VALUES ('csrf_key', $1) ON CONFLICT (name) DO NOTHING")
            .bind(B64URL.encode(fresh))
            .execute(&db.pool)
            .await?;
    }
    let (value,): (String,) = sqlx::query_as("SELECT value FROM settings WHERE name = 'csrf_key'")
        .fetch_one(&db.pool)
        .await?;
    Ok(B64URL.decode(value)?)
}

/// The token of one user in one organization.
pub fn csrf_token(key: &[u8], username: &str, org: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"vouch-csrf\0");
    mac.update(username.as_bytes());
    mac.update(b"\0");
    mac.update(org.as_bytes());
    B64URL.encode(mac.finalize().into_bytes())
}

/// Refuses a state-changing request that a browser sent without the page's
/// token. A browser marks its requests (`Origin`, `Sec-Fetch-Site`) and sends
/// Basic credentials on its own, so a page on another site could otherwise
/// act for the user; it cannot set the `X-Vouch-CSRF` header. API clients
/// (curl, scripts) send neither mark and are not concerned.
pub fn check_csrf(app: &App, req: &Request, caller: &Caller) -> Result<(), ApiError> {
    let from_browser = req.header("origin").is_some() || req.header("sec-fetch-site").is_some();
    let refused = |why: &str| ApiError::forbidden(format!("cross-site request refused: {why}"));
    match req.header("x-vouch-csrf") {
        Some(token) => {
            let expected = csrf_token(&app.csrf_key, &caller.username, &caller.org_id);
            if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) {
                Ok(())
            } else {
                Err(refused("the X-Vouch-CSRF token is not this page's"))
            }
        }
        None if from_browser => Err(refused(
            "a browser request that changes state needs the Compliance page's X-Vouch-CSRF token",
        )),
        None => Ok(()),
    }
}

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
pub async fn page(app: &App, req: &Request, org: &str) -> HandlerResult {
    let caller = app.authorize(req, org, Role::Member).await?;
    let (name,): (String,) = sqlx::query_as("SELECT name FROM organizations WHERE id = $1")
        .bind(org)
        .fetch_optional(&app.db.pool)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let html = page_env()
        .map_err(ApiError::internal)?
        .get_template("dashboard.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                org_id => org,
                org_name => name,
                username => caller.username.clone(),
                role => caller.role.as_str(),
                can_manage => caller.role >= Role::Admin,
                csrf_token => csrf_token(&app.csrf_key, &caller.username, org),
            })
        })
        .map_err(ApiError::internal)?;
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
