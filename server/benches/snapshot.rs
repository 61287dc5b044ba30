//! The records snapshot of one organization, on SQLite and (with
//! VOUCH_TEST_POSTGRES_URL) on PostgreSQL, with 1,000,000 audit entries:
//! 100 and 10,000 services without history (the floor), then 10,000
//! services with 50 configuration changes each (5 of them inside the
//! period) and with 150 each (the same 5 inside, 100 more before it).
//! Prints each time, the ratio of the 50-change organization to the floor
//! (at most 2 is the goal) and of the 150-change one to the 50-change one
//! (flat: about 1).
//!
//! cargo bench -p vouch --bench snapshot
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use vouch::store::Db;
use vouch::zones::Catalogue;
use vouch_engine::{Period, Timestamp};

const AUDIT_ENTRIES: usize = 1_000_000;
const END: i64 = 1_782_122_400; // 2026-06-22T10:00:00Z
const DAY: i64 = 86_400;
/// Changes per service inside the period.
const IN_PERIOD: usize = 5;
const RUNS: usize = 11;

async fn insert_rows(db: &Db, table_and_columns: &str, rows: impl Iterator<Item = String>) {
    let mut tx = db.pool.begin().await.unwrap();
    let mut chunk = Vec::with_capacity(500);
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        chunk.clear();
        chunk.extend(rows.by_ref().take(500));
        let sql = format!("INSERT INTO {table_and_columns} VALUES {}", chunk.join(","));
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

const STATE: &str = r#"{"zones":["de-fra1","nl-ams1"],"storage_region":"de-fra1","storage_encrypted":true,"backup_encryption_enabled":true,"tls_enabled":true,"auth_required":true,"high_risk_ai":false,"backup_schedule_enabled":true,"backup_schedule_cron":"0 2 * * *","backup_retention_days":RETENTION,"backup_encryption_algorithm":"AES-256-GCM","backup_storage_zone":"fi-hel1"}"#;

/// Organization `org` with `services` services, a backup run each in the
/// period, a million audit entries over 300 days, and `changes` changes per
/// service: a creation 400 days before the period end, the rest before the
/// period but the last [`IN_PERIOD`], which fall inside it.
async fn seed(db: &Db, org: &str, services: usize, changes: usize) {
    insert_rows(db, "organizations (id, name, billing_email, privacy_contact_email, audit_retention_days, created_at, updated_at)",
        std::iter::once(format!("('{org}', 'Org', 'b@example.com', NULL, NULL, 0, 0)"))).await;
    insert_rows(db, "services (service_id, organization_id, name, database_type, version, status, zones, storage_region, storage_encrypted, \
        backup_encryption_enabled, tls_enabled, auth_required, high_risk_ai, ict_function, data_categories, processing_purposes, \
        backup_schedule_enabled, backup_schedule_cron, backup_retention_days, backup_encryption_algorithm, backup_storage_zone, created_at, updated_at)",
        (0..services).map(|i| format!("('{org}-s{i}', '{org}', 'db{i}', 'postgresql', '17', 'running', '[\"de-fra1\",\"nl-ams1\"]', 'de-fra1', 1, 1, 1, 1, 0, 'x', '[\"a\"]', '[\"b\"]', 1, '0 2 * * *', 14, 'AES-256-GCM', 'fi-hel1', 0, 0)"))).await;
    insert_rows(db, "backup_runs (run_id, service_id, organization_id, started_at, completed_at, status, backup_type)",
        (0..services).map(|i| format!("('{org}-r{i}', '{org}-s{i}', '{org}', {}, {}, 'succeeded', 'full')", END - 3600, END - 3000))).await;
    if changes > 0 {
        let start = Period::month_ending_at(Timestamp::from_unix_seconds(END).unwrap())
            .start
            .unix_seconds();
        let created = END - 400 * DAY;
        let before = changes - IN_PERIOD;
        insert_rows(
            db,
            "service_changes (change_id, organization_id, service_id, at, event, fields, state, recorded_at)",
            (0..services).flat_map(move |i| {
                (0..changes).map(move |k| {
                    let at = if k == 0 {
                        created
                    } else if k < before {
                        // Spread between the creation and the period start.
                        created + (start - created) * k as i64 / before as i64
                    } else {
                        start + DAY * (1 + 5 * (k - before) as i64)
                    };
                    let event = if k == 0 { "created" } else { "updated" };
                    let state = STATE.replace("RETENTION", &(1 + k % 30).to_string());
                    format!(
                        "('{org}-s{i}-c{k}', '{org}', '{org}-s{i}', {at}, '{event}', '{state}', '{state}', 0)"
                    )
                })
            }),
        )
        .await;
    }
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
}

/// The median of [`RUNS`] snapshots, after one to warm the caches.
fn median(rt: &tokio::runtime::Runtime, db: &Db, zones: &Catalogue, org: &str) -> Duration {
    let period = Period::month_ending_at(Timestamp::from_unix_seconds(END).unwrap());
    let once = || {
        let t = Instant::now();
        let doc = rt
            .block_on(vouch::store::snapshot::snapshot(db, zones, org, &period))
            .unwrap()
            .unwrap();
        (t.elapsed(), doc)
    };
    let (_, doc) = once();
    assert_eq!(doc.audit_log.entry_count, AUDIT_ENTRIES as u64);
    let mut times: Vec<Duration> = (0..RUNS).map(|_| once().0).collect();
    times.sort();
    times[RUNS / 2]
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let zones = Catalogue::builtin().unwrap();
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
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (backend, url) in targets {
        let db = rt.block_on(Db::connect(&url)).unwrap();
        let mut times = vec![];
        for (org, services, changes) in [
            ("o-100", 100, 0),
            ("o-10000", 10_000, 0),
            ("h-10000-50", 10_000, 50),
            ("h-10000-150", 10_000, 150),
        ] {
            let seeded = Instant::now();
            rt.block_on(seed(&db, org, services, changes));
            // Statistics (and on PostgreSQL the visibility map that lets
            // index-only scans skip the heap) as a running database has them
            // once autovacuum has passed, not those of a bulk load.
            let settle = if backend == "postgres" {
                "VACUUM ANALYZE"
            } else {
                "ANALYZE"
            };
            rt.block_on(sqlx::query(settle).execute(&db.pool)).unwrap();
            eprintln!(
                "{backend}: seeded {org} ({services} services, {changes} changes each, {AUDIT_ENTRIES} audit entries) in {:.1?}",
                seeded.elapsed()
            );
            let t = median(&rt, &db, &zones, org);
            times.push(t);
            println!(
                "snapshot {backend:8} {services:>6} services {changes:>3} changes each: {:8.1} ms",
                ms(t)
            );
        }
        println!(
            "snapshot {backend:8} history (50 changes) / no history: {:.2}x (goal: at most 2)",
            ms(times[2]) / ms(times[1])
        );
        println!(
            "snapshot {backend:8} 150 changes / 50 changes, the same 5 in the period: {:.2}x (goal: flat, about 1)",
            ms(times[3]) / ms(times[2])
        );
    }
}
