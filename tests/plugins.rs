//! The plugin host against hostile modules (`tests/wat/*.wat`), the example
//! plugin built from source, and a server that keeps answering while a plugin
//! loops forever.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use vouch::plugins::{sha256_hex, Limits, Plugins};
use vouch_engine::framework::parse_framework_with;
use vouch_engine::{assemble_with, PluginHost, RecordsDocument, Status};

/// A fixture's text; wasmtime reads the text format as it reads binaries.
fn fixture(name: &str) -> Vec<u8> {
    wat::parse_file(repo_path(&format!("tests/wat/{name}.wat"))).unwrap()
}

fn host_with(name: &str) -> Plugins {
    let mut p = Plugins::new(Limits::default()).unwrap();
    p.add(name, &fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    p
}

const INPUT: &[u8] = br#"{"abi_version":1,"control":{"control_id":"C","title":"T"},"config":null,"resource_id":"s","evidence":[],"period":{"start":"2026-05-22T10:00:00Z","end":"2026-06-22T10:00:00Z"}}"#;

fn hostile_modules_fail_their_call_with_a_reason() {
    let cases = [
        ("ok", None),
        (
            "endless_loop",
            Some("ran out of its budget of 20000000 fuel units"),
        ),
        ("memory_hog", Some("exceeded the memory cap of 16 MiB")),
        (
            "trap",
            Some("trapped: wasm trap: wasm `unreachable` instruction executed"),
        ),
        (
            "gigantic_output",
            Some("output of 4000000000 bytes exceeds the cap"),
        ),
    ];
    for (name, reason) in cases {
        let host = host_with(name);
        let started = Instant::now();
        let out = host.call(name, INPUT);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name} ran {:?}",
            started.elapsed()
        );
        match reason {
            None => assert_eq!(out.unwrap(), br#"{"status":"pass"}"#),
            Some(why) => {
                let e = out.unwrap_err();
                assert!(e.contains(why), "{name}: {e}");
            }
        }
    }
    // The host is still usable after every failure: a fresh instance per call.
    let host = host_with("endless_loop");
    assert!(host.call("endless_loop", INPUT).is_err());
    assert!(host.call("endless_loop", INPUT).is_err());
}

fn modules_that_break_the_abi_are_refused_at_load() {
    let cases = [
        ("wasi_import", "imports `wasi_snapshot_preview1.fd_write`, which the host does not provide; plugins get no WASI"),
        ("wrong_abi", "speaks ABI version 2; this host speaks 1"),
        ("missing_export", "does not export `vouch_check`"),
    ];
    for (name, why) in cases {
        let mut p = Plugins::new(Limits::default()).unwrap();
        let e = p.add(name, &fixture(name)).unwrap_err().to_string();
        assert!(e.contains(why), "{name}: {e}");
    }
    let mut p = Plugins::new(Limits::default()).unwrap();
    assert!(p
        .add("junk", b"not wasm at all")
        .unwrap_err()
        .to_string()
        .contains("not a WebAssembly module"));
    assert!(p.add("../escape", &fixture("ok")).is_err());
}

/// One control decided by `plugin` on every service of `records`.
fn evaluate(
    plugins: &Plugins,
    plugin: &str,
    sha: &str,
    records: &RecordsDocument,
) -> vouch_engine::ControlResult {
    let text = format!(
        "framework: t\nname: T\nversion: '1'\nstatement: S\nattests: T\nmonthly_price_eur: 1\nscope_boundary: T\ncontrols:\n  - control_id: P\n    title: T\n    reference: R\n    time_basis: as_of_generation\n    assertion: A\n    evidence_refs:\n      - services[*].backup_runs\n    scope: {{ each: services, id: service_id }}\n    checks:\n      - plugin: {{ name: {plugin}, sha256: \"{sha}\", config: {{ max_gap_hours: 26 }}, path: backup_runs }}\n"
    );
    let fw = parse_framework_with("t.yaml", &text, plugins).unwrap_or_else(|d| panic!("{d:?}"));
    let packet = assemble_with(
        &fw,
        records,
        "2026-06-22T10:00:00Z".parse().unwrap(),
        None,
        plugins,
    )
    .unwrap();
    packet.controls[0].clone()
}

