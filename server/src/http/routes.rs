//! The route table: every route the server answers, in one place.
//!
//! Each route says who may call it (checked before its body is read) and how
//! large a body it takes. Matching is done by `matchit` on the raw path; path
//! parameters are percent-decoded afterwards. HEAD is answered wherever GET
//! is; a known path with another method is a 405 with `Allow`.

use std::sync::OnceLock;

use warp::http::Method;

/// What a route does; [`super::handlers::handle`] maps each to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    SigningKeys,
    SigningKeyPem,
    AdminRecords,
    Records,
    Subscriptions,
    Subscribe,
    Unsubscribe,
    Reports,
    Generate,
    Report,
    ReportPdf,
    ReportRecords,
    ReportAttestation,
    ReportBundle,
    ReportOscal,
    ReportInclusion,
    ReportTimestamp,
    ReportDiff,
    Schedule,
    SetCadence,
    PauseSchedule,
    Webhooks,
    CreateWebhook,
    DeleteWebhook,
    Grants,
    CreateGrant,
    RevokeGrant,
    LogCheckpoint,
    LogConsistency,
    LogEntries,
    LegacyReport,
    UiPage,
    UiAsset,
}

/// Who may call a route, checked before the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// HTTP Basic credentials of a user (membership is checked by the handler).
    User,
    /// The admin bearer token.
    Admin,
}

/// One route: method, path template, endpoint, access, and the largest body.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub access: Access,
    /// The largest body accepted (413 beyond); 0 for routes that take none.
    pub max_body: usize,
}

/// A generation request is a few hundred bytes; sixteen KiB is generous.
pub const GENERATE_BODY: usize = 16 * 1024;
/// A small settings body (`{"cadence":"weekly"}`, `{"paused":true}`).
pub const SMALL_BODY: usize = 4 * 1024;
/// A batch of platform records: the only route that takes megabytes.
pub const ADMIN_BODY: usize = 8 * 1024 * 1024;

const fn route(
    method: Method,
    path: &'static str,
    endpoint: Endpoint,
    access: Access,
    max_body: usize,
) -> Route {
    Route {
        method,
        path,
        endpoint,
        access,
        max_body,
    }
}

use Access::{Admin, Public, User};
use Endpoint as E;

/// Every route of the server.
pub static ROUTES: [Route; 37] = [
    route(Method::GET, "/healthz", E::Healthz, Public, 0),
    route(Method::GET, "/readyz", E::Readyz, Public, 0),
    route(Method::GET, "/metrics", E::Metrics, Admin, 0),
    route(Method::GET, "/openapi.json", E::OpenApi, Public, 0),
    route(
        Method::GET,
        "/.well-known/compliance-signing-keys",
        E::SigningKeys,
        Public,
        0,
    ),
    route(
        Method::GET,
        "/.well-known/compliance-signing-keys/{keyFile}",
        E::SigningKeyPem,
        Public,
        0,
    ),
    route(
        Method::GET,
        "/.well-known/vouch-log/checkpoint",
        E::LogCheckpoint,
        Public,
        0,
    ),
    route(
        Method::GET,
        "/.well-known/vouch-log/consistency",
        E::LogConsistency,
        Public,
        0,
    ),
    route(
        Method::GET,
        "/.well-known/vouch-log/entries",
        E::LogEntries,
        Public,
        0,
    ),
    route(
        Method::POST,
        "/admin/v1/records",
        E::AdminRecords,
        Admin,
        ADMIN_BODY,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/records",
        E::Records,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-subscriptions",
        E::Subscriptions,
        User,
        0,
    ),
    route(
        Method::PUT,
        "/organizations/{orgId}/compliance-subscriptions/{framework}",
        E::Subscribe,
        User,
        0,
    ),
    route(
        Method::DELETE,
        "/organizations/{orgId}/compliance-subscriptions/{framework}",
        E::Unsubscribe,
        User,
        0,
    ),
    route(
        Method::PUT,
        "/organizations/{orgId}/compliance-subscriptions/{framework}/schedule",
        E::PauseSchedule,
        User,
        SMALL_BODY,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-schedule",
        E::Schedule,
        User,
        0,
    ),
    route(
        Method::PUT,
        "/organizations/{orgId}/compliance-schedule",
        E::SetCadence,
        User,
        SMALL_BODY,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/webhooks",
        E::Webhooks,
        User,
        0,
    ),
    route(
        Method::POST,
        "/organizations/{orgId}/webhooks",
        E::CreateWebhook,
        User,
        SMALL_BODY,
    ),
    route(
        Method::DELETE,
        "/organizations/{orgId}/webhooks/{endpointId}",
        E::DeleteWebhook,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/auditor-grants",
        E::Grants,
        User,
        0,
    ),
    route(
        Method::POST,
        "/organizations/{orgId}/auditor-grants",
        E::CreateGrant,
        User,
        SMALL_BODY,
    ),
    route(
        Method::DELETE,
        "/organizations/{orgId}/auditor-grants/{grantId}",
        E::RevokeGrant,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports",
        E::Reports,
        User,
        0,
    ),
    route(
        Method::POST,
        "/organizations/{orgId}/compliance-reports",
        E::Generate,
        User,
        GENERATE_BODY,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}",
        E::Report,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}/pdf",
        E::ReportPdf,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}/records",
        E::ReportRecords,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}/attestation",
        E::ReportAttestation,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}/bundle",
        E::ReportBundle,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}/oscal",
        E::ReportOscal,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}/inclusion",
        E::ReportInclusion,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}/timestamp",
        E::ReportTimestamp,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-reports/{reportId}/diff",
        E::ReportDiff,
        User,
        0,
    ),
    route(
        Method::GET,
        "/organizations/{orgId}/compliance-report",
        E::LegacyReport,
        User,
        0,
    ),
    route(
        Method::GET,
        "/ui/organizations/{orgId}/compliance",
        E::UiPage,
        User,
        0,
    ),
    route(Method::GET, "/ui/static/{file}", E::UiAsset, Public, 0),
];

