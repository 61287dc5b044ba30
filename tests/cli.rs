//! End-to-end tests of the offline `vouch` commands: the real binary, real
//! files, and the seed's own Python verification snippet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

mod support;
use std::process::{Command, Output};

mod authoring;

fn vouch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .output()
        .unwrap()
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .display()
        .to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code and that the binary did not panic.
fn expect_exit(o: &Output, code: i32) {
    assert!(!stderr(o).contains("panicked"), "panic: {}", stderr(o));
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Self {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    /// A key, its keys document, and a packet generated from the seed records.
    fn signed_packet(&self) -> (String, String, String) {
        let key = self.path("k.pem");
        let o = vouch(&["keys", "generate", "--out", &key]);
        expect_exit(&o, 0);
        let keys = self.path("keys.json");
        let o = vouch(&["keys", "public", "--key", &key]);
        expect_exit(&o, 0);
        std::fs::write(&keys, o.stdout).unwrap();
        let packet = self.path("packet.json");
        let o = vouch(&[
            "generate",
            "--records",
            &repo("examples/records/seed-only.json"),
            "--framework",
            "soc2",
            "--key",
            &key,
            "--out",
            &packet,
        ]);
        expect_exit(&o, 0);
        (key, keys, packet)
    }
}

fn generate_then_verify() {
    let w = Workdir::new();
    let (_, keys, packet) = w.signed_packet();
    let o = vouch(&["verify", &packet, "--keys", &keys]);
    expect_exit(&o, 0);
    assert!(
        stdout(&o).starts_with("OK soc2 packet generated_at "),
        "{}",
        stdout(&o)
    );
}

fn seed_snippet_verifies_a_generated_packet() {
    let w = Workdir::new();
    let (_, keys, packet) = w.signed_packet();
    let o = Command::new("python3")
        .args([&repo("tests/seed000_verify.py"), &packet, &keys])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "Packet is authentic");

    // And the same snippet refuses a tampered packet.
    let body =
        std::fs::read_to_string(&packet)
            .unwrap()
            .replacen("\"attested\"", "\"exception\"", 1);
    let tampered = w.write("tampered.json", body.as_bytes());
    let o = Command::new("python3")
        .args([&repo("tests/seed000_verify.py"), &tampered, &keys])
        .output()
        .unwrap();
    assert!(!o.status.success());
}

fn keys_are_pkcs8_v1_that_openssl_and_python_read() {
    let w = Workdir::new();
    let key = w.path("k.pem");
    let o = vouch(&["keys", "generate", "--out", &key, "--key-id", "key-test-1"]);
    expect_exit(&o, 0);
    assert_eq!(stdout(&o).trim(), "key-test-1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    if let Ok(o) = Command::new("openssl")
        .args(["asn1parse", "-in", &key])
        .output()
    {
        let text = stdout(&o);
        assert!(o.status.success(), "{}", stderr(&o));
        // Version 0 (v1) and no public key attribute: the 48-byte v1 form.
        assert!(text.contains("prim: INTEGER           :00"), "{text}");
        assert!(text.contains(":ED25519"), "{text}");
        assert!(
            text.starts_with("    0:d=0  hl=2 l=  46 cons: SEQUENCE"),
            "{text}"
        );
    }

    let o = Command::new("python3")
            .args([
                "-c",
                "import sys; from cryptography.hazmat.primitives.serialization import load_pem_private_key as l; l(open(sys.argv[1],'rb').read(), None); print('ok')",
                &key,
            ])
            .output()
            .unwrap();
    assert_eq!(stdout(&o).trim(), "ok", "{}", stderr(&o));
    // Never overwritten.
    let o = vouch(&["keys", "generate", "--out", &key]);
    expect_exit(&o, 3);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
}

fn a_key_others_can_read_is_refused() {
    let w = Workdir::new();
    let (key, _, _) = w.signed_packet();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = vouch(&[
            "generate",
            "--records",
            &repo("examples/records/seed-only.json"),
            "--framework",
            "soc2",
            "--key",
            &key,
        ]);
        expect_exit(&o, 3);
        assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    }
}