fn full_records() -> RecordsDocument {
    RecordsDocument::from_json_slice(
        &std::fs::read(repo_path("examples/records/full.json")).unwrap(),
    )
    .unwrap()
}

fn every_hostile_plugin_leaves_the_control_inconclusive_and_the_packet_whole() {
    let records = full_records();
    for (name, why) in [
        ("endless_loop", "ran out of its budget"),
        ("memory_hog", "memory cap"),
        ("trap", "trapped"),
        ("invalid_utf8", "malformed output"),
        ("invalid_json", "malformed output"),
        ("gigantic_output", "exceeds the cap"),
    ] {
        let host = host_with(name);
        let sha = sha256_hex(&fixture(name));
        let c = evaluate(&host, name, &sha, &records);
        assert_eq!(c.status, Status::Inconclusive, "{name}");
        assert!(
            c.notes.iter().all(|n| n.contains(why)),
            "{name}: {:?}",
            c.notes
        );
        assert_eq!(c.plugins[0].sha256, sha);
    }
}

/// The harness runs the tests that call this only where the plugin is built
/// (ignored otherwise, failing under CI).
fn example_plugin() -> Vec<u8> {
    std::fs::read(example_plugin_path()).unwrap()
}

fn the_example_plugin_decides_backup_cadence() {
    let wasm = example_plugin();
    let mut host = Plugins::new(Limits::default()).unwrap();
    let info = host.add("backup_cadence", &wasm).unwrap().clone();
    assert_eq!(info.version, "1.0.0");
    // The committed example framework pins exactly this build.
    let yaml =
        std::fs::read_to_string(repo_path("plugins/examples/frameworks/backup_cadence.yaml"))
            .unwrap();
    assert!(
        yaml.contains(&info.sha256),
        "plugins/examples/frameworks/backup_cadence.yaml pins another build than {}",
        info.sha256
    );

    // Runs on the last days of the period only: gaps.
    let mut doc = serde_json::to_value(full_records()).unwrap();
    for s in doc["services"].as_array_mut().unwrap() {
        s["backup_runs"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["started_at"].as_str().unwrap() >= "2026-06-19");
    }
    let records = RecordsDocument::from_value(doc).unwrap();
    let c = evaluate(&host, "backup_cadence", &info.sha256, &records);
    assert_eq!(c.status, Status::Exception);
    let ids: Vec<&str> = c.findings.iter().map(|f| f.resource.as_str()).collect();
    assert!(
        ids.contains(&"svc-orders") && ids.contains(&"svc-sessions"),
        "{ids:?}"
    );
    assert!(c.findings[0]
        .observed
        .as_str()
        .unwrap()
        .starts_with("no successful backup from 2026-05-22T10:00:00Z"));

    // A successful backup every day of the period: attested.
    let mut doc = serde_json::to_value(&records).unwrap();
    for (i, s) in doc["services"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let runs: Vec<Value> = (0..32)
            .map(|d| {
                let at = chrono::DateTime::parse_from_rfc3339("2026-05-22T02:00:00Z").unwrap() + chrono::Duration::days(d);
                let at = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
                json!({"run_id": format!("r{i}-{d}"), "started_at": at, "completed_at": at, "status": "succeeded", "backup_type": "full"})
            })
            .collect();
        s["backup_runs"] = json!(runs);
        s["backups"]["last_completed_at"] = json!("2026-06-22T02:00:00Z");
    }
    let daily = RecordsDocument::from_value(doc).unwrap();
    let c = evaluate(&host, "backup_cadence", &info.sha256, &daily);
    assert_eq!(c.status, Status::Attested, "{:?} {:?}", c.findings, c.notes);
    assert_eq!(c.plugins[0].name, "backup_cadence");
}

