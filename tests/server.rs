//! End-to-end tests of `vouch serve`: the real binary, on SQLite and (when
//! VOUCH_TEST_POSTGRES_URL is set) on a fresh PostgreSQL database each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::harness::current_backend;
use support::*;

fn org_batch(id: &str) -> Value {
    json!({
        "organizations": [{"id": id, "name": format!("Org {id}"), "billing_email": "billing@example.com"}],
        "users": [{"username": format!("{id}-owner"), "password": "pw-owner", "mfa_enabled": true}],
        "memberships": [{"organization_id": id, "username": format!("{id}-owner"), "role": "owner"}],
        "services": [{
            "service_id": format!("{id}-db"), "organization_id": id, "name": "db", "database_type": "postgresql",
            "version": "17", "status": "running", "zones": ["de-fra1", "nl-ams1"], "storage_region": "de-fra1",
            "storage_encrypted": true, "backup_encryption_enabled": true, "tls_enabled": true,
            "backup_policy": {"schedule_enabled": true, "schedule_cron": "0 2 * * *", "retention_days": 7, "storage_zone": "fi-hel1"}
        }]
    })
}

fn records(s: &Server, org: &str, user: &str, pass: &str) -> Reply {
    s.get(
        &format!("/organizations/{org}/records"),
        Auth::Basic(user, pass),
    )
}

fn health_readiness_and_metrics() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    let r = s.get("/healthz", Auth::None);
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("ok")),
        "{backend:?}"
    );
    assert!(r.header("x-request-id").is_some());
    assert_eq!(s.get("/readyz", Auth::None).status, 200);
    // Unknown paths and methods, HEAD and 405s, before the metrics are read.
    let r = s.get("/nowhere", Auth::None);
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    let r = s.get("/organizations/acme/%2e%2e/secret-path-42", Auth::None);
    assert_eq!(r.status, 404);
    let r = s.send("DELETE", "/healthz", Auth::None, b"");
    assert_eq!((r.status, r.code().as_str()), (405, "method_not_allowed"));
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = request("HEAD", &s.url("/healthz"), Auth::None, None, &[]);
    assert_eq!((r.status, r.body.len()), (200, 0));
    // An extension method (which ureq will not send) is a 405 labelled OTHER.
    let mut raw = std::net::TcpStream::connect(&s.addr).unwrap();
    std::io::Write::write_all(
        &mut raw,
        b"BREW /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut raw, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    // The metrics are the operator's: the admin token, not the public.
    assert_eq!(s.get("/metrics", Auth::None).status, 401);
    let m = s.get("/metrics", Auth::Bearer(ADMIN_TOKEN));
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        m.text()
            .contains("vouch_http_requests_total{route=\"GET /healthz\",status=\"200\"} 1"),
        "{}",
        m.text()
    );
    assert!(m
        .text()
        .contains("vouch_http_request_duration_seconds_bucket"));
    // Labels are route templates: no client-chosen path becomes a label.
    let text = m.text();
    assert!(
        text.contains("route=\"GET unmatched\",status=\"404\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("route=\"DELETE /healthz\",status=\"405\""),
        "{text}"
    );
    assert!(
        text.contains("route=\"OTHER /healthz\",status=\"405\""),
        "{text}"
    );
    assert!(
        text.contains("route=\"HEAD /healthz\",status=\"200\""),
        "{text}"
    );
    assert!(
        !text.contains("nowhere") && !text.contains("secret-path-42"),
        "{text}"
    );
}

