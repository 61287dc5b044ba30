//! The transparency log end to end: inclusion proofs for every packet, the
//! monitor (`vouch log verify`) against a rewritten, a dropped and a forked
//! log, a key revoked with a compromise time, two servers appending to one
//! PostgreSQL log, an outside recomputation in Python, and hostile queries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::harness::current_backend;
use support::*;

/// Runs `vouch ARGS`; (exit code, stdout and stderr).
fn vouch(args: &[&str]) -> (i32, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn subscribe(s: &Server) {
    let r = s.send(
        "PUT",
        "/organizations/acme/compliance-subscriptions/soc2",
        Auth::Basic("alice", "demo"),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Generates a packet as carol and writes it to `dir`; (report id, file).
fn generate(s: &Server, dir: &Path) -> (String, PathBuf) {
    let r = s.send(
        "POST",
        "/organizations/acme/compliance-reports",
        Auth::Basic("carol", "demo"),
        br#"{"framework":"soc2"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["report_id"].as_str().unwrap().to_owned();
    let file = dir.join(format!("{id}.json"));
    std::fs::write(&file, &r.body).unwrap();
    (id, file)
}

/// The inclusion proof of `report`, written beside its packet.
fn inclusion(s: &Server, report: &str, dir: &Path) -> PathBuf {
    let r = s.get(
        &format!("/organizations/acme/compliance-reports/{report}/inclusion"),
        Auth::Basic("carol", "demo"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let file = dir.join(format!("{report}.inclusion.json"));
    std::fs::write(&file, &r.body).unwrap();
    file
}

fn keys_url(s: &Server) -> String {
    s.url("/.well-known/compliance-signing-keys")
}

fn verify_logged(s: &Server, packet: &Path, proof: &Path) -> (i32, String) {
    vouch(&[
        "verify",
        packet.to_str().unwrap(),
        "--keys",
        &keys_url(s),
        "--log",
        proof.to_str().unwrap(),
    ])
}

fn monitor(s: &Server, state: &Path) -> (i32, String) {
    monitor_at(&s.url(""), state)
}

fn monitor_at(base: &str, state: &Path) -> (i32, String) {
    vouch(&[
        "log",
        "verify",
        "--url",
        base,
        "--state",
        state.to_str().unwrap(),
    ])
}

fn checkpoint_size(base: &str) -> u64 {
    let r = request(
        "GET",
        &format!("{base}/.well-known/vouch-log/checkpoint"),
        Auth::None,
        None,
        &[],
    );
    assert_eq!(r.status, 200);
    r.text().lines().nth(1).unwrap().parse().unwrap()
}

/// Every packet of a run has an inclusion proof that `vouch verify --log`
/// accepts; a proof is refused for another packet; the monitor follows the
/// log from one checkpoint to a later one through a consistency proof.
fn every_packet_of_a_run_is_included_and_the_log_only_grows() {
    let store = Store::new(current_backend());
    let s = Server::start(&store);
    let dir = tempfile::tempdir().unwrap();
    subscribe(&s);
    let state = dir.path().join("monitor.json");
    let mut packets = vec![];
    for i in 0..12 {
        packets.push(generate(&s, dir.path()));
        if i == 3 {
            let (code, out) = monitor(&s, &state);
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("every entry checked"), "{out}");
        }
    }
    for (id, file) in &packets {
        let proof = inclusion(&s, id, dir.path());
        let (code, out) = verify_logged(&s, file, &proof);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("logged: entry"), "{out}");
    }
    // A proof names its packet: another packet's proof is refused.
    let other = inclusion(&s, &packets[0].0, dir.path());
    let (code, out) = verify_logged(&s, &packets[1].1, &other);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not this packet's"), "{out}");
    let (code, out) = monitor(&s, &state);
    assert_eq!(code, 0, "{out}");
    // One key event (the demo key's registration) and twelve packets.
    assert!(
        out.contains("13 entries")
            && out.contains("consistent with the 5 entries seen before; 8 new"),
        "{out}"
    );
    let r = s.get(
        "/.well-known/vouch-log/consistency?first=5&second=13",
        Auth::None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

/// An outside check: RFC 6962 hashes, the inclusion proof and the
/// checkpoint's Ed25519 signature recomputed in Python from the published
/// log key, sharing no code with vouch.
fn python_recomputes_the_tree_the_proof_and_the_signature() {
    let store = Store::new(support::Backend::Sqlite);
    let s = Server::start(&store);
    let dir = tempfile::tempdir().unwrap();
    subscribe(&s);
    let mut last = None;
    for _ in 0..7 {
        last = Some(generate(&s, dir.path()));
    }
    let (id, _) = last.unwrap();
    let proof = inclusion(&s, &id, dir.path());
    let (ok, out) = run_python(
        "tests/tlog_check.py",
        &[&s.url(""), proof.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("ok root recomputed from 8 entries")
            && out.contains("ok inclusion of leaf 7 in 8"),
        "{out}"
    );
}

fn tamper(store: &Store, mode: &str, index: u64) {
    let db = store.path().join("vouch.db");
    let (ok, out) = run_python(
        "tests/tlog_tamper.py",
        &[db.to_str().unwrap(), mode, &index.to_string()],
    );
    assert!(ok, "{out}");
}

/// The monitor names what happened to a log an operator changed: an entry
/// rewritten in place (a fresh monitor rebuilds the root and finds it wrong),
/// rewritten with the tree rebuilt around it, or dropped (a monitor with
/// state finds the new tree does not extend the one it saw, or is smaller).
/// A failing run leaves the state as it was.
fn the_monitor_detects_a_rewritten_or_dropped_entry() {
    let store = Store::new(support::Backend::Sqlite);
    let s = Server::start(&store);
    let dir = tempfile::tempdir().unwrap();
    subscribe(&s);
    let mut packets = vec![];
    for _ in 0..6 {
        packets.push(generate(&s, dir.path()));
    }
    let state = dir.path().join("state.json");
    let (code, out) = monitor(&s, &state);
    assert_eq!(code, 0, "{out}");
    let saw = std::fs::read(&state).unwrap();

    // Entry 3 (a packet) rewritten, the tree left alone.
    tamper(&store, "rewrite-entry", 3);
    let fresh = dir.path().join("fresh.json");
    let (code, out) = monitor(&s, &fresh);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("do not hash to its checkpoint's root"),
        "{out}"
    );
    assert!(!fresh.exists(), "a failed run writes no state");
    let proof = inclusion(&s, &packets[2].0, dir.path());
    let (code, out) = verify_logged(&s, &packets[2].1, &proof);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not hash to the leaf hash"), "{out}");

    // The same rewrite with every hash rebuilt: self-consistent, so only a
    // monitor that remembers the earlier checkpoint can tell.
    tamper(&store, "rewrite", 3);
    let (code, out) = monitor(&s, &dir.path().join("fresh2.json"));
    assert_eq!(code, 0, "a rebuilt log is consistent in itself: {out}");
    let (code, out) = monitor(&s, &state);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the log forked"), "{out}");
    assert_eq!(std::fs::read(&state).unwrap(), saw, "the state is kept");

    // Entry 4 dropped: the log is smaller than what the monitor saw...
    tamper(&store, "drop", 4);
    let (code, out) = monitor(&s, &state);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the log shrank: it had 7 entries, its checkpoint now says 6"),
        "{out}"
    );
    // ... and once new packets make it larger again, it is a fork.
    generate(&s, dir.path());
    generate(&s, dir.path());
    let (code, out) = monitor(&s, &state);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the log forked"), "{out}");
}

/// Two logs under one key and origin (a server restored from another
/// history): a monitor that followed one refuses the other.
fn the_monitor_detects_a_forked_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("log-key.pem");
    let (code, out) = vouch(&[
        "keys",
        "generate",
        "--out",
        key.to_str().unwrap(),
        "--key-id",
        "log",
    ]);
    assert_eq!(code, 0, "{out}");
    let env = || {
        vec![
            ("VOUCH_LOG_KEY_FILE", key.display().to_string()),
            ("VOUCH_LOG_ORIGIN", "vouch.test/log".to_owned()),
        ]
    };
    let (one, two) = (
        Store::new(support::Backend::Sqlite),
        Store::new(support::Backend::Sqlite),
    );
    let a = Server::start_with(
        &one,
        Options {
            env: env(),
            ..Options::default()
        },
    );
    let b = Server::start_with(
        &two,
        Options {
            env: env(),
            ..Options::default()
        },
    );
    subscribe(&a);
    subscribe(&b);
    for _ in 0..3 {
        generate(&a, dir.path());
        generate(&b, dir.path());
    }
    generate(&b, dir.path());
    let state = dir.path().join("state.json");
    let (code, out) = monitor(&a, &state);
    assert_eq!(code, 0, "{out}");
    let (code, out) = monitor(&b, &state);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the log forked: its tree of 5 entries does not extend the tree of 4"),
        "{out}"
    );
    // The same key was named in both keys documents: the checkpoints verify,
    // the history does not.
    let (code, out) = vouch(&["log", "verify", "--url", &b.url("")]);
    assert_eq!(code, 0, "{out}");
}

/// `vouch keys revoke --compromised-at T`: packets the log held before T stay
/// valid (with their inclusion proof), later ones fail, and without a proof
/// the verifier says why it cannot tell. The revocation is itself logged.
fn a_key_revoked_with_a_cutoff_keeps_earlier_packets_only() {
    let store = Store::new(current_backend());
    let s = Server::start(&store);
    let dir = tempfile::tempdir().unwrap();
    subscribe(&s);
    let (before, before_file) = generate(&s, dir.path());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cutoff = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (after, after_file) = generate(&s, dir.path());
    // Revoked a second later: `after` was generated while the key was still
    // in service, but logged after the compromise.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let key_id = {
        let v: Value = serde_json::from_slice(&std::fs::read(&before_file).unwrap()).unwrap();
        v["signature"]["key_id"].as_str().unwrap().to_owned()
    };
    let o = store
        .command(&[
            "keys",
            "revoke",
            &key_id,
            "--compromised-at",
            &cutoff,
            "--reason",
            "laptop stolen",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (p1, p2) = (
        inclusion(&s, &before, dir.path()),
        inclusion(&s, &after, dir.path()),
    );
    let (code, out) = verify_logged(&s, &before_file, &p1);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("compromised at {cutoff}; this packet stands")),
        "{out}"
    );
    let (code, out) = verify_logged(&s, &after_file, &p2);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not before: it cannot be trusted"), "{out}");
    let (code, out) = vouch(&[
        "verify",
        before_file.to_str().unwrap(),
        "--keys",
        &keys_url(&s),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("it was compromised at {cutoff}")) && out.contains("--log"),
        "{out}"
    );
    let page = s.get("/.well-known/vouch-log/entries", Auth::None).json();
    let last = page["entries"].as_array().unwrap().last().unwrap()["entry"].clone();
    assert_eq!(
        (
            last["kind"].as_str(),
            last["event"].as_str(),
            last["compromised_at"].as_str(),
            last["reason"].as_str()
        ),
        (
            Some("key"),
            Some("revoked"),
            Some(cutoff.as_str()),
            Some("laptop stolen")
        )
    );
    // A compromise in the future, a second revocation: refused or a no-op.
    let o = store
        .command(&[
            "keys",
            "revoke",
            &key_id,
            "--compromised-at",
            "2999-01-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two servers on one PostgreSQL database append concurrently: one tree,
/// its size only grows (every checkpoint a monitor sees extends the one
/// before), no index is skipped and every packet is in it exactly once.
fn two_servers_append_to_one_consistent_tree() {
    let store = Store::new(support::Backend::Postgres);
    let a = Server::start(&store);
    let key = store
        .path()
        .join("dev-signing-key.pem")
        .display()
        .to_string();
    let shared = store.sharing();
    let b = Server::start_with(
        &shared,
        Options {
            env: vec![("VOUCH_SIGNING_KEY_FILE", key)],
            ..Options::default()
        },
    );
    subscribe(&a);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let done = std::sync::atomic::AtomicBool::new(false);
    let per_server = 120;
    let (a_owned, b_owned) = (a.url(""), b.url(""));
    let (a_url, b_url) = (a_owned.as_str(), b_owned.as_str());
    let (done, state_ref) = (&done, &state);
    let (mut ids, sizes) = std::thread::scope(|sc| {
        let gen = move |base: &str| {
            (0..per_server)
                .map(|_| generate_at(base))
                .collect::<Vec<_>>()
        };
        let ta = sc.spawn(move || gen(a_url));
        let tb = sc.spawn(move || gen(b_url));
        let watcher = sc.spawn(move || {
            let mut sizes = vec![];
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let (code, out) =
                    monitor_at(if sizes.len() % 2 == 0 { a_url } else { b_url }, state_ref);
                assert_eq!(code, 0, "{out}");
                sizes.push(checkpoint_size(a_url));
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            sizes
        });
        let mut ids = ta.join().unwrap();
        ids.extend(tb.join().unwrap());
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (ids, watcher.join().unwrap())
    });
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    assert!(
        sizes.len() >= 3,
        "the monitor ran while the servers appended: {sizes:?}"
    );
    let (code, out) = monitor(&b, &state);
    assert_eq!(code, 0, "{out}");
    let fresh = dir.path().join("fresh.json");
    let (code, out) = monitor(&a, &fresh);
    assert_eq!(code, 0, "{out}");
    // Every entry, in order, without a gap; each packet once.
    let mut logged = vec![];
    let mut start = 0u64;
    loop {
        let page = a
            .get(
                &format!("/.well-known/vouch-log/entries?start={start}"),
                Auth::None,
            )
            .json();
        let entries = page["entries"].as_array().unwrap();
        if entries.is_empty() {
            break;
        }
        for e in entries {
            assert_eq!(e["leaf_index"].as_u64(), Some(start));
            start += 1;
            if e["entry"]["kind"] == "packet" {
                logged.push(e["entry"]["report_id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids.sort();
    logged.sort();
    assert_eq!(logged, ids, "every packet logged exactly once");
    assert_eq!(checkpoint_size(a_url), start);
}

/// The log's public endpoints and the inclusion endpoint refuse what is not
/// a tree size, a range beyond the log, strangers and foreign reports; the
/// monitor refuses a bad URL and a broken state file.
fn hostile_queries_get_clear_refusals() {
    let store = Store::new(support::Backend::Sqlite);
    let s = Server::start(&store);
    let dir = tempfile::tempdir().unwrap();
    subscribe(&s);
    let (id, _) = generate(&s, dir.path());
    for q in [
        "consistency?first=abc",
        "consistency?first=-1",
        "consistency?second=99999999999999999999",
        "consistency?first=%00",
        "entries?end=1e3",
    ] {
        let r = s.get(&format!("/.well-known/vouch-log/{q}"), Auth::None);
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "bad_tree_size", "{q}");
    }
    // Well-formed sizes the log does not have: there is no such proof.
    for q in ["consistency?first=2&second=1", "consistency?second=1000"] {
        let r = s.get(&format!("/.well-known/vouch-log/{q}"), Auth::None);
        assert_eq!(r.status, 404, "{q}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "no_such_tree_size", "{q}");
    }
    // A page beyond the log, or an empty range, is empty.
    for q in ["entries?start=1000", "entries?start=1&end=0"] {
        let r = s.get(&format!("/.well-known/vouch-log/{q}"), Auth::None);
        assert_eq!(
            (r.status, r.json()["entries"].as_array().map(Vec::len)),
            (200, Some(0)),
            "{q}"
        );
    }
    let path = format!("/organizations/acme/compliance-reports/{id}/inclusion");
    assert_eq!(s.get(&path, Auth::None).status, 401);
    assert_eq!(s.get(&path, Auth::Basic("dave", "demo")).status, 404);
    let foreign = format!("/organizations/globex/compliance-reports/{id}/inclusion");
    assert_eq!(s.get(&foreign, Auth::Basic("dave", "demo")).status, 404);
    let missing =
        "/organizations/acme/compliance-reports/r-00000000-0000-0000-0000-000000000000/inclusion";
    assert_eq!(s.get(missing, Auth::Basic("carol", "demo")).status, 404);

    let (code, out) = vouch(&["log", "verify", "--url", "ftp://127.0.0.1/"]);
    assert_eq!(code, 3, "{out}");
    let broken = dir.path().join("state.json");
    std::fs::write(&broken, "{not json").unwrap();
    let (code, out) = monitor(&s, &broken);
    assert_eq!(code, 3, "{out}");
    let (code, out) = vouch(&[
        "log",
        "verify",
        "--url",
        &s.url(""),
        "--log-key",
        "nope+00000000+AA==",
    ]);
    assert_eq!(code, 3, "{out}");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "[]").unwrap();
    let (code, out) = verify_logged(&s, &junk, &junk);
    assert_eq!(code, 3, "{out}");
}

/// A local time-stamping authority (tests/tsa_server.py), killed on drop.
struct LocalTsa {
    child: std::process::Child,
    port: u16,
    dir: PathBuf,
}

impl LocalTsa {
    fn start(dir: &Path) -> LocalTsa {
        use std::io::BufRead;
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new("python3")
            .arg(repo_path("tests/tsa_server.py"))
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();
        LocalTsa {
            child,
            port,
            dir: dir.to_owned(),
        }
    }
}

impl Drop for LocalTsa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vouch verify PACKET --timestamp TS --tsa-ca CA` against `s`'s keys.
fn verify_stamped(s: &Server, packet: &Path, ts: &Path, ca: &Path) -> (i32, String) {
    vouch(&[
        "verify",
        packet.to_str().unwrap(),
        "--keys",
        &keys_url(s),
        "--timestamp",
        ts.to_str().unwrap(),
        "--tsa-ca",
        ca.to_str().unwrap(),
    ])
}

/// RFC 3161: with VOUCH_TSA_URL naming a local authority (OpenSSL's `ts`
/// behind Python's http.server), each packet's signature is timestamped and
/// the response stored; `openssl ts -verify` accepts it for that signature,
/// and so does `vouch verify --timestamp --tsa-ca`, which prints the
/// authority's time; another packet or another CA is refused. Without
/// VOUCH_TSA_URL there is no timestamp (404); an authority that is down fails
/// the generation (nothing stored without its timestamp).
fn rfc3161_timestamps_verify_with_openssl() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let tsa = LocalTsa::start(&dir.path().join("tsa"));
    let store = Store::new(support::Backend::Sqlite);
    let s = Server::start_with(
        &store,
        Options {
            env: vec![("VOUCH_TSA_URL", format!("http://127.0.0.1:{}/", tsa.port))],
            ..Options::default()
        },
    );
    subscribe(&s);
    let (id, file) = generate(&s, dir.path());
    let (_, other) = generate(&s, dir.path());
    let r = s.get(
        &format!("/organizations/acme/compliance-reports/{id}/timestamp"),
        Auth::Basic("carol", "demo"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/timestamp-reply")
    );
    let ts = dir.path().join("packet.tsr");
    std::fs::write(&ts, &r.body).unwrap();
    let body: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body["signature"]["value"].as_str().unwrap())
        .unwrap();
    let imprint: String = sha2::Sha256::digest(&raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let ca = tsa.dir.join("ca.pem");
    let o = Command::new("openssl")
        .args(["ts", "-verify", "-digest", &imprint, "-in"])
        .arg(&ts)
        .arg("-CAfile")
        .arg(&ca)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && said.contains("Verification: OK"),
        "{said}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (code, out) = verify_stamped(&s, &file, &ts, &ca);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("timestamp: the authority signed this packet's signature at"),
        "{out}"
    );
    let (code, out) = verify_stamped(&s, &other, &ts, &ca);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not of this packet's signature"), "{out}");
    // A CA the auditor trusts that did not issue the authority's certificate.
    let stranger = dir.path().join("stranger.pem");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=stranger",
            "-days",
            "1",
            "-keyout",
        ])
        .arg(dir.path().join("stranger.key"))
        .arg("-out")
        .arg(&stranger)
        .output()
        .unwrap();
    assert!(o.status.success());
    let (code, out) = verify_stamped(&s, &file, &ts, &stranger);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not verify against"), "{out}");
    let (code, out) = vouch(&[
        "verify",
        file.to_str().unwrap(),
        "--keys",
        &keys_url(&s),
        "--timestamp",
        ts.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "--timestamp needs --tsa-ca: {out}");
    assert_eq!(
        std::fs::read_to_string(tsa.dir.join("requests")).unwrap(),
        "2",
        "one request per packet"
    );
    // The authority goes away: generation fails, and stores no packet.
    drop(tsa);
    let r = s.send(
        "POST",
        "/organizations/acme/compliance-reports",
        Auth::Basic("carol", "demo"),
        br#"{"framework":"soc2"}"#,
    );
    assert_eq!(r.status, 500, "{}", r.text());
    // Without an authority: no timestamp, and everything else as before.
    let plain = Store::new(support::Backend::Sqlite);
    let p = Server::start(&plain);
    subscribe(&p);
    let (id, file) = generate(&p, dir.path());
    let r = p.get(
        &format!("/organizations/acme/compliance-reports/{id}/timestamp"),
        Auth::Basic("carol", "demo"),
    );
    assert_eq!(r.status, 404);
    let (code, out) = vouch(&["verify", file.to_str().unwrap(), "--keys", &keys_url(&p)]);
    assert_eq!(code, 0, "{out}");
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    run(&[
        case!(every_packet_of_a_run_is_included_and_the_log_only_grows).on_backends(),
        case!(python_recomputes_the_tree_the_proof_and_the_signature).needs(&[Tool::Python]),
        case!(the_monitor_detects_a_rewritten_or_dropped_entry).needs(&[Tool::Python]),
        case!(the_monitor_detects_a_forked_log),
        case!(a_key_revoked_with_a_cutoff_keeps_earlier_packets_only).on_backends(),
        case!(two_servers_append_to_one_consistent_tree).needs(&[Tool::Postgres]),
        case!(hostile_queries_get_clear_refusals),
        case!(rfc3161_timestamps_verify_with_openssl).needs(&[Tool::Python, Tool::Standards]),
    ])
}
