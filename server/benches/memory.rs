//! Memory of a running server under the two loads an outside review found
//! unbounded: many generations (typst's cache was never evicted) and a flood
//! of bad Basic logins (argon2 without a bound). Each load runs against a
//! fresh `vouch serve --demo` of this build, started as the end-to-end tests
//! start it (`tests/support`); memory is read from
//! /proc/PID/status (VmRSS, and VmHWM: the peak over the process's life) and
//! printed against the idle server measured in the same run.
//!
//!   cargo bench -p vouch --bench memory                 # 1000 generations, 300 logins
//!   cargo bench -p vouch --bench memory -- 200 300      # fewer generations
//!
//! Traffic goes to 127.0.0.1 only and is bounded in count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/support/mod.rs"]
mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{request, Auth, Backend, Server, Store};

/// (VmRSS, VmHWM) in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn generations(n: usize) {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let pid = s.child.id();
    let r = s.send(
        "PUT",
        "/organizations/acme/compliance-subscriptions/soc2",
        Auth::Basic("alice", "demo"),
        b"",
    );
    assert_eq!(r.status, 200);
    let generate = || {
        let r = s.send(
            "POST",
            "/organizations/acme/compliance-reports",
            Auth::Basic("carol", "demo"),
            br#"{"framework":"soc2"}"#,
        );
        assert_eq!(r.status, 201);
        // The server's log lines are not read here; keep them from piling up.
        s.drain_log();
    };
    // Warm: fonts, the library, the first rendering.
    for _ in 0..5 {
        generate();
    }
    std::thread::sleep(Duration::from_secs(3));
    let (idle, _) = memory(pid);
    println!("generations: idle after 5 packets {idle:.0} MiB");
    println!(
        "{:>12} {:>10} {:>10} {:>8}",
        "packets", "rss MiB", "peak MiB", "rss/idle"
    );
    let started = Instant::now();
    for i in 1..=n {
        generate();
        if i % (n / 10).max(1) == 0 {
            let (rss, hwm) = memory(pid);
            println!("{i:>12} {rss:>10.0} {hwm:>10.0} {:>8.2}", rss / idle);
        }
    }
    // Let the queued background renderings finish, then read again.
    std::thread::sleep(Duration::from_secs(10));
    let (rss, hwm) = memory(pid);
    println!(
        "{:>12} {rss:>10.0} {hwm:>10.0} {:>8.2}   ({n} packets in {:.0} s)",
        "settled",
        rss / idle,
        started.elapsed().as_secs_f64()
    );
}

fn logins(n: usize, at_once: usize) {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let pid = s.child.id();
    std::thread::sleep(Duration::from_secs(1));
    let (idle, _) = memory(pid);
    let url = s.url("/organizations/acme/compliance-subscriptions");
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let mut sent = 0;
    let mut codes = std::collections::BTreeMap::new();
    let mut worst_legit = Duration::ZERO;
    while sent < n {
        let wave = at_once.min(n - sent);
        let handles: Vec<_> = (0..wave)
            .map(|i| {
                let url = url.clone();
                let tx = tx.clone();
                // Half against a real user, half against names that do not exist.
                let user = if i % 2 == 0 {
                    "alice".to_owned()
                } else {
                    format!("nobody{i}")
                };
                std::thread::spawn(move || {
                    let r = request("GET", &url, Auth::Basic(&user, "wrong password"), None, &[]);
                    let _ = tx.send(r.status);
                })
            })
            .collect();
        // A legitimate user during the flood.
        let t = Instant::now();
        request("GET", &url, Auth::Basic("carol", "demo"), None, &[]);
        worst_legit = worst_legit.max(t.elapsed());
        for h in handles {
            h.join().unwrap();
        }
        s.drain_log();
        sent += wave;
    }
    drop(tx);
    for code in rx {
        *codes.entry(code).or_insert(0usize) += 1;
    }
    let (rss, hwm) = memory(pid);
    println!(
        "bad logins: {n} sent {at_once} at a time in {:.1} s; answers {codes:?}",
        started.elapsed().as_secs_f64()
    );
    println!(
        "bad logins: idle {idle:.0} MiB, after {rss:.0} MiB, peak {hwm:.0} MiB (peak/idle {:.2}); slowest legitimate request during the flood {:.0} ms",
        hwm / idle,
        worst_legit.as_secs_f64() * 1000.0
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1000);
    let bad = args.get(1).copied().unwrap_or(300);
    logins(bad, 150);
    generations(n);
}
