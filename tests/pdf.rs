//! The PDF rendition, read back with poppler as an auditor would: every control
//! and the signature metadata on the pages, the attachment equal to the signed
//! bytes, hostile strings printed literally, and `vouch verify` on the PDF alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::harness::current_backend;
use support::*;

const HOSTILE_ORG: &str = "Hostile #panic() *x* ] $ @label <script>";
const HOSTILE_SERVICE: &str = "svc-#panic()-*x*-]-$-@label-<script>";

fn hostile_batch() -> Value {
    json!({
        "organizations": [{"id": "hostile", "name": HOSTILE_ORG, "billing_email": "b@example.com"}],
        "users": [{"username": "mallory", "password": "demo", "mfa_enabled": true}],
        "memberships": [{"organization_id": "hostile", "username": "mallory", "role": "owner"}],
        "services": [{
            "service_id": HOSTILE_SERVICE, "organization_id": "hostile", "name": "db", "database_type": "postgresql",
            "version": "17", "status": "running", "zones": ["us-east1"], "storage_region": "us-east1",
            "storage_encrypted": false, "backup_encryption_enabled": true, "tls_enabled": false,
            "backup_policy": {"schedule_enabled": true, "retention_days": 7}
        }]
    })
}

/// The packet's exact bytes, sliced from a body.
fn packet_bytes(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).unwrap();
    let start = text.find("\"packet\":").unwrap() + "\"packet\":".len();
    let end = text.find(",\"signature\":").unwrap();
    text.as_bytes()[start..end].to_vec()
}

