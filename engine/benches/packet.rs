//! Evaluate, canonicalize and sign on records with 10 to 10,000 services, beside
//! serde_json's compact serialization of the same packet (the floor).
//!
//! cargo bench -p vouch-engine --bench packet
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::records;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use vouch_engine::canonical::to_canonical_bytes;
use vouch_engine::signing::PacketSigner;
use vouch_engine::{assemble, FrameworkSet, Timestamp};

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
