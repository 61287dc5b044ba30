//! `vouch serve --demo`: the demo organizations, users and keys, created
//! idempotently. Without `--demo` none of this exists.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Value};
use vouch_engine::Timestamp;

use crate::import::{self, Actor};
use crate::store::Db;
use crate::zones::Catalogue;

const DAY: i64 = 86_400;

/// When the demo's services were created and its members joined.
const CREATED: &str = "2025-01-06T09:00:00Z";

/// The configuration a demo service was created with: its own fields.
fn created(service: &Value) -> Value {
    let p = &service["backup_policy"];
    json!({
        "change_id": format!("demo-{}-created", service["service_id"].as_str().unwrap_or("")),
        "service_id": service["service_id"],
        "at": CREATED,
        "event": "created",
        "set": {
            "zones": service["zones"],
            "storage_region": service["storage_region"],
            "storage_encrypted": service["storage_encrypted"],
            "backup_encryption_enabled": service["backup_encryption_enabled"],
            "tls_enabled": service["tls_enabled"],
            "auth_required": service["auth_required"],
            "high_risk_ai": service.get("high_risk_ai").cloned().unwrap_or(Value::Null),
            "backup_schedule_enabled": p["schedule_enabled"],
            "backup_schedule_cron": p["schedule_cron"],
            "backup_retention_days": p["retention_days"],
            "backup_encryption_algorithm": p["encryption_algorithm"],
            "backup_storage_zone": p.get("storage_zone").cloned().unwrap_or(Value::Null)
        }
    })
}

