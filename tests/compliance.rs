//! End-to-end tests of the compliance API against the real binary: the
//! authorization matrix, generation and its failure modes, idempotency,
//! pagination, byte-identical downloads, key rotation and revocation, hostile
//! records, and the seed documents' own Python verifiers. Every answer is
//! checked against the committed OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use support::harness::current_backend;
use support::*;

// ---------------------------------------------------------------------------
// OpenAPI conformance

fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// Fails when `reply` to `method template` is not what the OpenAPI document says.
fn conforms(method: &str, template: &str, reply: &Reply) {
    let doc = openapi();
    let op = &doc["paths"][template][method.to_lowercase()];
    assert!(op.is_object(), "OpenAPI has no {method} {template}");
    let status = reply.status.to_string();
    let response = &op["responses"][&status];
    assert!(
        response.is_object(),
        "{method} {template} answered {status}, which the OpenAPI document does not list: {}",
        reply.text()
    );
    let Some(content) = response.get("content") else {
        return;
    };
    if content.get("application/json").is_none() {
        return;
    }
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{method} {template} {status}: content-type {:?}",
        reply.header("content-type")
    );
    let pointer = format!(
        "#/paths/{}/{}/responses/{status}/content/application~1json/schema",
        pointer_escape(template),
        method.to_lowercase()
    );
    let mut schema = doc.clone();
    schema["$ref"] = json!(pointer);
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("OpenAPI schema for {pointer}: {e}"));
    let body: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{method} {template}: not JSON ({e})"));
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status} leaves the OpenAPI document:\n{}\n{}",
        errors.join("\n"),
        reply.text()
    );
}

/// A request whose answer must conform to the OpenAPI document.
fn call(
    s: &Server,
    method: &str,
    path: &str,
    template: &str,
    auth: Auth<'_>,
    body: Option<&[u8]>,
) -> Reply {
    let reply = request(
        method,
        &s.url(path),
        auth,
        body,
        &[("content-type", "application/json")],
    );
    conforms(method, template, &reply);
    reply
}

const SUBS: &str = "/organizations/{orgId}/compliance-subscriptions";
const SUB: &str = "/organizations/{orgId}/compliance-subscriptions/{framework}";
const REPORTS: &str = "/organizations/{orgId}/compliance-reports";
const REPORT: &str = "/organizations/{orgId}/compliance-reports/{reportId}";
const REPORT_RECORDS: &str = "/organizations/{orgId}/compliance-reports/{reportId}/records";
const LEGACY: &str = "/organizations/{orgId}/compliance-report";
const KEYS: &str = "/.well-known/compliance-signing-keys";

