//! The records the engine's benchmarks evaluate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use serde_json::{json, Value};
use vouch_engine::RecordsDocument;

/// The allocator the `vouch` command runs with (server/src/main.rs), so that
/// these figures are the server's (engine/README.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An organization with `n` services: a few without TLS, a few outside the
/// EU; each created before the period with one interval of configuration
/// history up to the period end, as the platform's snapshot gives a service
/// that did not change (controls judged throughout the period read it).
pub fn records(n: usize) -> RecordsDocument {
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
    let mut doc = RecordsDocument::from_value(doc).unwrap();
    let (from, to) = (
        "2026-01-01T00:00:00Z".parse().unwrap(),
        "2026-06-22T10:00:00Z".parse().unwrap(),
    );
    for s in &mut doc.services {
        s.created_at = Some(from);
        s.history = Some(vec![s.interval(from, to)]);
    }
    doc.check_consistency().unwrap();
    doc
}
