//! The HTTP layer: one warp filter hands every request to [`dispatch`], which
//! routes by method and path, so that every answer (404, 405, 413 included)
//! is the same JSON error shape, carries a request id, is logged once and is
//! counted in the metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tracing::Instrument;
use warp::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use warp::hyper::Body;
use warp::Filter;

use crate::app::App;

/// The largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// A request as the handlers see it.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub remote: Option<SocketAddr>,
    pub body: Bytes,
    pub request_id: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn remote_ip(&self) -> Option<String> {
        self.remote.map(|a| a.ip().to_string())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        serde_urlencoded_pairs(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

fn serde_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// An error answer: `{"error":{"code":...,"message":...}}` with its status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required: HTTP Basic with your username and password",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
    /// An internal failure: logged with its cause, answered without it.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request id identifies it in the server log",
        )
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct Outer<'a> {
            error: Inner<'a>,
        }
        let body = serde_json::to_vec(&Outer {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        })
        .unwrap_or_default();
        let mut resp = json_bytes(self.status, body);
        if self.code == "admin_unauthorized" {
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"vouch-admin\""),
            );
        } else if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Basic realm=\"vouch\", charset=\"UTF-8\""),
            );
        }
        resp
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(e)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(format!("{e:#}"))
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
    let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
    Ok(json_bytes(status, body))
}

/// Reads a body of at most `limit` bytes. A larger one is answered 413; up to
/// `DRAIN` bytes of it are read and discarded first, so that a client still
/// sending it receives the answer instead of a broken connection.
async fn read_body<S, B>(
    mut stream: S,
    declared: Option<u64>,
    limit: usize,
) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    const DRAIN: usize = 64 * 1024 * 1024;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > DRAIN as u64) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk
            .map_err(|e| ApiError::bad_request("bad_body", format!("cannot read the body: {e}")))?;
        seen += chunk.remaining();
        if seen > DRAIN {
            return Err(too_large());
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
        return Err(too_large());
    }
    Ok(Bytes::from(out))
}

/// The route label for metrics and logs: ids replaced by placeholders.
pub fn route_label(method: &Method, path: &str) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut out = Vec::with_capacity(segs.len());
    for (i, s) in segs.iter().enumerate() {
        let prev = if i > 0 { segs[i - 1] } else { "" };
        let masked = match prev {
            "organizations" => "{orgId}",
            "compliance-reports" => "{reportId}",
            "compliance-subscriptions" => "{framework}",
            _ => s,
        };
        out.push(masked);
    }
    format!("{method} /{}", out.join("/"))
}

/// The warp filter serving everything.
pub fn filter(
    app: Arc<App>,
) -> impl Filter<Extract = (Response<Body>,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .and_then(move |method: Method, path: warp::path::FullPath, query: String, headers: HeaderMap, remote, body| {
            let app = app.clone();
            async move {
                let started = Instant::now();
                let request_id = headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                    .map(str::to_owned)
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let route = route_label(&method, path.as_str());
                let span = tracing::info_span!("request", id = %request_id, method = %method, route = %route);
                let response = async {
                    let declared = headers
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let body = match read_body(Box::pin(body), declared, MAX_BODY).await {
                        Ok(b) => b,
                        Err(e) => return e.into_response(),
                    };
                    let req = Request {
                        method: method.clone(),
                        path: path.as_str().to_owned(),
                        query,
                        headers,
                        remote,
                        body,
                        request_id: request_id.clone(),
                    };
                    match crate::routes::dispatch(&app, &req).await {
                        Ok(r) => r,
                        Err(e) => e.into_response(),
                    }
                }
                .instrument(span.clone())
                .await;
                let mut response = response;
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert("x-request-id", v);
                }
                let status = response.status().as_u16();
                let elapsed = started.elapsed();
                app.metrics.observe(&route, status, elapsed);
                span.in_scope(|| {
                    tracing::info!(status, ms = elapsed.as_secs_f64() * 1000.0, "answered");
                });
                Ok::<_, Infallible>(response)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_hide_ids() {
        assert_eq!(
            route_label(
                &Method::GET,
                "/organizations/acme/compliance-reports/r-1/pdf"
            ),
            "GET /organizations/{orgId}/compliance-reports/{reportId}/pdf"
        );
        assert_eq!(route_label(&Method::GET, "/healthz"), "GET /healthz");
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            serde_urlencoded_pairs("a=1%3A2&b=x+y&c"),
            vec![
                ("a".into(), "1:2".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "".into())
            ]
        );
    }
}