fn at(secs: i64) -> String {
    Timestamp::from_unix_seconds(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A demo service: secure defaults, overridden by `fields`.
fn service(id: &str, org: &str, fields: Value) -> Value {
    let mut s = json!({
        "service_id": id,
        "organization_id": org,
        "status": "running",
        "storage_encrypted": true,
        "backup_encryption_enabled": true,
        "tls_enabled": true,
        "auth_required": true,
        "backup_policy": {
            "schedule_enabled": true,
            "schedule_cron": "0 2 * * *",
            "retention_days": 14,
            "encryption_algorithm": "AES-256-GCM"
        }
    });
    if let (Some(obj), Value::Object(more)) = (s.as_object_mut(), fields) {
        for (k, v) in more {
            if k == "backup_zone" {
                obj["backup_policy"]["storage_zone"] = v;
            } else {
                obj.insert(k, v);
            }
        }
    }
    s
}

/// The demo batch, with backup and audit history relative to `now`; ids are
/// derived from dates, so re-running it the same day changes nothing and on a
/// later day extends the history.
pub fn batch(now: Timestamp) -> Value {
    let today = now.unix_seconds() - now.unix_seconds().rem_euclid(DAY);
    let acme = [
        (
            "svc-acme-orders",
            json!({
                "name": "orders-db", "database_type": "postgresql", "version": "17",
                "zones": ["de-fra1", "nl-ams1"], "storage_region": "de-fra1", "backup_zone": "fi-hel1",
                "data_categories": ["customer contact data", "order history"],
                "processing_purposes": ["database hosting", "encrypted backups"],
                "ict_function": "order management", "high_risk_ai": false
            }),
        ),
        (
            "svc-acme-scoring",
            json!({
                "name": "scoring-features-db", "database_type": "postgresql", "version": "16",
                "zones": ["nl-ams1", "fi-hel1"], "storage_region": "nl-ams1", "backup_zone": "de-fra1",
                "data_categories": ["credit application features"],
                "processing_purposes": ["database hosting", "encrypted backups"],
                "ict_function": "credit scoring model features", "high_risk_ai": true
            }),
        ),
        (
            "svc-acme-sessions",
            json!({
                "name": "sessions-cache", "database_type": "valkey", "version": "8",
                "zones": ["fi-hel1"], "storage_region": "fi-hel1", "backup_zone": "de-fra1",
                "data_categories": ["session identifiers"], "processing_purposes": ["database hosting"],
                "ict_function": "customer sign-in sessions", "high_risk_ai": false
            }),
        ),
    ];
    let mut services = vec![];
    let mut runs = vec![];
    let mut tests = vec![];
    for (id, fields) in acme {
        services.push(service(id, "acme", fields));
        for d in 0..45 {
            let start = today - d * DAY + 2 * 3600;
            if start + 1200 > now.unix_seconds() {
                continue;
            }
            runs.push(json!({
                "run_id": format!("{id}-{}", &at(start)[..10]),
                "service_id": id,
                "started_at": at(start),
                "completed_at": at(start + 1200),
                "status": "succeeded",
                "backup_type": if d % 7 == 0 { "full" } else { "incremental" }
            }));
        }
        tests.push(json!({
            "test_id": format!("{id}-restore-{}", &at(today - 20 * DAY)[..7]),
            "service_id": id,
            "performed_at": at(today - 20 * DAY + 9 * 3600),
            "succeeded": true
        }));
    }
    services.push(service("svc-globex-crm", "globex", json!({
        "name": "crm-db", "database_type": "mysql", "version": "8.4",
        "zones": ["us-east1"], "storage_region": "us-east1", "backup_zone": "us-west1",
        "data_categories": ["customer contact data"], "processing_purposes": ["database hosting"],
        "ict_function": "sales CRM", "tls_enabled": false
    })));
    let mut changes: Vec<Value> = services.iter().map(created).collect();
    // The incident the demo's packets show: TLS was off on the orders
    // database for three days, twelve days ago.
    for (days_ago, tls, what) in [(12, false, "off"), (9, true, "on")] {
        let t = today - days_ago * DAY + 14 * 3600;
        changes.push(json!({
            "change_id": format!("demo-svc-acme-orders-tls-{what}-{}", &at(t)[..10]),
            "service_id": "svc-acme-orders",
            "at": at(t),
            "event": "updated",
            "set": {"tls_enabled": tls}
        }));
    }
    let members = [
        ("acme", "alice", "owner", true),
        ("acme", "bob", "admin", true),
        ("acme", "carol", "member", false),
        ("globex", "dave", "owner", true),
    ];
    let member_changes: Vec<Value> = members
        .iter()
        .map(|(org, user, role, mfa)| {
            json!({
                "change_id": format!("demo-{org}-{user}-added"),
                "organization_id": org,
                "username": user,
                "at": CREATED,
                "event": "added",
                "set": {"role": role, "mfa_enabled": mfa}
            })
        })
        .collect();
    let mut events = vec![];
    for (org, days) in [("acme", 120), ("globex", 10)] {
        for d in 1..=days {
            let t = today - d * DAY + 8 * 3600;
            events.push(json!({
                "event_id": format!("demo-{org}-{}", &at(t)[..10]),
                "organization_id": org,
                "at": at(t),
                "actor": if org == "acme" { "alice" } else { "dave" },
                "action": "console.login",
                "target": org
            }));
        }
    }
    json!({
        "platform": {"processor_name": "vouch demo platform", "contact_email": "privacy@platform.example", "dpo_email": "dpo@platform.example", "address": "Example Street 1, Berlin"},
        "organizations": [
            {"id": "acme", "name": "Acme Engineering", "billing_email": "billing@acme.example", "privacy_contact_email": "privacy@acme.example"},
            {"id": "globex", "name": "Globex Corporation", "billing_email": "billing@globex.example", "audit_retention_days": 90}
        ],
        "users": [
            {"username": "alice", "password": "demo", "mfa_enabled": true},
            {"username": "bob", "password": "demo", "mfa_enabled": true},
            {"username": "carol", "password": "demo", "mfa_enabled": false},
            {"username": "dave", "password": "demo", "mfa_enabled": true},
            // An outside auditor: no membership; an owner or admin grants
            // them access to one framework's packets.
            {"username": "erin", "password": "demo", "mfa_enabled": true}
        ],
        "memberships": [
            {"organization_id": "acme", "username": "alice", "role": "owner"},
            {"organization_id": "acme", "username": "bob", "role": "admin"},
            {"organization_id": "acme", "username": "carol", "role": "member"},
            {"organization_id": "globex", "username": "dave", "role": "owner"}
        ],
        "services": services,
        "backup_runs": runs,
        "restore_tests": tests,
        "audit_events": events,
        "service_changes": changes,
        "member_changes": member_changes
    })
}

/// Creates (or refreshes) the demo records.
pub async fn seed(db: &Db, zones: &Catalogue, now: Timestamp) -> Result<()> {
    let bytes = serde_json::to_vec(&batch(now))?;
    let parsed = import::parse(&bytes, zones).map_err(|e| anyhow::anyhow!("demo records: {e}"))?;
    let actor = Actor {
        name: "demo".into(),
        remote_addr: None,
    };
    crate::service::records::apply(db, parsed, &actor, now)
        .await
        .map_err(|e| anyhow::anyhow!("demo records: {e}"))?;
    Ok(())
}

/// Development secrets in the data directory (mode 0600), made once.
#[derive(Debug)]
pub struct DevSecrets {
    pub signing_key: PathBuf,
    pub hmac_key: PathBuf,
    pub admin_token: PathBuf,
}

pub fn dev_secrets(dir: &Path, now: Timestamp) -> Result<DevSecrets> {
    use rand_core::RngCore;
    let s = DevSecrets {
        signing_key: dir.join("dev-signing-key.pem"),
        hmac_key: dir.join("dev-hmac.key"),
        admin_token: dir.join("dev-admin-token"),
    };
    if !s.signing_key.exists() {
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let id = vouch_engine::signing::default_key_id(&key.verifying_key(), now);
        let pem = vouch_engine::signing::key_to_pem(&key, &id)?;
        crate::files::write_atomic(&s.signing_key, pem.as_bytes(), 0o600, true)?;
    }
    for path in [&s.hmac_key, &s.admin_token] {
        if !path.exists() {
            let mut raw = [0u8; 32];
            rand_core::OsRng.fill_bytes(&mut raw);
            let text = vouch_engine::signing::hex(&raw);
            crate::files::write_atomic(path, format!("{text}\n").as_bytes(), 0o600, true)?;
        }
    }
    Ok(s)
}