fn authentication_and_organization_boundaries() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    let r = records(&s, "acme", "alice", "demo");
    assert_eq!(r.status, 200, "{backend:?}: {}", r.text());
    assert_eq!(r.json()["organization"]["name"], "Acme Engineering");
    for (user, pass) in [("alice", "wrong"), ("nobody", "demo"), ("", "demo")] {
        let r = records(&s, "acme", user, pass);
        assert_eq!(r.status, 401, "{user}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"vouch\", charset=\"UTF-8\"")
        );
        assert_eq!(r.code(), "unauthorized");
    }
    let r = s.get("/organizations/acme/records", Auth::None);
    assert_eq!(r.status, 401);
    // Another organization's member, and an organization that does not exist: the same 404.
    let other = records(&s, "acme", "dave", "demo");
    let missing = records(&s, "initech", "dave", "demo");
    assert_eq!((other.status, missing.status), (404, 404));
    assert_eq!(other.body, missing.body);
    // The demo's non-EU service is derived from the zone catalogue.
    let g = records(&s, "globex", "dave", "demo").json();
    assert_eq!(g["services"][0]["eu_residency"], false);
    assert_eq!(g["services"][0]["region"], "north-america");
    // Secrets never reach the log.
    let log = s.drain_log().join("\n");
    assert!(
        !log.contains("demo\"") && !log.contains(ADMIN_TOKEN),
        "a secret in the log"
    );
}

fn admin_api_applies_batches_and_refuses_bad_ones_whole() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    let r = s.admin(&org_batch("initech"));
    assert_eq!(r.status, 200, "{backend:?}: {}", r.text());
    assert_eq!(r.json()["applied"]["services"], 1);
    let doc = records(&s, "initech", "initech-owner", "pw-owner").json();
    assert_eq!(doc["services"][0]["eu_residency"], true);
    assert_eq!(doc["services"][0]["backups"]["segregated"], true);

    // Each bad batch: 400 with the path of the bad value, and nothing stored,
    // not even its valid organization.
    let mut cases: Vec<(Value, &str)> = vec![];
    let mut b = org_batch("bad1");
    b["services"][0]["backup_policy"]["retention_days"] = json!(7.5);
    cases.push((
        b,
        "$.services[0].backup_policy.retention_days: floating-point number",
    ));
    let mut b = org_batch("bad2");
    b["services"][0]["name"] = json!("db\u{1b}[31m");
    cases.push((b, "$.services[0].name: control character U+001B"));
    let mut b = org_batch("bad3");
    b["services"][0]["colour"] = json!("red");
    cases.push((b, "$.services[0].colour: unknown field `colour`"));
    let mut b = org_batch("bad4");
    b["services"][0]["zones"] = json!(["de-fra1", "mars-1"]);
    cases.push((b, "$.services[0].zones[1]: unknown zone `mars-1`"));
    let mut b = org_batch("bad5");
    b["memberships"][0]["role"] = json!("superuser");
    cases.push((b, "$.memberships[0].role: `superuser` is not a role"));
    let mut b = org_batch("bad6");
    b["services"][0]["eu_residency"] = json!(true);
    cases.push((b, "unknown field `eu_residency`"));
    let mut b = org_batch("bad7");
    b["memberships"][0]["username"] = json!("ghost");
    cases.push((b, "$.memberships[0].username: unknown user `ghost`"));
    let mut b = org_batch("bad8");
    let first = b["services"][0].clone();
    b["services"].as_array_mut().unwrap().push(first);
    cases.push((b, "$.services[1]: `bad8-db` appears twice"));
    let mut b = org_batch("bad9");
    b["services"][0]["organization_id"] = json!("initech");
    b["services"][0]["service_id"] = json!("initech-db");
    b["services"][0]["organization_id"] = json!("bad9");
    cases.push((b, "belongs to organization `initech`"));
    for (batch, expected) in cases {
        let id = batch["organizations"][0]["id"].as_str().unwrap().to_owned();
        let r = s.admin(&batch);
        assert_eq!(r.status, 400, "{id}: {}", r.text());
        assert_eq!(r.code(), "invalid_records");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(expected), "{id}: `{msg}` lacks `{expected}`");
        let owner = format!("{id}-owner");
        assert_eq!(
            records(&s, &id, &owner, "pw-owner").status,
            401,
            "{id}: the user of a refused batch exists"
        );
    }
    for (body, status, code) in [
        (&b"{\"organizations\": ["[..], 400, "invalid_records"),
        (b"[]", 400, "invalid_records"),
        (b"not json", 400, "invalid_records"),
    ] {
        let r = s.send("POST", "/admin/v1/records", Auth::Bearer(ADMIN_TOKEN), body);
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{}",
            r.text()
        );
    }
    let huge = vec![b' '; 9 * 1024 * 1024];
    let r = s.send(
        "POST",
        "/admin/v1/records",
        Auth::Bearer(ADMIN_TOKEN),
        &huge,
    );
    assert_eq!((r.status, r.code().as_str()), (413, "too_large"));
    // The token is required and compared exactly.
    let r = s.send("POST", "/admin/v1/records", Auth::Bearer("wrong"), b"{}");
    assert_eq!((r.status, r.code().as_str()), (401, "admin_unauthorized"));
    let r = s.send(
        "POST",
        "/admin/v1/records",
        Auth::Basic("alice", "demo"),
        b"{}",
    );
    assert_eq!(r.status, 401);
}

