//! In-process generation throughput: what `POST /compliance-reports` does
//! after the snapshot, without HTTP or the database (evaluate SOC 2 on the
//! demo organization's records, canonicalize, archive, sign the packet and
//! its two attestations), on `THREADS` threads for `SECONDS` seconds. It is
//! the ceiling `bench/load.sh` compares the HTTP figure with.
//!
//!   cargo bench -p vouch --bench generate [-- SECONDS [THREADS]]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vouch::store::{reports::Archive, Db};
use vouch::zones::Catalogue;
use vouch_engine::packet::assemble_archived;
use vouch_engine::signing::PacketSigner;
use vouch_engine::{attest, FrameworkSet, NoPluginHost, Period, Timestamp};

/// The allocator of the `vouch` command (src/main.rs), so that the ceiling is its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let seconds: f64 = args.next().map_or(5.0, |s| s.parse().unwrap());
    let threads: usize = args.next().map_or(2, |s| s.parse().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let zones = Catalogue::builtin().unwrap();
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let period = Period::month_ending_at(now);
    let db = rt.block_on(Db::connect("sqlite::memory:")).unwrap();
    rt.block_on(vouch::demo::seed(&db, &zones, now)).unwrap();
    let records = rt
        .block_on(vouch::store::snapshot::snapshot(
            &db, &zones, "acme", &period,
        ))
        .unwrap()
        .unwrap();
    let frameworks = FrameworkSet::builtin().unwrap();
    let soc2 = frameworks.get("soc2").unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let signer = PacketSigner::new(key, "bench".into());
    let done = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while Instant::now() < deadline {
                    let (packet, archived) =
                        assemble_archived(soc2, &records, now, Some(period), &NoPluginHost)
                            .unwrap();
                    std::hint::black_box(Archive::compress(&archived).unwrap());
                    let signed = signer.sign(packet).unwrap();
                    for p in [attest::Predicate::Vouch, attest::Predicate::Trestle] {
                        let st = attest::statement(&signed, p).unwrap();
                        std::hint::black_box(attest::envelope(&signer, &st));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let n = done.load(Ordering::Relaxed);
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "in-process generation (SOC 2, acme's {} services, {threads} threads, {seconds} s): {n} packets, {rate:.0} packets/s",
        records.services.len()
    );
}
