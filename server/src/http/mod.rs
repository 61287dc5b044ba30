//! The HTTP layer. Every request goes through [`respond`]:
//!
//! 1. match the route table ([`routes`]): 404, or 405 with `Allow`;
//! 2. check access before anything is read: Basic credentials (401, 429 when
//!    throttled) or the admin token;
//! 3. check the body's declared type and size: `application/json` (415),
//!    the route's own limit (413);
//! 4. read the body under a deadline (408);
//! 5. call the handler ([`handlers`]), which parses, calls one service
//!    function and serializes.
//!
//! Every answer (errors included) is the same JSON error shape, carries a
//! request id, is logged once and is counted in the metrics under its route
//! template (`unmatched` for unknown paths).

pub mod error;
pub mod handlers;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod ui;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tracing::Instrument;
use warp::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use warp::hyper::Body;

pub use error::ApiError;

use crate::auth::csrf::Marks;
use crate::service::{access, App};
use routes::{Access, Match};

/// A path parameter of the matched route, by name.
fn path_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// How long a client may take to send a body once its headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A request as the handlers see it.
#[derive(Debug)]
pub struct Request {
    /// `GET` for a `HEAD` request (the body of the answer is dropped).
    pub method: Method,
    pub query: String,
    pub headers: HeaderMap,
    pub remote: Option<SocketAddr>,
    pub body: Bytes,
    /// Path parameters of the matched route, percent-decoded.
    pub params: Vec<(String, String)>,
    /// The user whose Basic credentials were verified, on `User` routes,
    /// with their role in the path's organization.
    pub user: Option<access::Authenticated>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn remote_ip(&self) -> Option<std::net::IpAddr> {
        self.remote.map(|a| a.ip())
    }

    /// A path parameter of the route (empty if the route has none of that name).
    pub fn param(&self, name: &str) -> &str {
        path_param(&self.params, name).unwrap_or("")
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// What the request says about where it came from (CSRF).
    pub fn marks(&self) -> Marks<'_> {
        Marks {
            origin: self.header("origin"),
            sec_fetch_site: self.header("sec-fetch-site"),
            token: self.header("x-vouch-csrf"),
        }
    }
}

pub type HandlerResult = Result<Response<Body>, ApiError>;

/// A JSON answer from raw bytes.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

/// A JSON answer from a value.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HandlerResult {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::from(crate::service::ServiceError::internal(e)))?;
    Ok(json_bytes(status, body))
}

fn too_large(limit: usize) -> ApiError {
    if limit == 0 {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "this endpoint takes no body",
        )
    } else {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }
}

/// Reads a body of at most `limit` bytes. A larger one is answered 413; up to
/// as much again (at least 1 MiB) is read and discarded first, so that a
/// client still sending it receives the answer instead of a broken connection.
async fn read_body<S, B, E>(
    mut stream: S,
    declared: Option<u64>,
    limit: usize,
) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: Buf,
    E: std::fmt::Display,
{
    let drain = limit.saturating_mul(2).max(limit + 1024 * 1024);
    if declared.is_some_and(|n| n > drain as u64) {
        return Err(too_large(limit));
    }
    let mut out = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk
            .map_err(|e| ApiError::bad_request("bad_body", format!("cannot read the body: {e}")))?;
        seen += chunk.remaining();
        if seen > drain {
            return Err(too_large(limit));
        }
        if seen > limit {
            out = Vec::new();
            chunk.advance(chunk.remaining());
            continue;
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    if seen > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(out))
}

/// Whether a `Content-Type` is JSON (`application/json`, any parameters).
fn is_json(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The parts of an incoming request.
pub struct Incoming<S> {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub remote: Option<SocketAddr>,
    pub body: S,
}

impl<S> std::fmt::Debug for Incoming<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Answers one request (see the module documentation for the steps).
pub async fn respond<S, B, E>(app: &App, incoming: Incoming<S>) -> Response<Body>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: Buf,
    E: std::fmt::Display,
{
    let started = Instant::now();
    let Incoming {
        method,
        path,
        query,
        headers,
        remote,
        body,
    } = incoming;
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let found = routes::find(&method, &path);
    let template = match &found {
        Match::Found { route, .. } => route.path,
        Match::MethodNotAllowed { template, .. } | Match::BadPath { template } => template,
        Match::NotFound => "unmatched",
    };
    let method_label = routes::method_label(&method);
    let route_label = format!("{method_label} {template}");
    let span = tracing::info_span!("request", id = %request_id, route = %route_label);
    let mut response = async {
        let (route, params) = match found {
            Match::Found { route, params } => (route, params),
            Match::MethodNotAllowed { allow, .. } => {
                return ApiError::method_not_allowed(allow).into_response()
            }
            Match::BadPath { .. } => {
                return ApiError::bad_request(
                    "bad_path",
                    "a path parameter is not percent-encoded UTF-8",
                )
                .into_response()
            }
            Match::NotFound => return ApiError::not_found().into_response(),
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        // Access first: nothing of an unauthenticated request's body is read.
        let user = match route.access {
            Access::Public => None,
            Access::Admin => {
                let bearer = header("authorization").and_then(crate::auth::parse_bearer);
                if let Err(e) = access::authorize_admin(app, bearer) {
                    return ApiError::from(e).into_response();
                }
                None
            }
            Access::User => {
                let creds = header("authorization").and_then(crate::auth::parse_basic);
                // The path's organization: its role is read with the password hash.
                let org = path_param(&params, "orgId");
                match access::authenticate(app, creds, remote.map(|a| a.ip()), org).await {
                    Ok(u) => Some(u),
                    Err(e) => return ApiError::from(e).into_response(),
                }
            }
        };
        let declared = header("content-length").and_then(|v| v.parse::<u64>().ok());
        let has_body = declared.is_some_and(|n| n > 0) || headers.contains_key("transfer-encoding");
        if route.max_body > 0 && has_body && !is_json(headers.get("content-type")) {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            )
            .into_response();
        }
        let body =
            match tokio::time::timeout(BODY_TIMEOUT, read_body(body, declared, route.max_body))
                .await
            {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => return e.into_response(),
                Err(_) => {
                    return ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        format!(
                            "the body did not arrive within {} s",
                            BODY_TIMEOUT.as_secs()
                        ),
                    )
                    .into_response()
                }
            };
        let req = Request {
            method: route.method.clone(),
            query,
            headers,
            remote,
            body,
            params,
            user,
        };
        match handlers::handle(app, route.endpoint, &req).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }
    .instrument(span.clone())
    .await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics.observe(&route_label, status, elapsed);
    span.in_scope(|| {
        tracing::info!(status, ms = elapsed.as_secs_f64() * 1000.0, "answered");
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(is_json(Some(&v("application/json"))));
        assert!(is_json(Some(&v("Application/JSON; charset=utf-8"))));
        assert!(!is_json(Some(&v("application/x-www-form-urlencoded"))));
        assert!(!is_json(Some(&v("text/plain"))));
        assert!(!is_json(None));
    }
}