fn verify_reports_tampering_and_unknown_keys() {
    let w = Workdir::new();
    let (_, keys, packet) = w.signed_packet();
    let body = std::fs::read_to_string(&packet).unwrap();

    let tampered = w.write(
        "tampered.json",
        body.replacen("Acme Engineering", "Acme Engineerinh", 1)
            .as_bytes(),
    );
    let o = vouch(&["verify", &tampered, "--keys", &keys]);
    expect_exit(&o, 1);
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));

    let other = Workdir::new();
    let (_, other_keys, _) = other.signed_packet();
    let o = vouch(&["verify", &packet, "--keys", &other_keys]);
    expect_exit(&o, 1);
    assert!(stderr(&o).contains("unknown key_id"), "{}", stderr(&o));

    let malformed = w.write("malformed.json", &body.as_bytes()[..body.len() / 2]);
    let o = vouch(&["verify", &malformed, "--keys", &keys]);
    expect_exit(&o, 3);
    assert!(stderr(&o).contains("malformed input"), "{}", stderr(&o));

    let o = vouch(&["verify", &w.path("absent.json"), "--keys", &keys]);
    expect_exit(&o, 3);
    let o = vouch(&["verify", &packet, "--keys", &packet]);
    expect_exit(&o, 3);
    assert!(
        stderr(&o).contains("is not a keys document"),
        "{}",
        stderr(&o)
    );
}

fn generate_from(records: &str) -> Output {
    let w = Workdir::new();
    let key = w.path("k.pem");
    expect_exit(&vouch(&["keys", "generate", "--out", &key]), 0);
    vouch(&[
        "generate",
        "--records",
        records,
        "--framework",
        "soc2",
        "--key",
        &key,
    ])
}

fn bad_records_are_refused_with_the_path_of_the_value() {
    let seed = std::fs::read_to_string(repo("examples/records/seed-only.json")).unwrap();
    let w = Workdir::new();
    let cases = [
        (
            "float",
            seed.replacen("\"retention_days\": 7", "\"retention_days\": 7.5", 1),
            "$.services[0].backups.retention_days: floating-point number 7.5",
        ),
        (
            "control",
            seed.replacen("orders-db", "orders\\u0000db", 1),
            "$.services[0].name: control character U+0000",
        ),
        (
            "truncated",
            seed[..seed.len() / 3].to_owned(),
            "records are not valid JSON",
        ),
        (
            "unknown",
            seed.replacen(
                "\"tls_enabled\": true",
                "\"tls_enabled\": true, \"tls\": 1",
                1,
            ),
            "unknown field `tls`",
        ),
        (
            "type",
            seed.replacen("\"tls_enabled\": true", "\"tls_enabled\": \"yes\"", 1),
            "$.services[0].tls_enabled: invalid type",
        ),
    ];
    for (name, text, expected) in cases {
        let f = w.write(&format!("{name}.json"), text.as_bytes());
        let o = generate_from(&f);
        expect_exit(&o, 3);
        assert!(stderr(&o).contains(expected), "{name}: {}", stderr(&o));
    }
    let o = generate_from(&w.path("absent.json"));
    expect_exit(&o, 3);
}

