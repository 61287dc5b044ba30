//! SOC 2 evaluation alone, on the benchmark's records, for profiling: the
//! per-service time, and a program to run under callgrind, which counts
//! instructions (the same count on a busy machine as on an idle one).
//!
//! cargo run --release -p vouch-engine --example evaluate -- SERVICES RUNS [PARTS]
//!
//! PARTS splits the services into that many parts judged on threads of
//! their own (`eval::evaluate_controls_in_parts`); without it, as
//! `evaluate_controls` decides.
//! valgrind --tool=callgrind --toggle-collect='*evaluate_controls*' \
//!     target/release/examples/evaluate 1000 1
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/common/mod.rs"]
mod common;

use vouch_engine::eval::{evaluate_controls, evaluate_controls_in_parts};
use vouch_engine::{FrameworkSet, NoPluginHost, Period, Timestamp};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let services = args
        .next()
        .unwrap_or(Ok(1_000))
        .expect("SERVICES is a number");
    let runs = args
        .next()
        .unwrap_or(Ok(1))
        .expect("RUNS is a number")
        .max(1);
    let parts = args.next().map(|p| p.expect("PARTS is a number"));
    let frameworks = FrameworkSet::builtin().unwrap();
    let soc2 = frameworks.get("soc2").unwrap();
    let now: Timestamp = "2026-06-22T10:00:00Z".parse().unwrap();
    let period = Period::month_ending_at(now);
    let root = common::records(services).to_value();
    let started = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(match parts {
            None => evaluate_controls(&soc2.controls, &root, &period, &NoPluginHost),
            Some(parts) => {
                evaluate_controls_in_parts(&soc2.controls, &root, &period, &NoPluginHost, parts)
            }
        });
    }
    let per_service = started.elapsed().as_secs_f64() * 1e6 / (services * runs) as f64;
    let parts = parts.map_or("as the machine allows".into(), |p| format!("in {p} parts"));
    println!(
        "SOC 2 over {services} services, {runs} runs, {parts}: {per_service:.2} µs per service"
    );
}
