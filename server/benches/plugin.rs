//! Per-call overhead of a plugin with a warm cache (compiled once): a fresh
//! instance, the input written, the check called, the output read. The
//! trivial plugin (`tests/wat/ok.wat`) answers at once; the example plugin
//! (if built) parses the input and judges 30 backup runs.
//!
//! cargo bench -p vouch --bench plugin
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use vouch::plugins::{Limits, Plugins};
use vouch_engine::PluginHost;

fn bench(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut host = Plugins::new(Limits::default()).unwrap();
    host.add(
        "ok",
        &wat::parse_file(root.join("tests/wat/ok.wat")).unwrap(),
    )
    .unwrap();
    let input = br#"{"abi_version":1,"control":{"control_id":"C","title":"T"},"config":null,"resource_id":"s","evidence":[],"period":{"start":"2026-05-22T10:00:00Z","end":"2026-06-22T10:00:00Z"}}"#;
    let mut group = c.benchmark_group("plugin_call");
    group.bench_function("trivial", |b| b.iter(|| host.call("ok", input).unwrap()));
    if let Ok(wasm) =
        std::fs::read(root.join("target/wasm32-unknown-unknown/plugin/backup_cadence.wasm"))
    {
        host.add("backup_cadence", &wasm).unwrap();
        let runs: Vec<String> = (0..30)
            .map(|d| format!(r#"{{"run_id":"r{d}","started_at":"2026-05-{:02}T02:00:00Z","completed_at":"2026-05-{:02}T02:20:00Z","status":"succeeded","backup_type":"full"}}"#, 22 + d % 9, 22 + d % 9))
            .collect();
        let input = format!(
            r#"{{"abi_version":1,"control":{{"control_id":"C","title":"T"}},"config":{{"max_gap_hours":26}},"resource_id":"s","evidence":[{}],"period":{{"start":"2026-05-22T10:00:00Z","end":"2026-06-22T10:00:00Z"}}}}"#,
            runs.join(",")
        );
        group.bench_function("backup_cadence_30_runs", |b| {
            b.iter(|| host.call("backup_cadence", input.as_bytes()).unwrap())
        });
    } else {
        eprintln!("backup_cadence.wasm not built: only the trivial plugin is measured");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