fn the_pdf_carries_the_signed_evidence() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    assert_eq!(s.admin(&hostile_batch()).status, 200);
    let r = s.send(
        "PUT",
        "/organizations/hostile/compliance-subscriptions/soc2",
        Auth::Basic("mallory", "demo"),
        b"",
    );
    assert_eq!(r.status, 200);
    let made = s.send(
        "POST",
        "/organizations/hostile/compliance-reports",
        Auth::Basic("mallory", "demo"),
        br#"{"framework":"soc2"}"#,
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let body: Value = made.json();
    let id = body["report_id"].as_str().unwrap().to_owned();

    // The background rendering turns pdf_available true.
    let mut available = false;
    for _ in 0..120 {
        let list = s
            .get(
                "/organizations/hostile/compliance-reports",
                Auth::Basic("mallory", "demo"),
            )
            .json();
        if list["reports"][0]["pdf_available"] == true {
            available = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(
        available,
        "{backend:?}: the PDF was not rendered in the background"
    );

    let pdf = s.get(
        &format!("/organizations/hostile/compliance-reports/{id}/pdf"),
        Auth::Basic("mallory", "demo"),
    );
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(pdf.body.starts_with(b"%PDF-"));
    let again = s.get(
        &format!("/organizations/hostile/compliance-reports/{id}/pdf"),
        Auth::Basic("mallory", "demo"),
    );
    assert_eq!(again.body, pdf.body);
    // Another organization's member and a stranger see nothing.
    assert_eq!(
        s.get(
            &format!("/organizations/hostile/compliance-reports/{id}/pdf"),
            Auth::Basic("alice", "demo")
        )
        .status,
        404
    );
    assert_eq!(
        s.get(
            &format!("/organizations/acme/compliance-reports/{id}/pdf"),
            Auth::Basic("alice", "demo")
        )
        .status,
        404
    );
    assert_eq!(
        s.get(
            &format!("/organizations/hostile/compliance-reports/{id}/pdf"),
            Auth::None
        )
        .status,
        401
    );

    let file = store.path().join("report.pdf");
    std::fs::write(&file, &pdf.body).unwrap();
    let o = Command::new(bin())
        .arg("verify")
        .arg(&file)
        .arg("--keys")
        .arg(s.url("/.well-known/compliance-signing-keys"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.starts_with("OK PDF attachment: soc2 packet"), "{out}");
    // What was verified is printed from the packet, not from the pages,
    // and the pages are said not to be verified.
    let packet = &body["packet"];
    let count = |status: &str| {
        packet["controls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == status)
            .count()
    };
    assert!(out.contains("organization: hostile ("), "{out}");
    assert!(
        out.contains(&format!(
            "period: {} to {}",
            packet["period_start"].as_str().unwrap(),
            packet["period_end"].as_str().unwrap()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "controls: {} attested, {} exception, {} not_applicable, {} inconclusive",
            count("attested"),
            count("exception"),
            count("not_applicable"),
            count("inconclusive")
        )),
        "{out}"
    );
    assert!(out.contains("not its pages"), "{out}");
    let text = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for c in body["packet"]["controls"].as_array().unwrap() {
        let cid = c["control_id"].as_str().unwrap();
        assert!(flat.contains(cid), "control {cid} is not on the pages");
    }
    let sig = &body["signature"];
    for field in ["algorithm", "key_id", "value", "canonical_sha256"] {
        let v = sig[field].as_str().unwrap();
        assert!(
            flat.contains(v),
            "signature {field} `{v}` is not on the cover"
        );
    }
    assert!(flat.contains(&id));
    // What the packet was computed from, and where its records are.
    let inputs = &packet["inputs"];
    for v in [
        inputs["records_sha256"].as_str().unwrap().to_owned(),
        inputs["framework"]["sha256"].as_str().unwrap().to_owned(),
        format!(
            "soc2 version {}",
            inputs["framework"]["version"].as_str().unwrap()
        ),
        format!(
            "vouch-engine {}",
            inputs["engine"]["version"].as_str().unwrap()
        ),
        "vouch reproduce this.pdf --records records.json".to_owned(),
    ] {
        assert!(flat.contains(&v), "`{v}` is not on the cover");
    }
    // A URL may wrap at a slash or a hyphen.
    let joined: String = text.split_whitespace().collect();
    let records_url = format!("/organizations/hostile/compliance-reports/{id}/records");
    assert!(
        joined.contains(&records_url),
        "{records_url} is not on the cover"
    );
    let first_page = text.split('\u{c}').next().unwrap();
    assert!(
        first_page.contains("How to verify") && first_page.contains("records.json"),
        "the cover does not hold its verification note: {first_page}"
    );
    assert!(
        flat.contains(HOSTILE_ORG),
        "the organization name is not printed literally"
    );
    assert!(
        flat.contains(HOSTILE_SERVICE),
        "the service id is not printed literally"
    );

    let dir = store.path().join("attachments");
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new("pdfdetach")
        .arg("-saveall")
        .arg("-o")
        .arg(&dir)
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let attached = std::fs::read(dir.join("packet.json")).unwrap();
    assert_eq!(
        attached,
        packet_bytes(&made.body),
        "the attachment is the signed bytes"
    );
}

/// Whether this request got the background rendition or one rendered for it
/// depends on timing here; `tests/service.rs` makes each happen on purpose
/// (`the_pdf_is_rendered_in_the_background_or_on_demand`).
fn a_pdf_requested_right_after_generation_is_served() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    assert_eq!(
        s.send(
            "PUT",
            "/organizations/acme/compliance-subscriptions/dora",
            Auth::Basic("bob", "demo"),
            b""
        )
        .status,
        200
    );
    let made = s.send(
        "POST",
        "/organizations/acme/compliance-reports",
        Auth::Basic("carol", "demo"),
        br#"{"framework":"dora"}"#,
    );
    let id = made.json()["report_id"].as_str().unwrap().to_owned();
    let pdf = s.get(
        &format!("/organizations/acme/compliance-reports/{id}/pdf"),
        Auth::Basic("carol", "demo"),
    );
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF-"));
    assert!(
        matches!(pdf.header("x-vouch-pdf"), Some("stored" | "rendered")),
        "{:?}",
        pdf.header("x-vouch-pdf")
    );
    let list = s
        .get(
            "/organizations/acme/compliance-reports",
            Auth::Basic("carol", "demo"),
        )
        .json();
    assert_eq!(list["reports"][0]["pdf_available"], true);
    let r = s.get(
        "/organizations/acme/compliance-reports/r-none/pdf",
        Auth::Basic("carol", "demo"),
    );
    assert_eq!(r.status, 404);
}

fn a_broken_template_stops_the_server_at_start_with_its_line() {
    let store = Store::new(Backend::Sqlite);
    let dir = store.path().join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("packet.typ.j2"), "ok\nok\n{{ unclosed \n").unwrap();
    let o = store
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("VOUCH_TEMPLATES_DIR", &dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("packet.typ.j2:3:"), "{err}");
}

/// Runs one query on the store's PostgreSQL database: its first row's
/// integer columns.
fn pg_counts(store: &Store, sql: &str) -> Vec<i64> {
    let url = store.database_url.clone().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let row = sqlx::query(sql).fetch_one(&mut c).await.unwrap();
        (0..row.len()).map(|i| row.get::<i64, _>(i)).collect()
    })
}