fn subscribe(s: &Server, org: &str, fw: &str, user: &str) {
    let r = call(
        s,
        "PUT",
        &format!("/organizations/{org}/compliance-subscriptions/{fw}"),
        SUB,
        Auth::Basic(user, "demo"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn generate(s: &Server, org: &str, user: &str, pass: &str, body: &Value) -> Reply {
    call(
        s,
        "POST",
        &format!("/organizations/{org}/compliance-reports"),
        REPORTS,
        Auth::Basic(user, pass),
        Some(&serde_json::to_vec(body).unwrap()),
    )
}

fn repo(rel: &str) -> String {
    format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn vouch_verify(file: &std::path::Path, keys_url: &str) -> (i32, String) {
    let o = Command::new(bin())
        .arg("verify")
        .arg(file)
        .arg("--keys")
        .arg(keys_url)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

// ---------------------------------------------------------------------------

/// (method, path, OpenAPI path, body, expected status for owner, admin, member,
/// a member of another organization, anonymous)
type MatrixRow = (
    &'static str,
    String,
    &'static str,
    Option<Vec<u8>>,
    [u16; 5],
);

fn authorization_matrix() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    subscribe(&s, "acme", "soc2", "alice");
    subscribe(&s, "globex", "soc2", "dave");
    let acme_report = generate(&s, "acme", "carol", "demo", &json!({"framework": "soc2"})).json()
        ["report_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let globex_report = generate(&s, "globex", "dave", "demo", &json!({"framework": "soc2"}))
        .json()["report_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let callers: [(&str, Auth<'static>); 5] = [
        ("owner", Auth::Basic("alice", "demo")),
        ("admin", Auth::Basic("bob", "demo")),
        ("member", Auth::Basic("carol", "demo")),
        ("other organization", Auth::Basic("dave", "demo")),
        ("anonymous", Auth::None),
    ];
    let gen = br#"{"framework":"soc2"}"#.to_vec();
    let acme_rep = format!("/organizations/acme/compliance-reports/{acme_report}");
    let foreign_rep = format!("/organizations/acme/compliance-reports/{globex_report}");
    // (method, path, template, body, expected status for owner, admin, member, other, anonymous)
    let rows: Vec<MatrixRow> = vec![
        (
            "GET",
            "/organizations/acme/compliance-subscriptions".into(),
            SUBS,
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "PUT",
            "/organizations/acme/compliance-subscriptions/gdpr_ropa".into(),
            SUB,
            None,
            [200, 200, 403, 404, 401],
        ),
        (
            "DELETE",
            "/organizations/acme/compliance-subscriptions/dora".into(),
            SUB,
            None,
            [200, 200, 403, 404, 401],
        ),
        (
            "POST",
            "/organizations/acme/compliance-reports".into(),
            REPORTS,
            Some(gen.clone()),
            [201, 201, 201, 404, 401],
        ),
        (
            "GET",
            "/organizations/acme/compliance-reports".into(),
            REPORTS,
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            acme_rep.clone(),
            REPORT,
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            foreign_rep.clone(),
            REPORT,
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{acme_rep}/records"),
            REPORT_RECORDS,
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            format!("{foreign_rep}/records"),
            REPORT_RECORDS,
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{acme_rep}/attestation"),
            "/organizations/{orgId}/compliance-reports/{reportId}/attestation",
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            format!("{foreign_rep}/attestation?predicate=trestle"),
            "/organizations/{orgId}/compliance-reports/{reportId}/attestation",
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{acme_rep}/bundle"),
            "/organizations/{orgId}/compliance-reports/{reportId}/bundle",
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            format!("{foreign_rep}/bundle"),
            "/organizations/{orgId}/compliance-reports/{reportId}/bundle",
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{acme_rep}/oscal"),
            "/organizations/{orgId}/compliance-reports/{reportId}/oscal",
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            format!("{foreign_rep}/oscal"),
            "/organizations/{orgId}/compliance-reports/{reportId}/oscal",
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{acme_rep}/inclusion"),
            "/organizations/{orgId}/compliance-reports/{reportId}/inclusion",
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            format!("{foreign_rep}/inclusion"),
            "/organizations/{orgId}/compliance-reports/{reportId}/inclusion",
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{acme_rep}/timestamp"),
            "/organizations/{orgId}/compliance-reports/{reportId}/timestamp",
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{acme_rep}/diff?against={acme_report}"),
            "/organizations/{orgId}/compliance-reports/{reportId}/diff",
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            format!("{foreign_rep}/diff?against={acme_report}"),
            "/organizations/{orgId}/compliance-reports/{reportId}/diff",
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{acme_rep}/diff?against={globex_report}"),
            "/organizations/{orgId}/compliance-reports/{reportId}/diff",
            None,
            [404, 404, 404, 404, 401],
        ),
        (
            "GET",
            "/organizations/acme/compliance-schedule".into(),
            "/organizations/{orgId}/compliance-schedule",
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "PUT",
            "/organizations/acme/compliance-schedule".into(),
            "/organizations/{orgId}/compliance-schedule",
            Some(br#"{"cadence":"monthly"}"#.to_vec()),
            [200, 200, 403, 404, 401],
        ),
        (
            "PUT",
            "/organizations/acme/compliance-subscriptions/soc2/schedule".into(),
            "/organizations/{orgId}/compliance-subscriptions/{framework}/schedule",
            Some(br#"{"paused":false}"#.to_vec()),
            [200, 200, 403, 404, 401],
        ),
        (
            "GET",
            "/organizations/acme/webhooks".into(),
            "/organizations/{orgId}/webhooks",
            None,
            [200, 200, 403, 404, 401],
        ),
        (
            "POST",
            "/organizations/acme/webhooks".into(),
            "/organizations/{orgId}/webhooks",
            Some(br#"{"url":"https://10.0.0.1/hook","event_types":["packet.generated"]}"#.to_vec()),
            [400, 400, 403, 404, 401],
        ),
        (
            "DELETE",
            "/organizations/acme/webhooks/wh-none".into(),
            "/organizations/{orgId}/webhooks/{endpointId}",
            None,
            [404, 404, 403, 404, 401],
        ),
        (
            "GET",
            "/.well-known/vouch-log/checkpoint".into(),
            "/.well-known/vouch-log/checkpoint",
            None,
            [200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/.well-known/vouch-log/consistency?first=1&second=2".into(),
            "/.well-known/vouch-log/consistency",
            None,
            [200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/.well-known/vouch-log/entries".into(),
            "/.well-known/vouch-log/entries",
            None,
            [200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/organizations/acme/compliance-report".into(),
            LEGACY,
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            "/organizations/acme/records".into(),
            "/organizations/{orgId}/records",
            None,
            [200, 200, 200, 404, 401],
        ),
        (
            "GET",
            "/.well-known/compliance-signing-keys".into(),
            KEYS,
            None,
            [200, 200, 200, 200, 200],
        ),
    ];
    let mut failures = vec![];
    for (method, path, template, body, expected) in &rows {
        for ((who, auth), want) in callers.iter().zip(expected) {
            let auth = match auth {
                Auth::Basic(u, p) => Auth::Basic(u, p),
                Auth::Bearer(t) => Auth::Bearer(t),
                Auth::None => Auth::None,
            };
            let r = call(&s, method, path, template, auth, body.as_deref());
            if r.status != *want {
                failures.push(format!(
                    "{backend:?} {method} {path} as {who}: {} (expected {want}) {}",
                    r.status,
                    r.text()
                ));
            }
            if r.status == 401 {
                assert!(r
                    .header("www-authenticate")
                    .is_some_and(|h| h.starts_with("Basic")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A report of one organization is invisible through another's paths,
    // whichever way round, and looks exactly like a report that does not exist.
    let r = call(
        &s,
        "GET",
        &format!("/organizations/globex/compliance-reports/{acme_report}"),
        REPORT,
        Auth::Basic("dave", "demo"),
        None,
    );
    let missing = call(
        &s,
        "GET",
        "/organizations/globex/compliance-reports/r-does-not-exist",
        REPORT,
        Auth::Basic("dave", "demo"),
        None,
    );
    assert_eq!((r.status, &r.body), (404, &missing.body));
}

/// The auditor role: `erin` (a user, no member of acme) granted soc2 for
/// periods from 2026-01-01 until a few seconds from now. Every route, for
/// a soc2 packet in the period range, a dora packet (another framework) and
/// a soc2 packet of 2025 (another period); then the same after the grant
/// expired: every answer a 404 with the bytes of a missing report's.
fn auditor_matrix() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    subscribe(&s, "acme", "soc2", "alice");
    subscribe(&s, "acme", "dora", "alice");
    let id = |r: Reply| r.json()["report_id"].as_str().unwrap().to_owned();
    let inside = id(generate(
        &s,
        "acme",
        "carol",
        "demo",
        &json!({"framework": "soc2"}),
    ));
    let later = id(generate(
        &s,
        "acme",
        "carol",
        "demo",
        &json!({"framework": "soc2"}),
    ));
    let other_framework = id(generate(
        &s,
        "acme",
        "carol",
        "demo",
        &json!({"framework": "dora"}),
    ));
    let other_period = id(generate(
        &s,
        "acme",
        "carol",
        "demo",
        &json!({"framework": "soc2", "period_start": "2025-03-01T00:00:00Z", "period_end": "2025-04-01T00:00:00Z"}),
    ));
    let expires = vouch_engine::Timestamp::from_unix_seconds(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 12,
    )
    .unwrap();
    let grant = call(
        &s,
        "POST",
        "/organizations/acme/auditor-grants",
        "/organizations/{orgId}/auditor-grants",
        Auth::Basic("bob", "demo"),
        Some(&serde_json::to_vec(&json!({"username": "erin", "framework": "soc2", "period_start": "2026-01-01T00:00:00Z", "expires_at": expires})).unwrap()),
    );
    assert_eq!(grant.status, 201, "{}", grant.text());
    // A grant to a member, or to nobody, is refused; a member cannot grant.
    for (body, want) in [
        (
            json!({"username": "carol", "framework": "soc2", "expires_at": expires}),
            (409, "already_member"),
        ),
        (
            json!({"username": "nobody", "framework": "soc2", "expires_at": expires}),
            (404, "not_found"),
        ),
        (
            json!({"username": "erin", "framework": "soc2", "expires_at": "2020-01-01T00:00:00Z"}),
            (400, "bad_grant"),
        ),
        (
            json!({"username": "erin", "framework": "soc2", "expires_at": "2099-01-01T00:00:00Z"}),
            (400, "bad_grant"),
        ),
    ] {
        let r = call(
            &s,
            "POST",
            "/organizations/acme/auditor-grants",
            "/organizations/{orgId}/auditor-grants",
            Auth::Basic("bob", "demo"),
            Some(&serde_json::to_vec(&body).unwrap()),
        );
        assert_eq!((r.status, r.code().as_str()), want, "{body}: {}", r.text());
    }
    let r = call(
        &s,
        "GET",
        "/organizations/acme/auditor-grants",
        "/organizations/{orgId}/auditor-grants",
        Auth::Basic("carol", "demo"),
        None,
    );
    assert_eq!(r.status, 403);

    let rep = |r: &str| format!("/organizations/acme/compliance-reports/{r}");
    const T: &str = "/organizations/{orgId}/compliance-reports/{reportId}";
    let forms = [
        "",
        "/pdf",
        "/records",
        "/attestation",
        "/bundle",
        "/oscal",
        "/inclusion",
    ];
    let mut rows: Vec<(String, String, String, u16)> = vec![];
    for f in forms {
        rows.push((
            "GET".into(),
            format!("{}{f}", rep(&inside)),
            format!("{T}{f}"),
            200,
        ));
        rows.push((
            "GET".into(),
            format!("{}{f}", rep(&other_framework)),
            format!("{T}{f}"),
            404,
        ));
        rows.push((
            "GET".into(),
            format!("{}{f}", rep(&other_period)),
            format!("{T}{f}"),
            404,
        ));
    }
    rows.push((
        "GET".into(),
        format!("{}/timestamp", rep(&inside)),
        format!("{T}/timestamp"),
        404,
    ));
    rows.push((
        "GET".into(),
        format!("{}/diff?against={inside}", rep(&later)),
        format!("{T}/diff"),
        200,
    ));
    rows.push((
        "GET".into(),
        format!("{}/diff?against={other_period}", rep(&later)),
        format!("{T}/diff"),
        404,
    ));
    rows.push((
        "GET".into(),
        format!("{}/diff?against={inside}", rep(&other_framework)),
        format!("{T}/diff"),
        404,
    ));
    rows.push((
        "GET".into(),
        "/organizations/acme/compliance-reports".into(),
        REPORTS.into(),
        200,
    ));
    rows.push((
        "GET".into(),
        "/ui/organizations/acme/compliance".into(),
        "/ui/organizations/{orgId}/compliance".into(),
        200,
    ));
    // Everything that is not reading the granted packets: as for a stranger.
    for (m, p, t) in [
        ("GET", "/organizations/acme/compliance-subscriptions", SUBS),
        (
            "PUT",
            "/organizations/acme/compliance-subscriptions/soc2",
            SUB,
        ),
        ("POST", "/organizations/acme/compliance-reports", REPORTS),
        ("GET", "/organizations/acme/compliance-report", LEGACY),
        (
            "GET",
            "/organizations/acme/records",
            "/organizations/{orgId}/records",
        ),
        (
            "GET",
            "/organizations/acme/compliance-schedule",
            "/organizations/{orgId}/compliance-schedule",
        ),
        (
            "GET",
            "/organizations/acme/webhooks",
            "/organizations/{orgId}/webhooks",
        ),
        (
            "GET",
            "/organizations/acme/auditor-grants",
            "/organizations/{orgId}/auditor-grants",
        ),
        ("GET", "/organizations/globex/compliance-reports", REPORTS),
    ] {
        rows.push((m.into(), p.into(), t.into(), 404));
    }
    let missing = call(
        &s,
        "GET",
        &rep("r-does-not-exist"),
        T,
        Auth::Basic("erin", "demo"),
        None,
    );
    assert_eq!(missing.status, 404);
    let run = |after: bool| {
        let mut failures = vec![];
        for (method, path, template, want) in &rows {
            let want = if after { 404 } else { *want };
            let body = (method == "POST").then(|| br#"{"framework":"soc2"}"#.to_vec());
            let r = call(
                &s,
                method,
                path,
                template,
                Auth::Basic("erin", "demo"),
                body.as_deref(),
            );
            if r.status != want {
                failures.push(format!(
                    "{backend:?} {method} {path} as the auditor{}: {} (expected {want}) {}",
                    if after { " after expiry" } else { "" },
                    r.status,
                    r.text()
                ));
            } else if want == 404 && method == "GET" && r.body != missing.body {
                failures.push(format!(
                    "{method} {path}: a 404 unlike a missing report's: {}",
                    r.text()
                ));
            }
        }
        failures
    };
    let failures = run(false);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The listing holds the granted packets only; every read is audited.
    let list = s
        .get(
            "/organizations/acme/compliance-reports",
            Auth::Basic("erin", "demo"),
        )
        .json();
    let ids: Vec<&str> = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [later.as_str(), inside.as_str()]);
    let expires_in = expires.unix_seconds()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
    assert!(
        expires_in > 0,
        "the matrix took longer than the grant ran; lengthen it"
    );
    std::thread::sleep(std::time::Duration::from_secs(expires_in as u64 + 1));
    let failures = run(true);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let grants = s
        .get(
            "/organizations/acme/auditor-grants",
            Auth::Basic("alice", "demo"),
        )
        .json();
    assert_eq!(grants["grants"][0]["active"], false, "{grants}");
}

fn generation_answers_each_failure_with_its_status() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let r = generate(&s, "acme", "carol", "demo", &json!({"framework": "soc2"}));
    assert_eq!(
        (r.status, r.code().as_str()),
        (402, "subscription_required")
    );
    let r = generate(
        &s,
        "acme",
        "carol",
        "demo",
        &json!({"framework": "iso27001"}),
    );
    assert_eq!((r.status, r.code().as_str()), (404, "unknown_framework"));
    subscribe(&s, "acme", "soc2", "bob");
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "bad_body"),
        (b"not json".to_vec(), "bad_body"),
        (b"[]".to_vec(), "bad_body"),
        (br#"{}"#.to_vec(), "bad_body"),
        (br#"{"framework":"soc2","colour":"red"}"#.to_vec(), "bad_body"),
        (br#"{"framework":1}"#.to_vec(), "bad_body"),
        (br#"{"framework":"soc2","period_end":"yesterday"}"#.to_vec(), "bad_body"),
        (br#"{"framework":"soc2","period_start":"2026-06-01T00:00:00Z","period_end":"2026-05-01T00:00:00Z"}"#.to_vec(), "bad_period"),
        (br#"{"framework":"soc2","period_end":"2999-01-01T00:00:00Z"}"#.to_vec(), "bad_period"),
        (br#"{"framework":"soc2","x":1.5}"#.to_vec(), "bad_body"),
    ];
    for (body, code) in bad {
        let r = call(
            &s,
            "POST",
            "/organizations/acme/compliance-reports",
            REPORTS,
            Auth::Basic("carol", "demo"),
            Some(&body),
        );
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, code),
            "{}: {}",
            String::from_utf8_lossy(&body),
            r.text()
        );
    }
    let list = call(
        &s,
        "GET",
        "/organizations/acme/compliance-reports",
        REPORTS,
        Auth::Basic("carol", "demo"),
        None,
    )
    .json();
    assert_eq!(
        list["reports"].as_array().unwrap().len(),
        0,
        "nothing was stored for refused requests"
    );
    // An explicit period is honoured.
    let r = generate(
        &s,
        "acme",
        "carol",
        "demo",
        &json!({"framework": "soc2", "period_start": "2026-01-01T00:00:00Z", "period_end": "2026-02-01T00:00:00+01:00"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["packet"]["period_end"], "2026-01-31T23:00:00Z");
}

fn without_keys_generation_and_the_legacy_report_answer_503() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start_with(
        &store,
        Options {
            demo: false,
            ..Options::default()
        },
    );
    let mut batch: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("examples/import/initech.json")).unwrap(),
    )
    .unwrap();
    batch["users"][0]["password"] = json!("demo");
    assert_eq!(s.admin(&batch).status, 200);
    subscribe(&s, "initech", "soc2", "peter");
    let r = generate(
        &s,
        "initech",
        "peter",
        "demo",
        &json!({"framework": "soc2"}),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "signing_key_unavailable")
    );
    let r = call(
        &s,
        "GET",
        "/organizations/initech/compliance-report",
        LEGACY,
        Auth::Basic("peter", "demo"),
        None,
    );
    assert_eq!((r.status, r.code().as_str()), (503, "hmac_key_unavailable"));
    let keys = call(&s, "GET", KEYS, KEYS, Auth::None, None).json();
    assert_eq!(keys["keys"], json!([]));
}

fn idempotency_key_returns_the_same_report() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    subscribe(&s, "acme", "dora", "alice");
    let body = br#"{"framework":"dora"}"#;
    let post = |key: &str, body: &[u8]| {
        let r = request(
            "POST",
            &s.url("/organizations/acme/compliance-reports"),
            Auth::Basic("carol", "demo"),
            Some(body),
            &[
                ("idempotency-key", key),
                ("content-type", "application/json"),
            ],
        );
        conforms("POST", REPORTS, &r);
        r
    };
    let first = post("retry-1", body);
    assert_eq!(first.status, 201, "{}", first.text());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = post("retry-1", body);
    assert_eq!(again.status, 201);
    assert_eq!(
        first.body, again.body,
        "a retried POST answers the same report, byte for byte"
    );
    let other = post(
        "retry-1",
        br#"{"framework":"dora","period_end":"2026-01-01T00:00:00Z"}"#,
    );
    assert_eq!(
        (other.status, other.code().as_str()),
        (409, "idempotency_key_reused")
    );
    let list = call(
        &s,
        "GET",
        "/organizations/acme/compliance-reports",
        REPORTS,
        Auth::Basic("carol", "demo"),
        None,
    )
    .json();
    assert_eq!(list["reports"].as_array().unwrap().len(), 1);
    let r = request(
        "POST",
        &s.url("/organizations/acme/compliance-reports"),
        Auth::Basic("carol", "demo"),
        Some(body),
        &[
            ("idempotency-key", ""),
            ("content-type", "application/json"),
        ],
    );
    assert_eq!(r.status, 400);
    // A key that is not visible ASCII is refused, not ignored (which would
    // generate a second report for a retry).
    let mut raw = std::net::TcpStream::connect(&s.addr).unwrap();
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("carol:demo")
    };
    let mut req = format!(
        "POST /organizations/acme/compliance-reports HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nIdempotency-Key: ",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice("caf\u{e9}-1".as_bytes());
    req.extend_from_slice(b"\r\n\r\n");
    req.extend_from_slice(body);
    std::io::Write::write_all(&mut raw, &req).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut raw, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("bad_idempotency_key"), "{answer}");
    // The replay is audited as one.
    let replays: i64 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let db = vouch::store::Db::connect(&vouch::store::sqlite_url(store.path()))
                .await
                .unwrap();
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM audit_entries WHERE action = 'report.generate_replayed'",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            n
        });
    assert_eq!(replays, 1, "the replay wrote its audit entry");
}

fn state_changing_bodies_must_be_json() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    subscribe(&s, "acme", "dora", "alice");
    for (ct, status) in [
        (Some("application/x-www-form-urlencoded"), 415),
        (Some("text/plain"), 415),
        (None, 415),
        (Some("application/json; charset=utf-8"), 201),
    ] {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
        let r = request(
            "POST",
            &s.url("/organizations/acme/compliance-reports"),
            Auth::Basic("carol", "demo"),
            Some(br#"{"framework":"dora"}"#),
            &headers,
        );
        assert_eq!(r.status, status, "{ct:?}: {}", r.text());
        conforms("POST", REPORTS, &r);
    }
    // A key named twice is refused, not resolved silently.
    let r = call(
        &s,
        "POST",
        "/organizations/acme/compliance-reports",
        REPORTS,
        Auth::Basic("carol", "demo"),
        Some(br#"{"framework":"dora","framework":"soc2"}"#),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "bad_body"),
        "{}",
        r.text()
    );
    // The generation body is small: 16 KiB at most.
    let big = format!(r#"{{"framework":"dora","x":"{}"}}"#, "a".repeat(20 * 1024));
    let r = call(
        &s,
        "POST",
        "/organizations/acme/compliance-reports",
        REPORTS,
        Auth::Basic("carol", "demo"),
        Some(big.as_bytes()),
    );
    assert_eq!((r.status, r.code().as_str()), (413, "too_large"));
}

fn listing_pages_stay_correct_while_reports_arrive() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    for fw in ["soc2", "gdpr_ropa", "dora", "eu_ai_act"] {
        subscribe(&s, "acme", fw, "alice");
    }
    let mut made = vec![];
    for fw in ["soc2", "gdpr_ropa", "dora", "eu_ai_act", "soc2"] {
        let r = generate(&s, "acme", "carol", "demo", &json!({"framework": fw}));
        assert_eq!(r.status, 201);
        made.push(r.json()["report_id"].as_str().unwrap().to_owned());
    }
    let page = |cursor: Option<&str>| {
        let path = match cursor {
            Some(c) => format!("/organizations/acme/compliance-reports?limit=2&cursor={c}"),
            None => "/organizations/acme/compliance-reports?limit=2".into(),
        };
        call(
            &s,
            "GET",
            &path,
            REPORTS,
            Auth::Basic("carol", "demo"),
            None,
        )
        .json()
    };
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let p = page(cursor.as_deref());
        for r in p["reports"].as_array().unwrap() {
            seen.push(r["report_id"].as_str().unwrap().to_owned());
            assert_eq!(r["status"], "complete");
            assert_eq!(r["schema_version"], "1.0");
        }
        if seen.len() == 2 {
            // A report arrives between two pages.
            assert_eq!(
                generate(&s, "acme", "carol", "demo", &json!({"framework": "dora"})).status,
                201
            );
        }
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected = made.clone();
    expected.reverse();
    assert_eq!(
        seen, expected,
        "{backend:?}: most recent first, none lost, none twice"
    );
    let soc2 = call(
        &s,
        "GET",
        "/organizations/acme/compliance-reports?framework=soc2",
        REPORTS,
        Auth::Basic("carol", "demo"),
        None,
    )
    .json();
    assert_eq!(soc2["reports"].as_array().unwrap().len(), 2);
    for (q, code) in [
        ("limit=0", "bad_limit"),
        ("limit=x", "bad_limit"),
        ("cursor=%%%", "bad_cursor"),
    ] {
        let r = call(
            &s,
            "GET",
            &format!("/organizations/acme/compliance-reports?{q}"),
            REPORTS,
            Auth::Basic("carol", "demo"),
            None,
        );
        assert_eq!((r.status, r.code().as_str()), (400, code), "{q}");
    }
    let r = call(
        &s,
        "GET",
        "/organizations/acme/compliance-reports?framework=iso27001",
        REPORTS,
        Auth::Basic("carol", "demo"),
        None,
    );
    assert_eq!(r.status, 404);
}

fn download_is_byte_identical_and_survives_unsubscribing() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    subscribe(&s, "acme", "gdpr_ropa", "bob");
    let made = generate(
        &s,
        "acme",
        "carol",
        "demo",
        &json!({"framework": "gdpr_ropa"}),
    );
    assert_eq!(made.status, 201);
    let id = made.json()["report_id"].as_str().unwrap().to_owned();
    assert_eq!(
        made.header("location"),
        Some(format!("/organizations/acme/compliance-reports/{id}").as_str())
    );
    let path = format!("/organizations/acme/compliance-reports/{id}");
    let got = call(&s, "GET", &path, REPORT, Auth::Basic("carol", "demo"), None);
    assert_eq!(got.body, made.body);
    let r = call(
        &s,
        "DELETE",
        "/organizations/acme/compliance-subscriptions/gdpr_ropa",
        SUB,
        Auth::Basic("bob", "demo"),
        None,
    );
    assert_eq!((r.status, r.json()["enabled"].clone()), (200, json!(false)));
    assert!(r.json()["cancelled_at"].is_string());
    assert_eq!(
        call(&s, "GET", &path, REPORT, Auth::Basic("carol", "demo"), None).body,
        made.body,
        "past packets stay readable"
    );
    assert_eq!(
        generate(
            &s,
            "acme",
            "carol",
            "demo",
            &json!({"framework": "gdpr_ropa"})
        )
        .status,
        402
    );
    subscribe(&s, "acme", "gdpr_ropa", "bob");
    assert_eq!(
        generate(
            &s,
            "acme",
            "carol",
            "demo",
            &json!({"framework": "gdpr_ropa"})
        )
        .status,
        201,
        "reinstated"
    );
    // Subscribing twice is one subscription.
    let subs = call(
        &s,
        "GET",
        SUBS.replace("{orgId}", "acme").as_str(),
        SUBS,
        Auth::Basic("carol", "demo"),
        None,
    )
    .json();
    let gdpr: Vec<&Value> = subs["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["framework"] == "gdpr_ropa")
        .collect();
    assert_eq!(gdpr.len(), 1);
    assert_eq!(gdpr[0]["enabled"], true);
    assert_eq!(gdpr[0]["monthly_price_eur"], 290);
    let r = call(
        &s,
        "PUT",
        "/organizations/acme/compliance-subscriptions/iso27001",
        SUB,
        Auth::Basic("bob", "demo"),
        None,
    );
    assert_eq!(r.status, 404);
}

fn well_known_keys_are_cacheable() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let r = call(&s, "GET", KEYS, KEYS, Auth::None, None);
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    let etag = r.header("etag").unwrap().to_owned();
    let again = request(
        "GET",
        &s.url(KEYS),
        Auth::None,
        None,
        &[("if-none-match", &etag)],
    );
    assert_eq!(again.status, 304);
    // A cache may hold the tag as weak, or send several (RFC 9110 §13.1.2).
    for held in [
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let r = request(
            "GET",
            &s.url(KEYS),
            Auth::None,
            None,
            &[("if-none-match", &held)],
        );
        assert_eq!(r.status, 304, "If-None-Match: {held}");
    }
    let k = &r.json()["keys"][0];
    assert_eq!(k["active"], true);
    assert_eq!(k["jwk"]["kid"], k["key_id"]);
}

fn seed_snippets_verify_live_answers() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    subscribe(&s, "acme", "soc2", "alice");
    let made = generate(&s, "acme", "carol", "demo", &json!({"framework": "soc2"}));
    let packet = store.path().join("packet.json");
    std::fs::write(&packet, &made.body).unwrap();
    let (ok, out) = run_python(
        "tests/seed000_verify.py",
        &[packet.to_str().unwrap(), &s.url(KEYS)],
    );
    assert!(
        ok && out.contains("Packet is authentic"),
        "{backend:?}: {out}"
    );
    let legacy = call(
        &s,
        "GET",
        "/organizations/acme/compliance-report",
        LEGACY,
        Auth::Basic("carol", "demo"),
        None,
    );
    let body = store.path().join("legacy.json");
    std::fs::write(&body, &legacy.body).unwrap();
    let key = store.path().join("dev-hmac.key");
    let (ok, out) = run_python(
        "tests/seed001_verify.py",
        &[body.to_str().unwrap(), key.to_str().unwrap()],
    );
    assert!(ok && out.contains("Signature valid"), "{backend:?}: {out}");
    // And a tampered legacy report does not verify.
    let tampered = String::from_utf8(legacy.body.clone()).unwrap().replacen(
        "Acme Engineering",
        "Acme Engineerinh",
        1,
    );
    std::fs::write(&body, tampered).unwrap();
    let (ok, out) = run_python(
        "tests/seed001_verify.py",
        &[body.to_str().unwrap(), key.to_str().unwrap()],
    );
    assert!(!ok && out.contains("Signature mismatch"), "{out}");
}

fn rotation_keeps_old_packets_verifiable_and_revocation_ends_them() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    subscribe(&s, "acme", "soc2", "alice");
    let before = generate(&s, "acme", "carol", "demo", &json!({"framework": "soc2"}));
    let old_key = before.json()["signature"]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before_file = store.path().join("before.json");
    std::fs::write(&before_file, &before.body).unwrap();
    let keys_url = s.url(KEYS);

    // Generations keep going while the key rotates: none fails.
    let key_file = store.path().join("dev-signing-key.pem");
    let url = s.url("/organizations/acme/compliance-reports");
    let statuses = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            (0..12)
                .map(|_| {
                    request(
                        "POST",
                        &url,
                        Auth::Basic("carol", "demo"),
                        Some(br#"{"framework":"soc2"}"#),
                        &[("content-type", "application/json")],
                    )
                    .status
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let o = store
            .command(&["keys", "rotate", "--key-file", key_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        load.join().unwrap()
    });
    assert!(
        statuses.iter().all(|s| *s == 201),
        "{backend:?}: {statuses:?}"
    );
    let after = generate(&s, "acme", "carol", "demo", &json!({"framework": "soc2"}));
    let new_key = after.json()["signature"]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(old_key, new_key, "the running server picked up the new key");
    let after_file = store.path().join("after.json");
    std::fs::write(&after_file, &after.body).unwrap();

    let keys = call(&s, "GET", KEYS, KEYS, Auth::None, None).json();
    let old = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == old_key.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (old["active"].clone(), old["retired_at"].is_string()),
        (json!(false), true)
    );
    assert_eq!(
        vouch_verify(&before_file, &keys_url).0,
        0,
        "a packet signed before the rotation still verifies"
    );
    assert_eq!(vouch_verify(&after_file, &keys_url).0, 0);

    let (ok, out) = run_python(
        "tests/seed000_verify.py",
        &[before_file.to_str().unwrap(), &keys_url],
    );
    assert!(ok, "{out}");
    let o = store.command(&["keys", "list"]).output().unwrap();
    let listing = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        listing.contains(&old_key) && listing.contains("retired") && listing.contains("active"),
        "{listing}"
    );

    let o = store
        .command(&["keys", "revoke", &old_key])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, out) = vouch_verify(&before_file, &keys_url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("revoked"), "{out}");
    assert_eq!(
        vouch_verify(&after_file, &keys_url).0,
        0,
        "the new key's packets are unaffected"
    );
    let o = store
        .command(&["keys", "revoke", "key-that-never-was"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
}

fn hostile_records_give_packets_and_reports_that_verify() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let hostile_names = [
        "quote \" and \\ backslash",
        "\",\"signature\":{\"value\":\"forged\"}",
        "Cafe\u{301} (NFD)",
        "emoji \u{1F600}\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",
        "</script><script>alert(1)</script>",
        "#panic() *x* ] $ @label",
        ",\"signature\"",
    ];
    let services: Vec<Value> = hostile_names
        .iter()
        .enumerate()
        .map(|(i, name)| json!({
            "service_id": format!("svc-h{i}"), "organization_id": "hostile", "name": name, "database_type": "postgresql",
            "version": "17", "status": "running", "zones": ["de-fra1", "nl-ams1"], "storage_region": "de-fra1",
            "storage_encrypted": true, "backup_encryption_enabled": true, "tls_enabled": i % 2 == 0,
            "backup_policy": {"schedule_enabled": true, "retention_days": 7}
        }))
        .collect();
    let batch = json!({
        "organizations": [{"id": "hostile", "name": "Org \",\"signature\" Cafe\u{301}", "billing_email": "a\"b@example.com"}],
        "users": [{"username": "mallory", "password": "demo"}],
        "memberships": [{"organization_id": "hostile", "username": "mallory", "role": "owner"}],
        "services": services
    });
    let r = s.admin(&batch);
    assert_eq!(r.status, 200, "{}", r.text());
    subscribe(&s, "hostile", "soc2", "mallory");
    let made = generate(
        &s,
        "hostile",
        "mallory",
        "demo",
        &json!({"framework": "soc2"}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let v = made.json();
    assert_eq!(
        v["packet"]["organization"]["name"], "Org \",\"signature\" Caf\u{e9}",
        "NFC on entry"
    );
    let packet = store.path().join("hostile.json");
    std::fs::write(&packet, &made.body).unwrap();
    let (code, out) = vouch_verify(&packet, &s.url(KEYS));
    assert_eq!(code, 0, "{out}");
    let legacy = call(
        &s,
        "GET",
        "/organizations/hostile/compliance-report",
        LEGACY,
        Auth::Basic("mallory", "demo"),
        None,
    );
    let marker = b",\"signature\"";
    let first = legacy
        .body
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap();
    // The seed's verifier takes the bytes between `{"report":` and the first
    // marker as the report: they must be exactly the whole report value.
    let prefix = b"{\"report\":";
    assert!(legacy.body.starts_with(prefix));
    let sliced: Value = serde_json::from_slice(&legacy.body[prefix.len()..first])
        .expect("the slice up to the first marker is the whole report value");
    assert_eq!(sliced, legacy.json()["report"]);
    assert_eq!(
        legacy.json()["report"]["services"][1]["name"],
        hostile_names[1]
    );

    let (ok, out) = run_python(
        "tests/seed000_verify.py",
        &[packet.to_str().unwrap(), &s.url(KEYS)],
    );
    assert!(ok, "{out}");
    let body = store.path().join("legacy.json");
    std::fs::write(&body, &legacy.body).unwrap();
    let (ok, out) = run_python(
        "tests/seed001_verify.py",
        &[
            body.to_str().unwrap(),
            store.path().join("dev-hmac.key").to_str().unwrap(),
        ],
    );
    assert!(ok && out.contains("Signature valid"), "{out}");
}

fn rotating_to_an_existing_key_id_changes_nothing() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let key_file = store.path().join("dev-signing-key.pem");
    let before = std::fs::read(&key_file).unwrap();
    let list = store.command(&["keys", "list"]).output().unwrap();
    let listing = String::from_utf8_lossy(&list.stdout).into_owned();
    let live_id = listing
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let o = store
        .command(&[
            "keys",
            "rotate",
            "--key-file",
            key_file.to_str().unwrap(),
            "--key-id",
            &live_id,
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already in the key history"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        before,
        "the live key file is untouched"
    );
    let after = store.command(&["keys", "list"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&after.stdout), listing);
    // Generation still signs with the live key.
    subscribe(&s, "acme", "soc2", "alice");
    let r = generate(&s, "acme", "carol", "demo", &json!({"framework": "soc2"}));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["signature"]["key_id"], live_id.as_str());
}

/// The demo's history holds one incident: TLS off on the orders database for
/// three days, twelve days before the start. Every packet of the month shows it.
fn the_demo_packets_show_their_incident() {
    let store = Store::new(current_backend());
    let s = Server::start(&store);
    subscribe(&s, "acme", "soc2", "alice");
    let made = generate(&s, "acme", "carol", "demo", &json!({"framework": "soc2"}));
    assert_eq!(made.status, 201, "{}", made.text());
    let packet = &made.json()["packet"];
    let c = packet["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control_id"] == "CC6.7-encryption-in-transit")
        .unwrap();
    assert_eq!(c["status"], "exception", "{c:#}");
    assert_eq!(c["time_basis"], "throughout_period");
    let f = &c["findings"][0];
    assert_eq!(
        (&f["resource"], &f["field"]),
        (&json!("svc-acme-orders"), &json!("tls_enabled"))
    );
    let secs = |k: &str| {
        f["interval"][k]
            .as_str()
            .unwrap()
            .parse::<vouch_engine::Timestamp>()
            .unwrap()
            .unix_seconds()
    };
    assert_eq!(secs("to") - secs("from"), 3 * 86_400, "{f:#}");
}

/// Every framework's packet, generated on the server, re-performs from its
/// archived records with `vouch reproduce`, byte for byte; another
/// organization's report's records are a 404 byte-identical to a missing one.
fn every_packet_reproduces_from_its_archived_records() {
    let store = Store::new(current_backend());
    let s = Server::start(&store);
    for fw in ["soc2", "gdpr_ropa", "dora", "eu_ai_act"] {
        subscribe(&s, "acme", fw, "alice");
        let made = generate(&s, "acme", "carol", "demo", &json!({"framework": fw}));
        assert_eq!(made.status, 201, "{}", made.text());
        let id = made.json()["report_id"].as_str().unwrap().to_owned();
        let path = format!("/organizations/acme/compliance-reports/{id}/records");
        let records = call(
            &s,
            "GET",
            &path,
            REPORT_RECORDS,
            Auth::Basic("carol", "demo"),
            None,
        );
        assert_eq!(records.status, 200, "{}", records.text());
        // The archive is the exact bytes the packet names.
        let digest = vouch_engine::signing::sha256_hex(&records.body);
        assert_eq!(
            made.json()["packet"]["inputs"]["records_sha256"],
            json!(digest)
        );
        let packet_file = store.path().join(format!("{fw}.json"));
        let records_file = store.path().join(format!("{fw}-records.json"));
        std::fs::write(&packet_file, &made.body).unwrap();
        std::fs::write(&records_file, &records.body).unwrap();
        let reproduce = |extra: &[&str]| {
            Command::new(bin())
                .args([
                    "reproduce",
                    packet_file.to_str().unwrap(),
                    "--records",
                    records_file.to_str().unwrap(),
                ])
                .args(extra)
                .output()
                .unwrap()
        };
        let o = reproduce(&[]);
        assert!(
            o.status.success(),
            "{fw}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // As on another machine: a fresh process with nothing of this one's
        // environment, another working directory, locale and time zone.
        let elsewhere = tempfile::tempdir().unwrap();
        let o = Command::new(bin())
            .args([
                "reproduce",
                packet_file.to_str().unwrap(),
                "--records",
                records_file.to_str().unwrap(),
            ])
            .env_clear()
            .env("HOME", elsewhere.path())
            .env("LANG", "tr_TR.UTF-8")
            .env("LC_ALL", "tr_TR.UTF-8")
            .env("TZ", "Pacific/Kiritimati")
            .current_dir(elsewhere.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{fw} elsewhere: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // One line of the framework changed (a control's title): refused as
        // another framework text, before anything is evaluated.
        let frameworks = store.path().join(format!("{fw}-frameworks"));
        std::fs::create_dir_all(&frameworks).unwrap();
        let yaml = std::fs::read_to_string(repo(&format!("frameworks/{fw}.yaml"))).unwrap();
        let edited = yaml.replacen("    title: ", "    title: Edited ", 1);
        assert_ne!(edited, yaml);
        std::fs::write(frameworks.join(format!("{fw}.yaml")), edited).unwrap();
        let o = reproduce(&["--frameworks-dir", frameworks.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("is not the text that judged the packet"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // One value of the archive changed: refused with the reason.
        let mut changed: Value = serde_json::from_slice(&records.body).unwrap();
        changed["organization"]["name"] = json!("Someone Else");
        std::fs::write(&records_file, serde_json::to_vec(&changed).unwrap()).unwrap();
        let o = reproduce(&[]);
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stderr)
            .contains("is not the one the packet was computed from"));
    }
    // dave's report, asked for through acme, and a report that does not exist.
    subscribe(&s, "globex", "soc2", "dave");
    let theirs = generate(&s, "globex", "dave", "demo", &json!({"framework": "soc2"}));
    let theirs = theirs.json()["report_id"].as_str().unwrap().to_owned();
    let foreign = call(
        &s,
        "GET",
        &format!("/organizations/acme/compliance-reports/{theirs}/records"),
        REPORT_RECORDS,
        Auth::Basic("carol", "demo"),
        None,
    );
    let missing = call(
        &s,
        "GET",
        "/organizations/acme/compliance-reports/r-00000000-0000-7000-8000-000000000000/records",
        REPORT_RECORDS,
        Auth::Basic("carol", "demo"),
        None,
    );
    assert_eq!((foreign.status, missing.status), (404, 404));
    assert_eq!(foreign.body, missing.body);
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    run(&[
        case!(authorization_matrix).on_backends(),
        case!(auditor_matrix).on_backends(),
        case!(generation_answers_each_failure_with_its_status),
        case!(without_keys_generation_and_the_legacy_report_answer_503),
        case!(idempotency_key_returns_the_same_report),
        case!(state_changing_bodies_must_be_json),
        case!(listing_pages_stay_correct_while_reports_arrive).on_backends(),
        case!(download_is_byte_identical_and_survives_unsubscribing),
        case!(well_known_keys_are_cacheable),
        case!(seed_snippets_verify_live_answers)
            .on_backends()
            .needs(&[Tool::Python]),
        case!(rotation_keeps_old_packets_verifiable_and_revocation_ends_them)
            .on_backends()
            .needs(&[Tool::Python]),
        case!(hostile_records_give_packets_and_reports_that_verify).needs(&[Tool::Python]),
        case!(rotating_to_an_existing_key_id_changes_nothing),
        case!(the_demo_packets_show_their_incident).on_backends(),
        case!(every_packet_reproduces_from_its_archived_records).on_backends(),
    ])
}
