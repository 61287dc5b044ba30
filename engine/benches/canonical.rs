//! The canonical writer and evaluation, as ratios to floors measured in the
//! same run: the canonical writer ÷ serde_json's compact serialization of
//! the same packet (unsorted, no normalization: the floor), olpc-cjson (the
//! reference) ÷ the same floor, and SOC 2 evaluation time per service at
//! 10, 100, 1,000 and 10,000 services (flat per service is linear): the
//! controls alone on the records document, on one thread and as
//! `evaluate_controls` splits a large scope over the machine's threads, and
//! the whole packet (the records' canonical bytes and digest included).
//!
//! cargo bench -p vouch-engine --bench canonical
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::records;
use vouch_engine::canonical::{olpc_reference_bytes, to_canonical_bytes};
use vouch_engine::eval::{evaluate_controls, evaluate_controls_in_parts};
use vouch_engine::{assemble, FrameworkSet, NoPluginHost, Period, Timestamp};

/// The median of `runs` timings of `f`, after one warm-up call.
fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    std::hint::black_box(f());
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let frameworks = FrameworkSet::builtin().unwrap();
    let soc2 = frameworks.get("soc2").unwrap();
    let now: Timestamp = "2026-06-22T10:00:00Z".parse().unwrap();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{:>7}  {:>12} {:>12} {:>12}  {:>8} {:>8}  {:>12} {:>11} {:>12}  {:>11} {:>12}",
        "services",
        "writer",
        "olpc-cjson",
        "serde_json",
        "writer/",
        "olpc/",
        "1 thread/svc",
        "evaluate",
        "per service",
        "packet",
        "per service"
    );
    let period = Period::month_ending_at(now);
    for n in [10usize, 100, 1_000, 10_000] {
        let doc = records(n);
        let packet = assemble(soc2, &doc, now, None).unwrap();
        assert_eq!(
            to_canonical_bytes(&packet).unwrap(),
            olpc_reference_bytes(&packet).unwrap()
        );
        let runs = if n >= 10_000 { 7 } else { 31 };
        let writer = median(runs, || to_canonical_bytes(&packet).unwrap());
        let olpc = median(runs, || olpc_reference_bytes(&packet).unwrap());
        let floor = median(runs, || serde_json::to_vec(&packet).unwrap());
        let root = doc.to_value();
        let one = median(runs.min(11), || {
            evaluate_controls_in_parts(&soc2.controls, &root, &period, &NoPluginHost, 1)
        });
        let evaluate = median(runs.min(11), || {
            evaluate_controls(&soc2.controls, &root, &period, &NoPluginHost)
        });
        let whole = median(runs.min(11), || assemble(soc2, &doc, now, None).unwrap());
        println!(
            "{n:>7}  {:>10.1}µs {:>10.1}µs {:>10.1}µs  {:>7.2}x {:>7.2}x  {:>10.2}µs {:>9.2}ms {:>10.2}µs  {:>9.2}ms {:>10.2}µs",
            us(writer),
            us(olpc),
            us(floor),
            writer.as_secs_f64() / floor.as_secs_f64(),
            olpc.as_secs_f64() / floor.as_secs_f64(),
            us(one) / n as f64,
            evaluate.as_secs_f64() * 1e3,
            us(evaluate) / n as f64,
            whole.as_secs_f64() * 1e3,
            us(whole) / n as f64,
        );
    }
}
