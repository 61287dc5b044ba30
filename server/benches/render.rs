//! PDF render time for packets of 10, 50 and 200 controls, warm (typst's
//! memoization caches filled by earlier renders) and cold (caches evicted
//! before every render; fonts stay loaded, as in a running server).
//!
//! cargo bench -p vouch --bench render
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use vouch::pdf::Renderer;
use vouch_engine::framework::parse_framework;
use vouch_engine::signing::PacketSigner;
use vouch_engine::{assemble, RecordsDocument};

/// The allocator of the `vouch` command (src/main.rs), so that these renders are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A framework of `n` controls, alternating checks that attest and that fail
/// (so that findings tables are rendered too).
fn framework(n: usize) -> String {
    let mut text = String::from("framework: bench\nname: Bench\nversion: '1'\nstatement: S\nattests: Bench\nmonthly_price_eur: 1\nscope_boundary: All services.\ncontrols:\n");
    for i in 0..n {
        let check = if i % 2 == 0 {
            "all_true: tls_enabled"
        } else {
            "count: { path: zones, min: 2 }"
        };
        text.push_str(&format!(
            "  - control_id: C{i}\n    title: Control number {i}\n    reference: Bench {i}\n    time_basis: as_of_generation\n    assertion: Every service meets requirement {i}.\n    evidence_refs:\n      - services[*].tls_enabled\n    scope: {{ each: services, id: service_id }}\n    checks:\n      - {check}\n"
        ));
    }
    text
}

fn bench(c: &mut Criterion) {
    let records = RecordsDocument::from_json_slice(include_bytes!(
        "../../examples/records/one-bad-service.json"
    ))
    .unwrap();
    let signer = PacketSigner::new(
        ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]),
        "key-bench".into(),
    );
    let renderer = Renderer::new(None).unwrap();
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    for n in [10usize, 50, 200] {
        let fw = parse_framework("bench.yaml", &framework(n)).unwrap();
        let packet =
            assemble(&fw, &records, "2026-06-22T10:00:00Z".parse().unwrap(), None).unwrap();
        let signed = signer.sign(packet).unwrap();
        let render = || {
            renderer
                .render(
                    "r-bench",
                    &signed.canonical,
                    &signed.signature,
                    "Bench",
                    &vouch::pdf::Links::of("https://example.test", "acme", "r-bench"),
                )
                .unwrap()
        };
        let first = std::time::Instant::now();
        let pdf = render();
        eprintln!(
            "render/{n}: first render in this process {:?}, {} bytes",
            first.elapsed(),
            pdf.len()
        );
        group.bench_function(BenchmarkId::new("warm", n), |b| b.iter(render));
        group.bench_function(BenchmarkId::new("cold", n), |b| {
            b.iter(|| {
                typst::comemo::evict(0);
                render()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