fn admin_api_is_off_without_a_token() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start_with(
        &store,
        Options {
            demo: false,
            admin: false,
            env: vec![],
        },
    );
    let r = s.send("POST", "/admin/v1/records", Auth::Bearer("anything"), b"{}");
    assert_eq!((r.status, r.code().as_str()), (503, "admin_disabled"));
    // Without --demo there are no demo users.
    assert_eq!(records(&s, "acme", "alice", "demo").status, 401);
}

fn vouch_itself_appears_in_the_audit_log() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let before = records(&s, "acme", "alice", "demo").json()["audit_log"]["entry_count"]
        .as_u64()
        .unwrap();
    let after = records(&s, "acme", "carol", "demo").json()["audit_log"]["entry_count"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1, "the first read is itself an audit entry");
}

fn restart_keeps_everything_and_sigterm_stops_cleanly() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = Server::start(&store);
    let mut batch = org_batch("initech");
    batch["service_changes"] = json!([created_change("initech")]);
    assert_eq!(s.admin(&batch).status, 200);
    // A past period: its records do not move with the clock.
    let february = |s: &Server| {
        s.get(
            &format!("/organizations/initech/records?{FEBRUARY}"),
            Auth::Basic("initech-owner", "pw-owner"),
        )
        .json()
    };
    let before = february(&s);
    assert_eq!(
        before["services"][0]["history"].as_array().map(Vec::len),
        Some(1)
    );
    let count = |s: &Server| {
        records(s, "initech", "initech-owner", "pw-owner").json()["audit_log"]["entry_count"]
            .as_u64()
            .unwrap()
    };
    let entries = count(&s);
    let status = s.stop();
    assert!(status.success(), "{backend:?}: SIGTERM exit {status:?}");
    let s = Server::start_with(
        &store,
        Options {
            demo: false,
            ..Options::default()
        },
    );
    let after = february(&s);
    assert_eq!(before["services"], after["services"]);
    assert_eq!(before["members"], after["members"]);
    // Two reads since: the count's own, and February's.
    assert_eq!(count(&s), entries + 2);
}

