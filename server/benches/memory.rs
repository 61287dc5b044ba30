//! Memory of a running server under the two loads an outside review found
//! unbounded: many generations (typst's cache was never evicted) and a flood
//! of bad Basic logins (argon2 without a bound). Each load runs against a
//! fresh `vouch serve --demo` of this build; memory is read from
//! /proc/PID/status (VmRSS, and VmHWM: the peak over the process's life) and
//! printed against the idle server measured in the same run.
//!
//!   cargo bench -p vouch --bench memory                 # 1000 generations, 300 logins
//!   cargo bench -p vouch --bench memory -- 200 300      # fewer generations
//!
//! Traffic goes to 127.0.0.1 only and is bounded in count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vouch");

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("VOUCH_LOG_FORMAT", "json")
        .env("VOUCH_LOG", "warn,vouch::cli=info")
        .env_remove("VOUCH_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["fields"]["message"] == "vouch is listening" {
                let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the server starts");
    Server {
        child,
        addr,
        _dir: dir,
    }
}

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

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn generations(n: usize) {
    let s = start();
    let pid = s.child.id();
    let a = agent();
    let base = format!("http://{}/organizations/acme", s.addr);
    let r = a
        .put(format!("{base}/compliance-subscriptions/soc2"))
        .header("authorization", basic("alice", "demo"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 200);
    let generate = || {
        let r = a
            .post(format!("{base}/compliance-reports"))
            .header("authorization", basic("carol", "demo"))
            .header("content-type", "application/json")
            .send(r#"{"framework":"soc2"}"#)
            .unwrap();
        assert_eq!(r.status(), 201);
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
    let s = start();
    let pid = s.child.id();
    std::thread::sleep(Duration::from_secs(1));
    let (idle, _) = memory(pid);
    let url = format!(
        "http://{}/organizations/acme/compliance-subscriptions",
        s.addr
    );
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
                    let r = agent()
                        .get(&url)
                        .header("authorization", basic(&user, "wrong password"))
                        .call();
                    let _ = tx.send(r.map(|r| r.status().as_u16()).unwrap_or(0));
                })
            })
            .collect();
        // A legitimate user during the flood.
        let t = Instant::now();
        let r = agent()
            .get(&url)
            .header("authorization", basic("carol", "demo"))
            .call()
            .unwrap();
        worst_legit = worst_legit.max(t.elapsed());
        let _ = r.status();
        for h in handles {
            h.join().unwrap();
        }
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
