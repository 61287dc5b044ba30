//! The records snapshot of one organization: 100 and 10,000 services, with
//! 1,000,000 audit entries, on SQLite and (with VOUCH_TEST_POSTGRES_URL) on
//! PostgreSQL.
//!
//! cargo bench -p vouch --bench snapshot
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use vouch::store::Db;
use vouch::zones::Catalogue;
use vouch_engine::{Period, Timestamp};

const AUDIT_ENTRIES: usize = 1_000_000;
const END: i64 = 1_782_122_400; // 2026-06-22T10:00:00Z

async fn insert_rows(db: &Db, table_and_columns: &str, rows: impl Iterator<Item = String>) {
    let mut tx = db.pool.begin().await.unwrap();
    let rows: Vec<String> = rows.collect();
    for chunk in rows.chunks(500) {
        let sql = format!("INSERT INTO {table_and_columns} VALUES {}", chunk.join(","));
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// One organization `o-{services}` with `services` services, a backup run each
/// in the period, and a million audit entries spread over 300 days.
async fn seed(db: &Db, services: usize) -> String {
    let org = format!("o-{services}");
    insert_rows(db, "organizations (id, name, billing_email, privacy_contact_email, audit_retention_days, created_at, updated_at)",
        std::iter::once(format!("('{org}', 'Org', 'b@example.com', NULL, NULL, 0, 0)"))).await;
    insert_rows(db, "services (service_id, organization_id, name, database_type, version, status, zones, storage_region, storage_encrypted, \
        backup_encryption_enabled, tls_enabled, auth_required, high_risk_ai, ict_function, data_categories, processing_purposes, \
        backup_schedule_enabled, backup_schedule_cron, backup_retention_days, backup_encryption_algorithm, backup_storage_zone, created_at, updated_at)",
        (0..services).map(|i| format!("('{org}-s{i}', '{org}', 'db{i}', 'postgresql', '17', 'running', '[\"de-fra1\",\"nl-ams1\"]', 'de-fra1', 1, 1, 1, 1, 0, 'x', '[\"a\"]', '[\"b\"]', 1, '0 2 * * *', 14, 'AES-256-GCM', 'fi-hel1', 0, 0)"))).await;
    insert_rows(db, "backup_runs (run_id, service_id, organization_id, started_at, completed_at, status, backup_type)",
        (0..services).map(|i| format!("('{org}-r{i}', '{org}-s{i}', '{org}', {}, {}, 'succeeded', 'full')", END - 3600, END - 3000))).await;
    insert_rows(
        db,
        "audit_entries (entry_id, organization_id, at, actor, action, target, remote_addr)",
        (0..AUDIT_ENTRIES).map(|i| {
            format!(
                "('{org}-a{i}', '{org}', {}, 'alice', 'login', 't', NULL)",
                END - (i as i64 % (300 * 86_400))
            )
        }),
    )
    .await;
    org
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let zones = Catalogue::builtin().unwrap();
    let end: Timestamp = "2026-06-22T10:00:00Z".parse().unwrap();
    let period = Period::month_ending_at(end);
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![("sqlite", vouch::store::sqlite_url(dir.path()))];
    if let Ok(base) = std::env::var("VOUCH_TEST_POSTGRES_URL") {
        let name = format!("vouch_bench_{}", uuid::Uuid::new_v4().simple());
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
        });
        let (prefix, _) = base.rsplit_once('/').unwrap();
        targets.push(("postgres", format!("{prefix}/{name}")));
    } else {
        eprintln!("PostgreSQL skipped: VOUCH_TEST_POSTGRES_URL is not set");
    }
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    for (backend, url) in targets {
        let db = rt.block_on(Db::connect(&url)).unwrap();
        for services in [100usize, 10_000] {
            let seeded = std::time::Instant::now();
            let org = rt.block_on(seed(&db, services));
            eprintln!(
                "{backend}: seeded {services} services and {AUDIT_ENTRIES} audit entries in {:?}",
                seeded.elapsed()
            );
            let doc = rt
                .block_on(vouch::store::snapshot::snapshot(&db, &zones, &org, &period))
                .unwrap()
                .unwrap();
            assert_eq!(doc.services.len(), services);
            assert_eq!(doc.audit_log.entry_count, AUDIT_ENTRIES as u64);
            group.bench_function(BenchmarkId::new(backend, services), |b| {
                b.iter(|| {
                    rt.block_on(vouch::store::snapshot::snapshot(&db, &zones, &org, &period))
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
