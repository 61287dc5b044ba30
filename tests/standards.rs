//! The packet in the standards' forms, checked by tools this project did not
//! write (installed by `.ci/run`): compliance-trestle's `trestle verify` on
//! the DSSE envelope, Sigstore's JavaScript verifier on the bundle, NIST's
//! OSCAL schema (with check-jsonschema) and `trestle import` on the
//! assessment results, OpenSSL on the PEM keys; and `vouch verify` on the
//! envelope and the bundle. Each is also shown a tampered copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use support::harness::current_backend;
use support::*;

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut c = Command::new(program);
    c.args(args);
    if let Some(dir) = cwd {
        c.current_dir(dir);
    }
    c.output().unwrap()
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", said(o));
}

fn refused(o: &Output, what: &str) {
    assert!(
        !o.status.success(),
        "{what} accepted a tampered copy: {}",
        said(o)
    );
}

fn get(s: &Server, path: &str, user: &str) -> Vec<u8> {
    let r = s.get(path, Auth::Basic(user, "demo"));
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.body
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

/// One byte of the base64 payload's content changed, the rest kept.
fn tamper_payload(envelope: &mut Value) {
    let mut payload = B64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let at = payload.len() / 2;
    payload[at] ^= 1;
    envelope["payload"] = Value::from(B64.encode(payload));
}

fn the_standards_tools_accept_vouch_packets_and_refuse_tampered_ones() {
    let store = Store::new(current_backend());
    let s = Server::start(&store);
    let tools = standards_tools();
    let trestle = tools.join("venv/bin/trestle");
    let keys_url = s.url("/.well-known/compliance-signing-keys");
    // A trestle workspace to import into.
    let ws = store.path().join("trestle-workspace");
    std::fs::create_dir_all(&ws).unwrap();
    ok(&run(&trestle, &["init"], Some(&ws)), "trestle init");

    // Every published key reads as PEM with OpenSSL.
    let keys: Value =
        serde_json::from_slice(&get(&s, "/.well-known/compliance-signing-keys", "alice")).unwrap();
    let mut pems = std::collections::BTreeMap::new();
    for k in keys["keys"].as_array().unwrap() {
        let id = k["key_id"].as_str().unwrap().to_owned();
        let r = s.get(
            &format!("/.well-known/compliance-signing-keys/{id}.pem"),
            Auth::None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/x-pem-file"));
        let file = write(store.path(), &format!("{id}.pem"), &r.body);
        ok(
            &run("openssl", &["pkey", "-pubin", "-in", &file, "-noout"], None),
            "openssl pkey",
        );
        pems.insert(id, file);
    }
    assert!(!pems.is_empty());
    for name in [
        "key-unknown.pem",
        "key-unknown",
        &format!("{}.txt", pems.keys().next().unwrap()),
    ] {
        let r = s.get(
            &format!("/.well-known/compliance-signing-keys/{name}"),
            Auth::None,
        );
        assert_eq!(r.status, 404, "{name}");
    }

    // An organization whose one service is known not to be high-risk AI
    // infrastructure, since its creation: its AI Act packet is not
    // applicable in part, so the four statuses are all covered.
    let r = s.admin(&serde_json::json!({
        "organizations": [{"id": "initech", "name": "Initech", "billing_email": "billing@initech.example"}],
        "users": [{"username": "peter", "password": "demo", "mfa_enabled": true}],
        "member_changes": [{"change_id": "initech-peter", "organization_id": "initech", "username": "peter",
            "at": "2025-01-06T09:00:00Z", "event": "added", "set": {"role": "owner", "mfa_enabled": true}}],
        "services": [{"service_id": "svc-initech-tps", "organization_id": "initech", "name": "tps-db",
            "database_type": "postgresql", "version": "17", "status": "running",
            "zones": ["de-fra1"], "storage_region": "de-fra1", "storage_encrypted": true,
            "backup_encryption_enabled": true, "tls_enabled": true, "auth_required": true, "high_risk_ai": false,
            "backup_policy": {"schedule_enabled": true, "schedule_cron": "0 2 * * *", "retention_days": 14,
                "encryption_algorithm": "AES-256-GCM", "storage_zone": "fi-hel1"}}],
        "service_changes": [{"change_id": "initech-tps-created", "service_id": "svc-initech-tps",
            "at": "2025-01-06T09:00:00Z", "event": "created", "set": {
                "zones": ["de-fra1"], "storage_region": "de-fra1", "storage_encrypted": true,
                "backup_encryption_enabled": true, "tls_enabled": true, "auth_required": true, "high_risk_ai": false,
                "backup_schedule_enabled": true, "backup_schedule_cron": "0 2 * * *", "backup_retention_days": 14,
                "backup_encryption_algorithm": "AES-256-GCM", "backup_storage_zone": "fi-hel1"}}]
    }));
    assert_eq!(r.status, 200, "{}", r.text());
    let mut statuses = BTreeSet::new();
    for (org, user, fw) in [
        ("acme", "alice", "soc2"),
        ("acme", "alice", "dora"),
        ("initech", "peter", "eu_ai_act"),
        // Whether globex's service is high-risk is unknown: inconclusive.
        ("globex", "dave", "eu_ai_act"),
    ] {
        let dir = store.path().join(format!("{org}-{fw}"));
        std::fs::create_dir_all(&dir).unwrap();
        let r = s.packet(org, user, fw);
        let id = r.json()["report_id"].as_str().unwrap().to_owned();
        let (canonical, signature) = vouch_engine::verify::body_parts(&r.body).unwrap();
        let packet: Value = serde_json::from_slice(canonical).unwrap();
        for c in packet["controls"].as_array().unwrap() {
            statuses.insert(c["status"].as_str().unwrap().to_owned());
        }
        let packet_file = write(&dir, "packet.json", canonical);
        let key = &pems[&signature.key_id];
        let base = format!("/organizations/{org}/compliance-reports/{id}");

        // The envelope: its subject is the packet, byte for byte.
        let reply = s.get(&format!("{base}/attestation"), Auth::Basic(user, "demo"));
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some("application/vnd.in-toto+json")
        );
        let envelope: Value = reply.json();
        let statement: Value =
            serde_json::from_slice(&B64.decode(envelope["payload"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(
            statement["subject"][0]["digest"]["sha256"],
            Value::from(signature.canonical_sha256.clone())
        );
        assert_eq!(
            statement["subject"][0]["digest"]["sha256"],
            Value::from(vouch_engine::signing::sha256_hex(canonical))
        );
        let envelope_file = write(&dir, "attestation.json", &reply.body);
        let o = run(
            bin(),
            &["verify", &envelope_file, "--keys", &keys_url],
            None,
        );
        ok(&o, "vouch verify envelope");
        assert!(
            said(&o).contains(&signature.canonical_sha256),
            "{}",
            said(&o)
        );
        let mut bad = envelope.clone();
        tamper_payload(&mut bad);
        let bad_file = write(
            &dir,
            "attestation-tampered.json",
            &serde_json::to_vec(&bad).unwrap(),
        );
        let o = run(bin(), &["verify", &bad_file, "--keys", &keys_url], None);
        assert_eq!(o.status.code(), Some(1), "{}", said(&o));
        assert!(
            said(&o).contains("bad signature: the envelope was not signed"),
            "{}",
            said(&o)
        );

        // trestle verify takes trestle's predicate over the packet file.
        let trestle_env = write(
            &dir,
            "trestle.json",
            &get(&s, &format!("{base}/attestation?predicate=trestle"), user),
        );
        let trestle_verify = |file: &str| {
            run(
                &trestle,
                &[
                    "verify",
                    "--beta",
                    "-f",
                    file,
                    "--signature",
                    &trestle_env,
                    "--public-key",
                    key,
                ],
                Some(&ws),
            )
        };
        ok(&trestle_verify(&packet_file), "trestle verify");
        let tampered_dir = dir.join("tampered");
        std::fs::create_dir_all(&tampered_dir).unwrap();
        let text = String::from_utf8(canonical.to_vec()).unwrap();
        let changed = text.replacen(&format!("\"{org}\""), &format!("\"{org}x\""), 1);
        assert_ne!(changed, text);
        let tampered = write(&tampered_dir, "packet.json", changed.as_bytes());
        refused(&trestle_verify(&tampered), "trestle verify");
        let r = s.get(
            &format!("{base}/attestation?predicate=cosign"),
            Auth::Basic(user, "demo"),
        );
        assert_eq!(r.status, 400, "{}", r.text());

        // The bundle: Sigstore's verifier and vouch's.
        let bundle_bytes = get(&s, &format!("{base}/bundle"), user);
        let bundle_file = write(&dir, "bundle.json", &bundle_bytes);
        let verifier = repo_path("tests/js/verify-bundle.js").display().to_string();
        let o = run(
            "node",
            &[&verifier, &bundle_file, key, &signature.key_id],
            None,
        );
        ok(&o, "@sigstore/verify");
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "OK");
        ok(
            &run(bin(), &["verify", &bundle_file, "--keys", &keys_url], None),
            "vouch verify bundle",
        );
        let mut bundle: Value = serde_json::from_slice(&bundle_bytes).unwrap();
        tamper_payload(&mut bundle["dsseEnvelope"]);
        let bad_bundle = write(
            &dir,
            "bundle-tampered.json",
            &serde_json::to_vec(&bundle).unwrap(),
        );
        let o = run(
            "node",
            &[&verifier, &bad_bundle, key, &signature.key_id],
            None,
        );
        refused(&o, "@sigstore/verify");
        assert!(said(&o).contains("SIGNATURE_ERROR"), "{}", said(&o));
        refused(
            &run(bin(), &["verify", &bad_bundle, "--keys", &keys_url], None),
            "vouch verify",
        );

        // OSCAL: NIST's schema, trestle's import, the same bytes each time.
        let oscal = get(&s, &format!("{base}/oscal"), user);
        assert_eq!(
            oscal,
            get(&s, &format!("{base}/oscal"), user),
            "two downloads differ"
        );
        let oscal_file = write(&dir, "assessment-results.json", &oscal);
        let schema = tools.join(OSCAL_AR_SCHEMA).display().to_string();
        ok(
            &run(
                tools.join("venv/bin/check-jsonschema"),
                &["--schemafile", &schema, &oscal_file],
                None,
            ),
            "check-jsonschema",
        );
        ok(
            &run(
                &trestle,
                &[
                    "import",
                    "-f",
                    &oscal_file,
                    "-o",
                    &format!("{org}-{fw}-results"),
                ],
                Some(&ws),
            ),
            "trestle import",
        );
        let ar: Value = serde_json::from_slice(&oscal).unwrap();
        let resources = &ar["assessment-results"]["back-matter"]["resources"][0];
        assert_eq!(
            resources["rlinks"][0]["hashes"][0]["value"],
            Value::from(signature.canonical_sha256.clone())
        );
        let findings = ar["assessment-results"]["results"][0]["findings"]
            .as_array()
            .unwrap();
        assert_eq!(findings.len(), packet["controls"].as_array().unwrap().len());
        for (f, c) in findings.iter().zip(packet["controls"].as_array().unwrap()) {
            let state = &f["target"]["status"]["state"];
            let expected = match c["status"].as_str().unwrap() {
                "attested" | "not_applicable" => "satisfied",
                _ => "not-satisfied",
            };
            assert_eq!(state, expected, "{}", c["control_id"]);
            assert_eq!(f["props"][0]["value"], c["status"]);
        }
        // A schema-invalid document is refused by the same validator.
        let mut broken = ar.clone();
        broken["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] =
            Value::from("not-applicable");
        let broken_file = write(&dir, "broken.json", &serde_json::to_vec(&broken).unwrap());
        refused(
            &run(
                tools.join("venv/bin/check-jsonschema"),
                &["--schemafile", &schema, &broken_file],
                None,
            ),
            "check-jsonschema",
        );
    }
    let all: BTreeSet<String> = ["attested", "exception", "inconclusive", "not_applicable"]
        .map(String::from)
        .into();
    assert_eq!(statuses, all, "the packets do not cover every status");
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    run(&[
        case!(the_standards_tools_accept_vouch_packets_and_refuse_tampered_ones)
            .on_backends()
            .needs(&[Tool::Standards]),
    ])
}