/// (complete reports, PDFs stored, jobs queued or running, jobs failed,
/// jobs taken more than once)
const QUEUE: &str = "SELECT (SELECT COUNT(*) FROM reports WHERE status = 'complete'), \
    (SELECT COUNT(*) FROM report_pdfs), \
    (SELECT COUNT(*) FROM render_jobs WHERE state IN ('queued', 'running')), \
    (SELECT COUNT(*) FROM render_jobs WHERE state = 'failed'), \
    (SELECT COUNT(*) FROM render_jobs WHERE attempts > 1)";

/// Waits (at most 120 s) until no render job is queued or running.
fn drained(store: &Store) -> Vec<i64> {
    for _ in 0..600 {
        let c = pg_counts(store, QUEUE);
        if c[2] == 0 {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!(
        "the render queue did not drain: {:?}",
        pg_counts(store, QUEUE)
    );
}

/// PDF renderings a server ran, from its metrics.
fn renders(s: &Server) -> u64 {
    let text = s.get("/metrics", Auth::Bearer(ADMIN_TOKEN)).text();
    text.lines()
        .filter(|l| l.starts_with("vouch_pdf_renders_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// `n` SOC 2 packets generated on the server at `base`.
fn generate_on(base: &str, n: usize) {
    for _ in 0..n {
        generate_at(base);
    }
}

/// Two servers on one PostgreSQL database share the render queue: every
/// packet's PDF is rendered once, by one of them. A server killed with -9
/// while it holds jobs loses none: another server takes them when their
/// lease runs out.
fn two_servers_share_the_render_queue_and_a_killed_one_loses_no_job() {
    let store = Store::new(Backend::Postgres);
    let lease = || vec![("VOUCH_RENDER_LEASE", "2s".to_owned())];
    let a = Server::start_with(
        &store,
        Options {
            env: lease(),
            ..Options::default()
        },
    );
    let key = store
        .path()
        .join("dev-signing-key.pem")
        .display()
        .to_string();
    let shared = store.sharing();
    let mut env = lease();
    env.push(("VOUCH_SIGNING_KEY_FILE", key.clone()));
    let b = Server::start_with(
        &shared,
        Options {
            env,
            ..Options::default()
        },
    );
    let r = a.send(
        "PUT",
        "/organizations/acme/compliance-subscriptions/soc2",
        Auth::Basic("alice", "demo"),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (a_url, b_url) = (a.url(""), b.url(""));
    std::thread::scope(|s| {
        s.spawn(|| generate_on(&a_url, 12));
        s.spawn(|| generate_on(&b_url, 12));
    });
    let c = drained(&store);
    assert_eq!(
        c,
        vec![24, 24, 0, 0, 0],
        "(reports, PDFs, left, failed, retaken)"
    );
    assert_eq!(renders(&a) + renders(&b), 24, "each PDF rendered once");
    // B alone renders, then dies mid-queue.
    drop(a);
    generate_on(&b_url, 8);
    let mut b = b;
    b.child.kill().unwrap();
    let _ = b.child.wait();
    let left = pg_counts(&store, QUEUE);
    assert!(
        left[2] > 0,
        "the kill came after the queue drained: {left:?}"
    );
    let later = store.sharing();
    let mut env = lease();
    env.push(("VOUCH_SIGNING_KEY_FILE", key));
    let c_server = Server::start_with(
        &later,
        Options {
            env,
            ..Options::default()
        },
    );
    let c = drained(&store);
    assert_eq!(
        (c[0], c[1], c[2], c[3]),
        (32, 32, 0, 0),
        "every packet has its PDF: {c:?}"
    );
    drop(c_server);
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    run(&[
        case!(the_pdf_carries_the_signed_evidence)
            .on_backends()
            .needs(&[Tool::Poppler]),
        case!(a_pdf_requested_right_after_generation_is_served),
        case!(a_broken_template_stops_the_server_at_start_with_its_line),
        case!(two_servers_share_the_render_queue_and_a_killed_one_loses_no_job)
            .needs(&[Tool::Postgres]),
    ])
}