fn the_server_runs_the_example_plugin_end_to_end() {
    let wasm = example_plugin();
    let store = Store::new(Backend::Sqlite);
    let plugins_dir = store.path().join("plugins");
    std::fs::create_dir_all(&plugins_dir).unwrap();
    std::fs::write(plugins_dir.join("backup_cadence.wasm"), &wasm).unwrap();
    let s = Server::start_with(
        &store,
        Options {
            env: vec![
                (
                    "VOUCH_FRAMEWORKS_DIR",
                    repo_path("plugins/examples/frameworks")
                        .display()
                        .to_string(),
                ),
                ("VOUCH_PLUGINS_DIR", plugins_dir.display().to_string()),
            ],
            ..Options::default()
        },
    );
    for (org, user, status) in [
        ("acme", "alice", "attested"),
        ("globex", "dave", "exception"),
    ] {
        let r = s.packet(org, user, "backup_cadence");
        let c = &r.json()["packet"]["controls"][0];
        assert_eq!(c["status"], status, "{org}: {c}");
        assert_eq!(c["plugins"][0]["sha256"], sha256_hex(&wasm));
        assert_eq!(c["plugins"][0]["version"], "1.0.0");
        if org == "acme" {
            reproduce_with_the_plugin_and_without(&s, &store, &r.body, &plugins_dir, &wasm);
        }
    }
}

/// The packet reproduces from its archived records with the plugin that
/// judged it; with another build of the plugin (one custom section more: a
/// valid module with another digest) the reason is the plugin.
fn reproduce_with_the_plugin_and_without(
    s: &Server,
    store: &Store,
    body: &[u8],
    plugins_dir: &std::path::Path,
    wasm: &[u8],
) {
    let id = serde_json::from_slice::<Value>(body).unwrap()["report_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let records = s.get(
        &format!("/organizations/acme/compliance-reports/{id}/records"),
        Auth::Basic("alice", "demo"),
    );
    assert_eq!(records.status, 200, "{}", records.text());
    let packet_file = store.path().join("packet.json");
    let records_file = store.path().join("records.json");
    std::fs::write(&packet_file, body).unwrap();
    std::fs::write(&records_file, &records.body).unwrap();
    let reproduce = || {
        std::process::Command::new(bin())
            .arg("reproduce")
            .arg(&packet_file)
            .arg("--records")
            .arg(&records_file)
            .arg("--frameworks-dir")
            .arg(repo_path("plugins/examples/frameworks"))
            .arg("--plugins-dir")
            .arg(plugins_dir)
            .output()
            .unwrap()
    };
    let o = reproduce();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut other = wasm.to_vec();
    other.extend_from_slice(&[0, 5, 4, b'b', b'u', b'm', b'p']);
    std::fs::write(plugins_dir.join("backup_cadence.wasm"), &other).unwrap();
    let o = reproduce();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "plugin `backup_cadence` is not the one that took part: the plugin given has sha256 {}",
            sha256_hex(&other)
        )),
        "{stderr}"
    );
    std::fs::write(plugins_dir.join("backup_cadence.wasm"), wasm).unwrap();
}

