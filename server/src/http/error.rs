//! Error answers: `{"error":{"code":...,"message":...}}` with a status. This
//! is the only place statuses of failures are chosen, and where internal
//! causes are logged (with the request id of the span) and kept from the
//! client.

use serde::Serialize;
use warp::http::{HeaderValue, Response, StatusCode};
use warp::hyper::Body;

use crate::service::ServiceError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// Methods, for 405.
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn method_not_allowed(allow: String) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("use {allow}"),
        );
        e.allow = Some(allow);
        e
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
        let mut resp = super::json_bytes(self.status, body);
        let h = resp.headers_mut();
        if self.code == "admin_unauthorized" {
            h.insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer realm=\"vouch-admin\""),
            );
        } else if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                "www-authenticate",
                HeaderValue::from_static("Basic realm=\"vouch\", charset=\"UTF-8\""),
            );
        }
        if let Some(s) = self.retry_after {
            h.insert("retry-after", HeaderValue::from(s));
        }
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            h.insert("allow", allow);
        }
        resp
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use ServiceError as E;
        let message = e.to_string();
        let (status, code) = match &e {
            E::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            E::AdminUnauthenticated => (StatusCode::UNAUTHORIZED, "admin_unauthorized"),
            E::Busy { retry_after } => {
                let mut a =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
                a.retry_after = Some(retry_after.as_secs().max(1));
                return a;
            }
            E::Rendering { retry_after } => {
                let mut a =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "pdf_rendering", message);
                a.retry_after = Some(retry_after.as_secs().max(1));
                return a;
            }
            E::AdminDisabled => (StatusCode::SERVICE_UNAVAILABLE, "admin_disabled"),
            E::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            E::NoSuchTreeSize(_) => (StatusCode::NOT_FOUND, "no_such_tree_size"),
            E::UnknownFramework { .. } => (StatusCode::NOT_FOUND, "unknown_framework"),
            E::Forbidden { .. } | E::CrossSite(_) => (StatusCode::FORBIDDEN, "forbidden"),
            E::BadInput { code, .. } => (StatusCode::BAD_REQUEST, *code),
            E::InvalidRecords(_) => (StatusCode::BAD_REQUEST, "invalid_records"),
            E::IdempotencyKeyReused => (StatusCode::CONFLICT, "idempotency_key_reused"),
            E::Conflict { code, .. } => (StatusCode::CONFLICT, *code),
            E::SubscriptionRequired { .. } => {
                (StatusCode::PAYMENT_REQUIRED, "subscription_required")
            }
            E::SigningKeyMissing => (StatusCode::SERVICE_UNAVAILABLE, "signing_key_unavailable"),
            E::SigningKeyUnusable(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "signing key unusable");
                (StatusCode::SERVICE_UNAVAILABLE, "signing_key_unavailable")
            }
            E::HmacKeyMissing => (StatusCode::SERVICE_UNAVAILABLE, "hmac_key_unavailable"),
            E::ReportFailed => (StatusCode::CONFLICT, "report_failed"),
            E::Unverifiable(_) => (StatusCode::CONFLICT, "packet_unverifiable"),
            E::LostClaim => (StatusCode::CONFLICT, "lost_claim"),
            E::GenerationFailed { report_id, cause } => {
                tracing::error!(%report_id, error = %format!("{cause:#}"), "generation failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "generation_failed")
            }
            E::DatabaseUnreachable => (StatusCode::SERVICE_UNAVAILABLE, "database_unreachable"),
            E::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        ApiError::new(status, code, message)
    }
}