/// The data directory holds the database with every user's password hash: no
/// one else on the machine may read it, whatever the umask.
fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let batch = format!(
        "{}/../examples/import/initech.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::process::Command::new(bin())
        .args(["import", &batch, "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the data directory");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    assert!(files >= 1, "the database was created");
}

fn vouch_import_applies_a_file_or_nothing() {
    let backend = current_backend();
    let store = Store::new(backend);
    let good = store.path().join("good.json");
    std::fs::write(&good, serde_json::to_vec(&org_batch("initech")).unwrap()).unwrap();
    let o = store
        .command(&["import", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"services\":1"));

    let mut bad = org_batch("umbrella");
    bad["services"][0]["zones"] = json!(["nowhere-1"]);
    let bad_file = store.path().join("bad.json");
    std::fs::write(&bad_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let o = store
        .command(&["import", bad_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nothing was imported") && err.contains("unknown zone `nowhere-1`"),
        "{err}"
    );
    let truncated = store.path().join("truncated.json");
    let text = serde_json::to_vec(&org_batch("umbrella")).unwrap();
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let o = store
        .command(&["import", truncated.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));

    let s = Server::start_with(
        &store,
        Options {
            demo: false,
            ..Options::default()
        },
    );
    assert_eq!(
        records(&s, "initech", "initech-owner", "pw-owner").status,
        200
    );
    assert_eq!(
        records(&s, "umbrella", "umbrella-owner", "pw-owner").status,
        401,
        "nothing of the bad batch"
    );
}

/// A batch large enough that `vouch import` is still writing when it is killed.
/// How many configuration changes [`big_batch`] carries: one an hour from
/// February 1st 2026, alternately turning TLS off and on.
const BIG_HISTORY: usize = 500;
const FEBRUARY: &str = "period_start=2026-02-01T00:00:00Z&period_end=2026-03-01T00:00:00Z";

fn big_batch(org: &str, events: usize) -> Value {
    let mut b = org_batch(org);
    let list: Vec<Value> = (0..events)
        .map(|i| json!({"event_id": format!("{org}-{i}"), "organization_id": org, "at": "2026-01-01T00:00:00Z", "actor": "x", "action": "login", "target": org}))
        .collect();
    b["audit_events"] = json!(list);
    let changes: Vec<Value> = (0..BIG_HISTORY)
        .map(|i| {
            let at = vouch_engine::Timestamp::from_unix_seconds(FEB1 + 3600 * i as i64 + 1800).unwrap();
            json!({"change_id": format!("{org}-change-{i}"), "service_id": format!("{org}-db"), "at": at,
                   "event": "updated", "set": {"tls_enabled": i % 2 == 1}})
        })
        .collect();
    let mut all = vec![created_change(org)];
    all.extend(changes);
    b["service_changes"] = json!(all);
    b
}

/// The creation of `{org}-db`, with the configuration of [`org_batch`], on
/// January 1st 2026.
fn created_change(org: &str) -> Value {
    json!({"change_id": format!("{org}-db-created"), "service_id": format!("{org}-db"), "at": "2026-01-01T00:00:00Z",
           "event": "created", "set": {"zones": ["de-fra1", "nl-ams1"], "storage_region": "de-fra1",
           "storage_encrypted": true, "backup_encryption_enabled": true, "tls_enabled": true,
           "backup_schedule_enabled": true, "backup_schedule_cron": "0 2 * * *", "backup_retention_days": 7,
           "backup_storage_zone": "fi-hel1"}})
}

/// The intervals of `{org}-db`'s February history, as the server reports them.
fn february_history(s: &Server, org: &str) -> Vec<Value> {
    let r = s.get(
        &format!("/organizations/{org}/records?{FEBRUARY}"),
        Auth::Basic(&format!("{org}-owner"), "pw-owner"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["services"][0]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Imports `file` into a fresh store, killing `vouch import` with SIGKILL after
/// `kill_after` (or letting it finish); returns (finished, audit entries
/// stored, how long the import ran).
/// Imports `file` into a fresh store; with `kill_in_transaction`, sends
/// SIGKILL as soon as the import says its transaction is open. Returns whether
/// the import finished, whether it said it committed, and the entries stored.
fn import_killed(
    backend: Backend,
    file: &std::path::Path,
    kill_in_transaction: bool,
) -> (bool, bool, u64, usize) {
    use std::io::BufRead;
    let store = Store::new(backend);
    let mut child = store
        .command(&["import", file.to_str().unwrap()])
        .env("VOUCH_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut opened = false;
    let mut committed = false;
    for line in std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
    {
        if line.contains("import transaction open") {
            opened = true;
            if kill_in_transaction {
                let _ = child.kill(); // SIGKILL on Unix
                break;
            }
        }
        committed |= line.contains("import committed");
    }
    assert!(opened, "the import never opened its transaction");
    let finished = child.wait().unwrap().success();
    let s = Server::start_with(
        &store,
        Options {
            demo: false,
            ..Options::default()
        },
    );
    let r = records(&s, "initech", "initech-owner", "pw-owner");
    let (count, history) = if r.status == 200 {
        (
            r.json()["audit_log"]["entry_count"].as_u64().unwrap(),
            february_history(&s, "initech").len(),
        )
    } else {
        (0, 0)
    };
    (finished, committed, count, history)
}

fn kill_9_during_an_import_leaves_all_or_nothing() {
    let backend = current_backend();
    let n = 20_000u64;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&big_batch("initech", n as usize)).unwrap(),
    )
    .unwrap();
    // Uninterrupted: the imported events and vouch's own entry for the
    // import (the read is recorded after the snapshot it answers with).
    let (finished, committed, count, history) = import_killed(backend, &file, false);
    assert!(finished && committed);
    assert_eq!(count, n + 1, "{backend:?}");
    // The history is whole: the creation's configuration until the first
    // change, then one interval for every change of February.
    assert_eq!(history, BIG_HISTORY + 1, "{backend:?}");
    // Killed inside the transaction (after it opened, before it
    // committed): nothing of the batch is stored, not even the
    // organization the batch creates.
    let (finished, committed, count, history) = import_killed(backend, &file, true);
    assert!(
        !finished,
        "{backend:?}: the kill landed after the import ended"
    );
    assert!(!committed, "{backend:?}: the kill landed after the commit");
    assert_eq!(
        (count, history),
        (0, 0),
        "{backend:?}: a partial batch survived the kill"
    );
}

fn two_servers_on_one_postgres_lose_and_duplicate_nothing() {
    let store = Store::new(Backend::Postgres);
    let a = Server::start(&store);
    let shared = store.sharing();
    let b = Server::start(&shared);
    let (a_url, b_url) = (a.url(""), b.url(""));
    let mut batch = org_batch("initech");
    batch["service_changes"] = json!([created_change("initech")]);
    assert_eq!(a.admin(&batch).status, 200);
    let base = records(&a, "initech", "initech-owner", "pw-owner").json()["audit_log"]
        ["entry_count"]
        .as_u64()
        .unwrap();
    let per_thread: i64 = 25;
    std::thread::scope(|scope| {
        for (t, base_url) in [&a_url, &b_url, &a_url, &b_url].into_iter().enumerate() {
            scope.spawn(move || {
                for i in 0..per_thread {
                    // An admin batch of two new audit events and one change
                    // of the same service's history, whose state the server
                    // folds while the other server folds its own ...
                    let k = i * 4 + t as i64;
                    let at = vouch_engine::Timestamp::from_unix_seconds(FEB1 + 3600 * k).unwrap();
                    let set = if k % 2 == 0 { json!({"backup_retention_days": k + 1}) } else { json!({"tls_enabled": k % 4 == 1}) };
                    let batch = json!({"audit_events": [
                        {"event_id": format!("t{t}-{i}-a"), "organization_id": "initech", "at": "2026-01-01T00:00:00Z", "actor": "x", "action": "a", "target": "t"},
                        {"event_id": format!("t{t}-{i}-b"), "organization_id": "initech", "at": "2026-01-01T00:00:00Z", "actor": "x", "action": "b", "target": "t"}
                    ], "service_changes": [
                        {"change_id": format!("c{k}"), "service_id": "initech-db", "at": at, "event": "updated", "set": set}
                    ]});
                    let r = request("POST", &format!("{base_url}/admin/v1/records"), Auth::Bearer(ADMIN_TOKEN), Some(&serde_json::to_vec(&batch).unwrap()), &[("content-type", "application/json")]);
                    assert_eq!(r.status, 200, "{}", r.text());
                    // ... and a user read, which vouch records too.
                    let r = request("GET", &format!("{base_url}/organizations/initech/records"), Auth::Basic("initech-owner", "pw-owner"), None, &[]);
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
    });
    let last = records(&b, "initech", "initech-owner", "pw-owner").json()["audit_log"]
        ["entry_count"]
        .as_u64()
        .unwrap();
    // Each iteration: 2 imported events + 1 import entry + 1 read entry; plus the final read.
    let expected = base + 1 + 4 * per_thread as u64 * 4;
    assert_eq!(last, expected);
    // One history, folded in time order whichever server took which change:
    // after change k, the retention is that of the last even change and TLS
    // that of the last odd one. The first interval is the creation's.
    let history = february_history(&b, "initech");
    let changes = 4 * per_thread;
    assert_eq!(history.len() as i64, changes, "{history:#?}");
    for k in 1..changes {
        let iv = &history[k as usize];
        let at = vouch_engine::Timestamp::from_unix_seconds(FEB1 + 3600 * k).unwrap();
        assert_eq!(iv["from"], json!(at));
        let even = k - k % 2;
        assert_eq!(
            iv["backups"]["retention_days"],
            json!(even + 1),
            "after change {k}"
        );
        let tls = (k - (k + 1) % 2) % 4 == 1;
        assert_eq!(iv["tls_enabled"], json!(tls), "after change {k}");
    }
}

/// 2026-02-01T00:00:00Z.
const FEB1: i64 = 1_769_904_000;

fn sigterm_lets_the_request_in_flight_finish() {
    use std::io::{Read, Write};
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let n = 2_000usize;
    let batch = serde_json::to_vec(&big_batch("initech", n)).unwrap();
    // Headers and half the body, then SIGTERM, then the rest: the request is
    // in flight when the signal lands, whatever the machine's speed.
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    let head = format!(
        "POST /admin/v1/records HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.addr,
        batch.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    let (first, rest) = batch.split_at(batch.len() / 2);
    conn.write_all(first).unwrap();
    wait_until_server_read(&conn);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s.drain_log().iter().any(|l| l.contains("shutting down")) {
        assert!(std::time::Instant::now() < deadline, "no shutdown logged");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    conn.write_all(rest).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request in flight was cut: {answer}"
    );
    let status = s.stop();
    assert!(status.success(), "{status:?}");
    let s = Server::start_with(
        &store,
        Options {
            demo: false,
            ..Options::default()
        },
    );
    let doc = records(&s, "initech", "initech-owner", "pw-owner").json();
    assert_eq!(
        doc["audit_log"]["entry_count"].as_u64().unwrap(),
        n as u64 + 1,
        "the whole batch is stored"
    );
}

fn a_stalled_request_cannot_hold_the_server_past_its_shutdown_deadline() {
    use std::io::Write;
    let store = Store::new(Backend::Sqlite);
    let mut s = Server::start_with(
        &store,
        Options {
            env: vec![("VOUCH_SHUTDOWN_DEADLINE", "2s".into())],
            ..Options::default()
        },
    );
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    let head = format!(
        "POST /admin/v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"users\": ["
    );
    conn.write_all(head.as_bytes()).unwrap();
    // The request is in the server's hands, stalled, when the signal lands.
    wait_until_server_read(&conn);
    let signalled = std::time::Instant::now();
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status();
    let status = s.child.wait().unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < std::time::Duration::from_secs(8),
        "the stalled request held the server {took:?} after SIGTERM"
    );
    drop(conn);
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    run(&[
        case!(health_readiness_and_metrics).on_backends(),
        case!(authentication_and_organization_boundaries).on_backends(),
        case!(admin_api_applies_batches_and_refuses_bad_ones_whole).on_backends(),
        case!(admin_api_is_off_without_a_token),
        case!(vouch_itself_appears_in_the_audit_log),
        case!(restart_keeps_everything_and_sigterm_stops_cleanly).on_backends(),
        case!(vouch_import_applies_a_file_or_nothing).on_backends(),
        case!(the_data_directory_and_database_are_private),
        case!(kill_9_during_an_import_leaves_all_or_nothing).on_backends(),
        case!(two_servers_on_one_postgres_lose_and_duplicate_nothing).needs(&[Tool::Postgres]),
        case!(sigterm_lets_the_request_in_flight_finish),
        case!(a_stalled_request_cannot_hold_the_server_past_its_shutdown_deadline),
    ])
}