/// The result of matching a request.
#[derive(Debug)]
pub enum Match {
    Found {
        route: &'static Route,
        /// Path parameters, percent-decoded.
        params: Vec<(String, String)>,
    },
    /// The path exists, the method does not: the methods that do, for `Allow`.
    MethodNotAllowed {
        template: &'static str,
        allow: String,
    },
    /// A path parameter is not valid percent-encoded UTF-8.
    BadPath {
        template: &'static str,
    },
    NotFound,
}

struct Table {
    router: matchit::Router<&'static str>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut router = matchit::Router::new();
        for r in &ROUTES {
            // The same template under several methods is inserted once.
            let _ = router.insert(r.path, r.path);
        }
        Table { router }
    })
}

/// The methods a template answers, `HEAD` included wherever `GET` is.
fn allowed(template: &str) -> Vec<&'static str> {
    let mut out = vec![];
    for r in ROUTES.iter().filter(|r| r.path == template) {
        out.push(r.method.as_str());
        if r.method == Method::GET {
            out.push("HEAD");
        }
    }
    out
}

/// Finds the route of `method` and `path` (a trailing slash is ignored).
pub fn find(method: &Method, path: &str) -> Match {
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    };
    let Ok(m) = table().router.at(trimmed) else {
        return Match::NotFound;
    };
    let template: &'static str = m.value;
    let wanted = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let Some(route) = ROUTES
        .iter()
        .find(|r| r.path == template && r.method == wanted)
    else {
        return Match::MethodNotAllowed {
            template,
            allow: allowed(template).join(", "),
        };
    };
    let mut params = Vec::new();
    for (name, raw) in m.params.iter() {
        match percent_encoding::percent_decode_str(raw).decode_utf8() {
            Ok(v) => params.push((name.to_owned(), v.into_owned())),
            Err(_) => return Match::BadPath { template },
        }
    }
    Match::Found { route, params }
}

/// The metrics label of a method: the standard ones by name, any other `OTHER`.
pub fn method_label(m: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|k| *k == m)
        .map_or("OTHER", |k| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(method: Method, path: &str) -> (Endpoint, Vec<(String, String)>) {
        match find(&method, path) {
            Match::Found { route, params } => (route.endpoint, params),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn every_template_is_reachable_and_distinct() {
        for r in &ROUTES {
            let path = r.path.replace('{', "x").replace('}', "");
            let (e, _) = found(r.method.clone(), &path);
            assert_eq!(e, r.endpoint, "{} {}", r.method, r.path);
        }
    }

    #[test]
    fn parameters_are_percent_decoded() {
        let (e, params) = found(
            Method::GET,
            "/organizations/ac%6De/compliance-reports/r%2D1/pdf",
        );
        assert_eq!(e, Endpoint::ReportPdf);
        assert_eq!(
            params,
            vec![
                ("orgId".into(), "acme".into()),
                ("reportId".into(), "r-1".into())
            ]
        );
        assert!(matches!(
            find(&Method::GET, "/organizations/%FF/records"),
            Match::BadPath { .. }
        ));
    }

    #[test]
    fn head_follows_get_and_other_methods_are_listed() {
        assert_eq!(found(Method::HEAD, "/healthz").0, Endpoint::Healthz);
        match find(&Method::PATCH, "/organizations/acme/compliance-reports") {
            Match::MethodNotAllowed { template, allow } => {
                assert_eq!(template, "/organizations/{orgId}/compliance-reports");
                assert_eq!(allow, "GET, HEAD, POST");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(find(&Method::GET, "/nope"), Match::NotFound));
        assert_eq!(found(Method::GET, "/healthz/").0, Endpoint::Healthz);
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let m = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&m), "OTHER");
        assert_eq!(method_label(&Method::GET), "GET");
    }
}