/// The render queue's settings, as flags and as environment variables, are
/// refused at start when they are not numbers, durations or in range: a
/// usage error naming the setting, before anything is opened or written.
fn serve_refuses_bad_render_settings() {
    let w = Workdir::new();
    let data = w.path("data");
    for (flag, value) in [
        ("--render-attempts", "0"),
        ("--render-attempts", "101"),
        ("--render-attempts", "many"),
        ("--render-workers", "-1"),
        ("--render-workers", "99999999999999999999999"),
        ("--render-lease", "soon"),
        ("--render-lease", ""),
    ] {
        let arg = format!("{flag}={value}");
        let o = vouch(&[
            "serve",
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            &arg,
        ]);
        expect_exit(&o, 2);
        assert!(
            stderr(&o).contains(flag),
            "{flag} {value:?}: {}",
            stderr(&o)
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["serve", "--data-dir", &data, "--listen", "127.0.0.1:0"])
        .env("VOUCH_RENDER_ATTEMPTS", "1000")
        .output()
        .unwrap();
    expect_exit(&o, 2);
    assert!(stderr(&o).contains("--render-attempts"), "{}", stderr(&o));
    assert!(!Path::new(&data).exists(), "nothing was written");
}

fn generate_refuses_unknown_frameworks_and_bad_periods() {
    let w = Workdir::new();
    let key = w.path("k.pem");
    expect_exit(&vouch(&["keys", "generate", "--out", &key]), 0);
    let records = repo("examples/records/seed-only.json");
    let o = vouch(&[
        "generate",
        "--records",
        &records,
        "--framework",
        "iso27001",
        "--key",
        &key,
    ]);
    expect_exit(&o, 3);
    assert!(
        stderr(&o).contains("unknown framework `iso27001`"),
        "{}",
        stderr(&o)
    );
    let o = vouch(&[
        "generate",
        "--records",
        &records,
        "--framework",
        "soc2",
        "--key",
        &key,
        "--period-start",
        "2026-06-01T00:00:00Z",
        "--period-end",
        "2026-05-01T00:00:00Z",
    ]);
    expect_exit(&o, 3);
    assert!(stderr(&o).contains("is after period_end"), "{}", stderr(&o));
    let o = vouch(&[
        "generate",
        "--records",
        &records,
        "--framework",
        "soc2",
        "--key",
        &key,
        "--period-end",
        "tomorrow",
    ]);
    expect_exit(&o, 2);
    let o = vouch(&[
        "generate",
        "--records",
        &records,
        "--framework",
        "soc2",
        "--key",
        &key,
        "--generated-at",
        "2026-06-01T00:00:00Z",
        "--period-end",
        "2026-06-02T00:00:00Z",
    ]);
    expect_exit(&o, 3);
    assert!(
        stderr(&o).contains("cannot evidence the future"),
        "{}",
        stderr(&o)
    );
}

fn explicit_period_is_in_the_packet() {
    let w = Workdir::new();
    let (key, keys, _) = w.signed_packet();
    let out = w.path("p.json");
    let o = vouch(&[
        "generate",
        "--records",
        &repo("examples/records/seed-only.json"),
        "--framework",
        "soc2",
        "--key",
        &key,
        "--period-start",
        "2026-04-01T00:00:00+02:00",
        "--period-end",
        "2026-05-01T00:00:00Z",
        "--generated-at",
        "2026-05-02T00:00:00Z",
        "--out",
        &out,
    ]);
    expect_exit(&o, 0);
    let body: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(body["packet"]["period_start"], "2026-03-31T22:00:00Z");
    assert_eq!(body["packet"]["period_end"], "2026-05-01T00:00:00Z");
    expect_exit(&vouch(&["verify", &out, "--keys", &keys]), 0);
}

fn frameworks_check_passes_on_the_shipped_files() {
    let o = vouch(&["frameworks", "check", &repo("frameworks")]);
    expect_exit(&o, 0);
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
    expect_exit(&vouch(&["frameworks", "check"]), 0);
}

fn frameworks_check_reports_every_problem_with_positions() {
    let o = vouch(&["frameworks", "check", &repo("engine/tests/frameworks/bad")]);
    expect_exit(&o, 1);
    let err = stderr(&o);
    for expected in [
        "yaml_syntax.yaml:11:16: YAML syntax error",
        "unknown_field.yaml:13:5: unknown field `asertion`",
        "duplicate_control_id.yaml:17:17: duplicate control_id `C1`",
        "bad_jsonpath.yaml:14:21: `services[*.tls_enabled` is not a JSONPath expression",
        "unknown_operator.yaml:16:9: unknown variant `all_ture`",
        "wrong_argument_type.yaml:16:72: invalid type: string \"seven\"",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    let w = Workdir::new();
    let o = vouch(&["frameworks", "check", &w.path("")]);
    expect_exit(&o, 3);
    assert!(
        stderr(&o).contains("holds no framework files"),
        "{}",
        stderr(&o)
    );
}

fn help_explains_the_commands() {
    let o = vouch(&["--help"]);
    expect_exit(&o, 0);
    insta::assert_snapshot!(stdout(&o));
    let o = vouch(&["frobnicate"]);
    expect_exit(&o, 2);
}

/// `vouch generate --records` judges the history a records document carries,
/// as the server does: TLS off for three days is named by its interval.
fn offline_generate_judges_the_history_in_the_records() {
    let w = Workdir::new();
    let key = w.path("k.pem");
    expect_exit(&vouch(&["keys", "generate", "--out", &key]), 0);
    let mut records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("examples/records/full.json")).unwrap())
            .unwrap();
    let generate = |records: &serde_json::Value, name: &str| {
        let file = w.write(name, &serde_json::to_vec(records).unwrap());
        let o = vouch(&[
            "generate",
            "--records",
            &file,
            "--framework",
            "soc2",
            "--key",
            &key,
            "--period-start",
            "2026-05-22T10:00:00Z",
            "--period-end",
            "2026-06-22T10:00:00Z",
            "--generated-at",
            "2026-06-22T10:00:00Z",
        ]);
        expect_exit(&o, 0);
        let body: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        body["packet"]["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["control_id"] == "CC6.7-encryption-in-transit")
            .unwrap()
            .clone()
    };
    assert_eq!(generate(&records, "full.json")["status"], "attested");
    let whole = records["services"][0]["history"][0].clone();
    let mut parts = vec![];
    for (from, to, tls) in [
        (
            whole["from"].clone(),
            serde_json::json!("2026-06-01T08:00:00Z"),
            true,
        ),
        (
            serde_json::json!("2026-06-01T08:00:00Z"),
            serde_json::json!("2026-06-04T08:00:00Z"),
            false,
        ),
        (
            serde_json::json!("2026-06-04T08:00:00Z"),
            whole["to"].clone(),
            true,
        ),
    ] {
        let mut iv = whole.clone();
        iv["from"] = from;
        iv["to"] = to;
        iv["tls_enabled"] = serde_json::json!(tls);
        parts.push(iv);
    }
    records["services"][0]["history"] = serde_json::json!(parts);
    let c = generate(&records, "incident.json");
    assert_eq!(c["status"], "exception", "{c:#}");
    assert_eq!(
        c["findings"][0]["interval"],
        serde_json::json!({"from": "2026-06-01T08:00:00Z", "to": "2026-06-04T08:00:00Z"})
    );
}

/// `vouch reproduce` recomputes a packet from its inputs, byte for byte, in a
/// fresh process with another working directory, environment and locale; a
/// changed records value, framework line or forged status is named.
fn reproduce_recomputes_a_packet_and_names_what_differs() {
    let w = Workdir::new();
    let key = w.path("k.pem");
    expect_exit(&vouch(&["keys", "generate", "--out", &key]), 0);
    let records = repo("examples/records/full.json");
    for framework in ["soc2", "gdpr_ropa", "dora", "eu_ai_act"] {
        let packet = w.path(&format!("{framework}.json"));
        let o = vouch(&[
            "generate",
            "--records",
            &records,
            "--framework",
            framework,
            "--key",
            &key,
            "--generated-at",
            "2026-06-22T10:00:00Z",
            "--out",
            &packet,
        ]);
        expect_exit(&o, 0);
        // Elsewhere, with another locale, time zone and environment.
        let elsewhere = tempfile::tempdir().unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["reproduce", &packet, "--records", &records])
            .current_dir(elsewhere.path())
            .env_clear()
            .env("LC_ALL", "tr_TR.UTF-8")
            .env("LANG", "de_DE.UTF-8")
            .env("TZ", "Pacific/Kiritimati")
            .env("HOME", elsewhere.path())
            .output()
            .unwrap();
        expect_exit(&o, 0);
        assert!(
            stdout(&o).starts_with(&format!("OK reproduced: {framework} packet")),
            "{}",
            stdout(&o)
        );
    }
    let packet = w.path("soc2.json");

    // One records value changed.
    let text = std::fs::read_to_string(&records).unwrap();
    let changed = w.write(
        "changed.json",
        text.replace("\"retention_days\": 14", "\"retention_days\": 15")
            .as_bytes(),
    );
    let o = vouch(&["reproduce", &packet, "--records", &changed]);
    expect_exit(&o, 1);
    assert!(
        stderr(&o).contains("the records document is not the one the packet was computed from"),
        "{}",
        stderr(&o)
    );

    // One framework line changed (a threshold), in a copy of the frameworks.
    let dir = w.path("frameworks");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["soc2", "gdpr_ropa", "dora", "eu_ai_act"] {
        let mut yaml = std::fs::read_to_string(repo(&format!("frameworks/{f}.yaml"))).unwrap();
        if f == "soc2" {
            yaml = yaml.replacen("value: 35 }", "value: 36 }", 1);
        }
        std::fs::write(format!("{dir}/{f}.yaml"), yaml).unwrap();
    }
    let o = vouch(&[
        "reproduce",
        &packet,
        "--records",
        &records,
        "--frameworks-dir",
        &dir,
    ]);
    expect_exit(&o, 1);
    assert!(
        stderr(&o).contains("framework `soc2` is not the text that judged the packet"),
        "{}",
        stderr(&o)
    );

    // A status forged in the packet, with the digest fixed to match: the
    // recomputation names the control and the field.
    let body: serde_json::Value = serde_json::from_slice(&std::fs::read(&packet).unwrap()).unwrap();
    let mut forged = body["packet"].clone();
    let i = forged["controls"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["status"] == "attested")
        .unwrap();
    forged["controls"][i]["status"] = serde_json::json!("exception");
    let id = forged["controls"][i]["control_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let canonical = vouch_engine::canonical::to_canonical_bytes(&forged).unwrap();
    let mut sig = body["signature"].clone();
    sig["canonical_sha256"] = serde_json::json!(vouch_engine::signing::sha256_hex(&canonical));
    let forged_body = format!(
        "{{\"packet\":{},\"signature\":{}}}",
        String::from_utf8(canonical).unwrap(),
        sig
    );
    let forged_file = w.write("forged.json", forged_body.as_bytes());
    let o = vouch(&["reproduce", &forged_file, "--records", &records]);
    expect_exit(&o, 1);
    assert!(
        stderr(&o).contains(&format!(
            "first at controls[{i}] ({id}).status: signed \"exception\", recomputed \"attested\""
        )),
        "{}",
        stderr(&o)
    );

    // Not a packet, not a records document: unreadable input.
    let junk = w.write("junk.json", b"{\"packet\":");
    expect_exit(&vouch(&["reproduce", &junk, "--records", &records]), 3);
    expect_exit(&vouch(&["reproduce", &packet, "--records", &junk]), 3);
}

/// `vouch export` makes the envelope and bundle `vouch verify` accepts, only
/// with the key that signed the packet, and the same OSCAL bytes each time.
fn export_makes_what_verify_and_oscal_readers_take() {
    let w = Workdir::new();
    let (key, keys, packet) = w.signed_packet();
    for format in ["intoto", "bundle"] {
        let out = w.path(&format!("{format}.json"));
        expect_exit(
            &vouch(&[
                "export", "--format", format, &packet, "--key", &key, "--out", &out,
            ]),
            0,
        );
        let o = vouch(&["verify", &out, "--keys", &keys]);
        expect_exit(&o, 0);
        assert!(stdout(&o).contains("soc2 packet"), "{}", stdout(&o));
    }
    let trestle = w.path("trestle.json");
    expect_exit(
        &vouch(&[
            "export",
            "--format",
            "intoto",
            "--predicate",
            "trestle",
            &packet,
            "--key",
            &key,
            "--out",
            &trestle,
        ]),
        0,
    );
    let o = vouch(&["verify", &trestle, "--keys", &keys]);
    expect_exit(&o, 1);
    assert!(
        stderr(&o).contains("a trestle envelope is for `trestle verify`"),
        "{}",
        stderr(&o)
    );
    // Another key, even under the packet's key id, signs nothing.
    let other = w.path("other.pem");
    expect_exit(&vouch(&["keys", "generate", "--out", &other]), 0);
    let o = vouch(&["export", "--format", "intoto", &packet, "--key", &other]);
    expect_exit(&o, 1);
    assert!(
        stderr(&o).contains("is not the key that signed the packet"),
        "{}",
        stderr(&o)
    );
    expect_exit(&vouch(&["export", "--format", "bundle", &packet]), 3);
    expect_exit(
        &vouch(&[
            "export",
            "--format",
            "bundle",
            "--predicate",
            "trestle",
            &packet,
            "--key",
            &key,
        ]),
        3,
    );
    let a = vouch(&["export", "--format", "oscal", &packet]);
    expect_exit(&a, 0);
    assert_eq!(
        a.stdout,
        vouch(&["export", "--format", "oscal", &packet]).stdout
    );
    let doc: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(
        doc["assessment-results"]["metadata"]["oscal-version"],
        "1.2.1"
    );
    // A tampered packet is not exported.
    let text = std::fs::read_to_string(&packet).unwrap();
    let forged = w.path("forged.json");
    std::fs::write(&forged, text.replacen("\"soc2\"", "\"dora\"", 1)).unwrap();
    expect_exit(&vouch(&["export", "--format", "oscal", &forged]), 1);
}

/// `vouch generate ... | head -c 0` and the like: a reader that stops reading
/// ends the command quietly, as it ends cat (SIGPIPE), not with a panic.
fn a_closed_pipe_ends_a_command_without_a_panic() {
    let w = Workdir::new();
    let (key, keys, packet) = w.signed_packet();
    let records = repo("examples/records/full.json");
    for args in [
        vec![
            "generate",
            "--records",
            &records,
            "--framework",
            "dora",
            "--key",
            &key,
        ],
        vec!["verify", &packet, "--keys", &keys],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command writes.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            o.status
        );
    }
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    let mut cases = vec![
        case!(generate_then_verify),
        case!(offline_generate_judges_the_history_in_the_records),
        case!(reproduce_recomputes_a_packet_and_names_what_differs),
        case!(seed_snippet_verifies_a_generated_packet).needs(&[Tool::Python]),
        case!(keys_are_pkcs8_v1_that_openssl_and_python_read).needs(&[Tool::Python]),
        case!(a_key_others_can_read_is_refused),
        case!(verify_reports_tampering_and_unknown_keys),
        case!(bad_records_are_refused_with_the_path_of_the_value),
        case!(generate_refuses_unknown_frameworks_and_bad_periods),
        case!(serve_refuses_bad_render_settings),
        case!(explicit_period_is_in_the_packet),
        case!(frameworks_check_passes_on_the_shipped_files),
        case!(frameworks_check_reports_every_problem_with_positions),
        case!(help_explains_the_commands),
        case!(a_closed_pipe_ends_a_command_without_a_panic),
        case!(export_makes_what_verify_and_oscal_readers_take),
    ];
    cases.extend(authoring::cases());
    run(&cases)
}
