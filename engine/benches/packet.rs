//! Evaluate, canonicalize and sign on records with 10 to 10,000 services, beside
//! serde_json's compact serialization of the same packet (the floor).
//!
//! cargo bench -p vouch-engine --bench packet
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use vouch_engine::canonical::to_canonical_bytes;
use vouch_engine::signing::PacketSigner;
use vouch_engine::{assemble, FrameworkSet, RecordsDocument, Timestamp};

fn records(n: usize) -> RecordsDocument {
    let services: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "service_id": format!("svc-{i:05}"),
                "name": format!("db-{i}"),
                "database_type": "postgresql",
                "version": "17",
                "status": "running",
                "zones": if i % 3 == 0 { json!(["de-fra1", "nl-ams1"]) } else { json!(["de-fra1"]) },
                "region": "europe",
                "eu_residency": i % 50 != 0,
                "storage_region": "de-fra1",
                "storage_encrypted": true,
                "backup_encryption_enabled": true,
                "tls_enabled": i % 97 != 0,
                "backups": {
                    "last_completed_at": "2026-06-22T02:00:00Z",
                    "last_backup_type": "full",
                    "encryption_enabled": true,
                    "encryption_algorithm": "AES-256-GCM",
                    "schedule_enabled": true,
                    "schedule_cron": "0 2 * * *",
                    "retention_days": 7
                }
            })
        })
        .collect();
    let doc = json!({
        "organization": {"id": "o-1", "name": "Acme Engineering", "billing_email": "billing@acme.com"},
        "services": services,
        "audit_log": {"retention_policy": "indefinite", "oldest_entry_at": "2026-03-01T08:00:00Z", "entry_count": 14823}
    });
    RecordsDocument::from_value(doc).unwrap()
}

fn bench(c: &mut Criterion) {
    let frameworks = FrameworkSet::builtin().unwrap();
    let soc2 = frameworks.get("soc2").unwrap();
    let now: Timestamp = "2026-06-22T10:00:00Z".parse().unwrap();
    let signer = PacketSigner::new(SigningKey::from_bytes(&[1u8; 32]), "key-bench".into());
    let mut group = c.benchmark_group("packet");
    group.sample_size(20);
    for n in [10usize, 100, 1_000, 10_000] {
        let doc = records(n);
        let packet = assemble(soc2, &doc, now, None).unwrap();
        let canonical = to_canonical_bytes(&packet).unwrap();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("evaluate", n), &doc, |b, doc| {
            b.iter(|| assemble(soc2, doc, now, None).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("canonicalize", n), &packet, |b, p| {
            b.iter(|| to_canonical_bytes(p).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("serde_json_compact", n),
            &packet,
            |b, p| b.iter(|| serde_json::to_vec(p).unwrap()),
        );
        group.bench_with_input(BenchmarkId::new("sign", n), &canonical, |b, bytes| {
            b.iter(|| signer.sign_bytes(bytes))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
