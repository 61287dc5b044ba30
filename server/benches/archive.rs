//! The records archive a packet is stored with: its size for the demo
//! organization and for one of 1,000 services (the demo's three services
//! repeated, each with its 45 days of backup runs, a restore test and its
//! creation), as canonical bytes and as stored (gzip, base64), and the time
//! compression adds, as a ratio to the evaluation it follows (SOC 2, the
//! same records, measured in the same run).
//!
//!   cargo bench -p vouch --bench archive
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::Value;
use vouch::store::{reports::Archive, Db};
use vouch::zones::Catalogue;
use vouch_engine::{FrameworkSet, NoPluginHost, Period, Timestamp};

const RUNS: usize = 7;

/// The demo batch with acme's services repeated until there are `services`.
fn batch(now: Timestamp, services: usize) -> Value {
    let mut b = vouch::demo::batch(now);
    if services <= 3 {
        return b;
    }
    let acme: Vec<Value> = b["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["organization_id"] == "acme")
        .cloned()
        .collect();
    let of = |list: &str, id: &str| -> Vec<Value> {
        b[list]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["service_id"] == id)
            .cloned()
            .collect()
    };
    let mut added: [Vec<Value>; 4] = Default::default();
    for i in 3..services {
        let template = &acme[i % acme.len()];
        let old = template["service_id"].as_str().unwrap();
        let new = format!("{old}-{i}");
        let rename = |mut v: Value, key: &str| {
            v["service_id"] = Value::from(new.clone());
            if let Some(k) = v[key].as_str() {
                v[key] = Value::from(format!("{k}-{i}"));
            }
            v
        };
        added[0].push(rename(template.clone(), "name"));
        for (slot, list, key) in [
            (1, "backup_runs", "run_id"),
            (2, "restore_tests", "test_id"),
            (3, "service_changes", "change_id"),
        ] {
            // Only the creation: the demo's TLS incident stays on one service.
            let items = of(list, old)
                .into_iter()
                .filter(|c| list != "service_changes" || c["event"] == "created");
            added[slot].extend(items.map(|x| rename(x, key)));
        }
    }
    for (slot, list) in [
        "services",
        "backup_runs",
        "restore_tests",
        "service_changes",
    ]
    .iter()
    .enumerate()
    {
        b[list]
            .as_array_mut()
            .unwrap()
            .extend(std::mem::take(&mut added[slot]));
    }
    b
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let zones = Catalogue::builtin().unwrap();
    let now: Timestamp = "2026-06-22T10:00:00Z".parse().unwrap();
    let period = Period::month_ending_at(now);
    let frameworks = FrameworkSet::builtin().unwrap();
    let soc2 = frameworks.get("soc2").unwrap();
    let kb = |n: usize| n as f64 / 1024.0;
    println!("records archive per packet (SOC 2, the period ending {now}):");
    for services in [3, 1_000] {
        let db = rt.block_on(Db::connect("sqlite::memory:")).unwrap();
        let bytes = serde_json::to_vec(&batch(now, services)).unwrap();
        let parsed = vouch::import::parse(&bytes, &zones).unwrap();
        let actor = vouch::import::Actor {
            name: "bench".into(),
            remote_addr: None,
        };
        rt.block_on(vouch::service::records::apply(&db, parsed, &actor, now))
            .unwrap();
        let records = rt
            .block_on(vouch::store::snapshot::snapshot(
                &db, &zones, "acme", &period,
            ))
            .unwrap()
            .unwrap();
        assert_eq!(records.services.len(), services);
        let mut evaluate = vec![];
        let mut compress = vec![];
        let mut sizes = (0, 0);
        for _ in 0..RUNS {
            let t = Instant::now();
            let (_, canonical) = vouch_engine::packet::assemble_archived(
                soc2,
                &records,
                now,
                Some(period),
                &NoPluginHost,
            )
            .unwrap();
            evaluate.push(t.elapsed());
            let t = Instant::now();
            let archive = Archive::compress(&canonical).unwrap();
            compress.push(t.elapsed());
            assert_eq!(archive.decompress().unwrap(), canonical);
            sizes = (canonical.len(), archive.stored_len());
        }
        let (evaluate, compress) = (median(evaluate), median(compress));
        println!(
            "  {services:>5} services: canonical {:>9.1} KiB, stored {:>8.1} KiB ({:.1}x smaller); \
             compression {:.1} ms = {:.2}x the evaluation's {:.1} ms",
            kb(sizes.0),
            kb(sizes.1),
            sizes.0 as f64 / sizes.1 as f64,
            compress.as_secs_f64() * 1000.0,
            compress.as_secs_f64() / evaluate.as_secs_f64(),
            evaluate.as_secs_f64() * 1000.0,
        );
    }
}