fn the_server_answers_promptly_while_a_plugin_loops_forever() {
    let store = Store::new(Backend::Sqlite);
    let plugins_dir = store.path().join("plugins");
    let frameworks_dir = store.path().join("frameworks");
    std::fs::create_dir_all(&plugins_dir).unwrap();
    std::fs::create_dir_all(&frameworks_dir).unwrap();
    let looping = fixture("endless_loop");
    std::fs::write(plugins_dir.join("endless_loop.wasm"), &looping).unwrap();
    let sha = sha256_hex(&looping);
    let mut yaml = String::from("framework: looping\nname: Looping\nversion: '1'\nstatement: S\nattests: Nothing\nmonthly_price_eur: 0\nscope_boundary: All.\ncontrols:\n");
    for i in 0..60 {
        yaml.push_str(&format!(
            "  - control_id: L{i}\n    title: Loops\n    reference: R\n    time_basis: as_of_generation\n    assertion: A\n    evidence_refs:\n      - services[*].backup_runs\n    scope: {{ each: services, id: service_id }}\n    checks:\n      - plugin: {{ name: endless_loop, sha256: \"{sha}\" }}\n"
        ));
    }
    std::fs::write(frameworks_dir.join("looping.yaml"), yaml).unwrap();
    let s = Server::start_with(
        &store,
        Options {
            env: vec![
                ("VOUCH_FRAMEWORKS_DIR", frameworks_dir.display().to_string()),
                ("VOUCH_PLUGINS_DIR", plugins_dir.display().to_string()),
            ],
            ..Options::default()
        },
    );
    assert_eq!(
        s.send(
            "PUT",
            "/organizations/acme/compliance-subscriptions/looping",
            Auth::Basic("alice", "demo"),
            b""
        )
        .status,
        200
    );
    let url = s.url("/organizations/acme/compliance-reports");
    // 60 controls x 3 services, each call looping until its fuel is gone: the
    // generation takes seconds.
    let generation = std::thread::spawn(move || {
        request(
            "POST",
            &url,
            Auth::Basic("carol", "demo"),
            Some(br#"{"framework":"looping"}"#),
            &[("content-type", "application/json")],
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while !generation.is_finished() && probes < 50 {
        let started = Instant::now();
        assert_eq!(s.get("/healthz", Auth::None).status, 200);
        slowest = slowest.max(started.elapsed());
        probes += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = generation.join().unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        probes >= 5,
        "the generation ended too fast to measure ({probes} probes)"
    );
    eprintln!("/healthz while the plugin looped: {probes} probes, slowest {slowest:?}");
    assert!(
        slowest < Duration::from_millis(500),
        "/healthz took {slowest:?} while the plugin looped"
    );
    for c in r.json()["packet"]["controls"].as_array().unwrap() {
        assert_eq!(c["status"], "inconclusive");
        assert!(
            c["notes"][0]
                .as_str()
                .unwrap()
                .contains("ran out of its budget of 20000000 fuel units"),
            "{c}"
        );
    }
}

/// The budget is fuel, not time: a plugin that loops forever runs out of the
/// same budget, and one that works hard within it passes, whether the machine
/// is idle or every core is busy (and however slow this debug build is).
fn a_plugin_judges_the_same_on_an_idle_and_on_a_loaded_machine() {
    let looping = host_with("endless_loop");
    let busy = host_with("busy_then_pass");
    let judge = || {
        (
            looping.call("endless_loop", INPUT),
            busy.call("busy_then_pass", INPUT)
                .map(|o| String::from_utf8_lossy(&o).into_owned()),
        )
    };
    let idle = judge();
    // Load: a busy thread per core and two more, for as long as the calls run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let burners: Vec<_> = (0..cores + 2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    let loaded: Vec<_> = (0..3).map(|_| judge()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for b in burners {
        b.join().unwrap();
    }
    let expected_loop = Err(format!(
        "ran out of its budget of {} fuel units (WebAssembly instructions: the same count on every machine)",
        vouch::plugins::DEFAULT_FUEL
    ));
    assert_eq!(idle.0, expected_loop);
    assert_eq!(idle.1, Ok(r#"{"status":"pass"}"#.to_owned()));
    for l in &loaded {
        assert_eq!(l, &idle, "under load the verdicts changed");
    }
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    run(&[
        case!(hostile_modules_fail_their_call_with_a_reason),
        case!(a_plugin_judges_the_same_on_an_idle_and_on_a_loaded_machine),
        case!(modules_that_break_the_abi_are_refused_at_load),
        case!(every_hostile_plugin_leaves_the_control_inconclusive_and_the_packet_whole),
        case!(the_example_plugin_decides_backup_cadence).needs(&[Tool::ExamplePlugin]),
        case!(the_server_runs_the_example_plugin_end_to_end).needs(&[Tool::ExamplePlugin]),
        case!(the_server_answers_promptly_while_a_plugin_loops_forever),
    ])
}
