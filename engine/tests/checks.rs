//! The check vocabulary, one behaviour at a time: what attests, what is an
//! exception (and which finding names it), what is missing evidence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};
use vouch_engine::eval::evaluate_control;
use vouch_engine::framework::parse_framework;
use vouch_engine::{ControlResult, Period, RecordsDocument, Status};

const PERIOD_START: &str = "2026-05-22T10:00:00Z";
const PERIOD_END: &str = "2026-06-22T10:00:00Z";

/// Evaluates one control written as YAML (its `checks`, `scope`...) on `records`.
fn eval(control_yaml: &str, records: &Value) -> ControlResult {
    let indented: String = control_yaml.lines().map(|l| format!("    {l}\n")).collect();
    let text = format!(
        "framework: t\nname: T\nattests: T\nmonthly_price_eur: 1\nscope_boundary: T\ncontrols:\n  - control_id: C\n    title: T\n    reference: R\n    assertion: A\n    evidence_refs: [x]\n{indented}"
    );
    let fw = parse_framework("t.yaml", &text).unwrap_or_else(|d| panic!("{d:#?}"));
    let doc = RecordsDocument::from_value(records.clone()).unwrap();
    let period = Period::new(ts(PERIOD_START), ts(PERIOD_END)).unwrap();
    evaluate_control(&fw.controls[0], &doc.to_value(), &period)
}

fn seed() -> Value {
    serde_json::to_value(seed_records()).unwrap()
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = new;
    v
}

const PER_SERVICE_TLS: &str = "scope: { each: services, id: service_id, context: [zones] }\nchecks:\n  - all_true: tls_enabled";

#[test]
fn all_true_attests_when_every_service_has_tls() {
    let r = eval(PER_SERVICE_TLS, &seed());
    assert_eq!(r.status, Status::Attested, "{r:?}");
    assert!(r.findings.is_empty() && r.notes.is_empty());
}

#[test]
fn all_true_names_the_failing_service_with_context() {
    let r = eval(
        PER_SERVICE_TLS,
        &with(seed(), "/services/1/tls_enabled", json!(false)),
    );
    assert_eq!(r.status, Status::Exception);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(
        (f.resource.as_str(), f.field.as_str()),
        ("svc-events", "tls_enabled")
    );
    assert_eq!(f.observed, json!(false));
    assert_eq!(f.context["zones"], json!(["nl-ams1", "de-fra1"]));
}

#[test]
fn scope_without_the_section_is_inconclusive_and_empty_is_not_applicable() {
    let mut v = seed();
    v["services"] = json!([]);
    assert_eq!(eval(PER_SERVICE_TLS, &v).status, Status::NotApplicable);
    let r = eval(
        "scope: { each: members, id: user_id }\nchecks:\n  - all_true: mfa_enabled",
        &seed(),
    );
    assert_eq!(r.status, Status::Inconclusive);
    assert_eq!(r.notes, vec!["the records have no `members`".to_owned()]);
}

#[test]
fn where_filters_the_scope() {
    let yaml = "scope: { each: services, id: service_id, where: [ { equals: { path: high_risk_ai, value: true } } ] }\nchecks:\n  - all_true: tls_enabled";
    assert_eq!(eval(yaml, &seed()).status, Status::NotApplicable);
    let v = with(seed(), "/services/2/tls_enabled", json!(false));
    let mut v = with(v, "/services/0/tls_enabled", json!(false));
    v["services"][2]["high_risk_ai"] = json!(true);
    let r = eval(yaml, &v);
    assert_eq!(r.status, Status::Exception);
    let ids: Vec<_> = r.findings.iter().map(|f| f.resource.as_str()).collect();
    assert_eq!(
        ids,
        vec!["svc-cache"],
        "only the marked service is in scope"
    );
}

#[test]
fn a_path_that_selects_nothing_is_missing_evidence_never_attested() {
    let r = eval("checks:\n  - all_true: services[*].auth_required", &seed());
    assert_eq!(r.status, Status::Inconclusive);
    assert!(r.notes[0].contains("auth_required"), "{:?}", r.notes);
    // An exception elsewhere wins over missing evidence.
    let r = eval(
        "checks:\n  - all_true: services[*].auth_required\n  - all_true: services[*].tls_enabled",
        &with(seed(), "/services/0/tls_enabled", json!(false)),
    );
    assert_eq!(r.status, Status::Exception);
    assert_eq!(r.findings[0].field, "services[0].tls_enabled");
}

#[test]
fn null_is_observed_not_missing() {
    let v = with(seed(), "/services/0/backups/last_completed_at", Value::Null);
    let r = eval(
        "scope: { each: services, id: service_id }\nchecks:\n  - not_older_than: { path: backups.last_completed_at, max_age: 36h }",
        &v,
    );
    assert_eq!(r.status, Status::Exception);
    assert_eq!(r.findings[0].observed, Value::Null);
}

#[test]
fn equals_and_one_of() {
    let eq = "scope: { each: services, id: service_id }\nchecks:\n  - equals: { path: backups.encryption_algorithm, value: AES-256-GCM }";
    assert_eq!(eval(eq, &seed()).status, Status::Attested);
    let r = eval(
        eq,
        &with(
            seed(),
            "/services/2/backups/encryption_algorithm",
            json!("DES"),
        ),
    );
    assert_eq!(
        (r.status, r.findings[0].observed.clone()),
        (Status::Exception, json!("DES"))
    );
    let one_of = "scope: { each: services, id: service_id }\nchecks:\n  - one_of: { path: \"zones[*]\", values: [de-fra1, nl-ams1, fi-hel1] }";
    assert_eq!(eval(one_of, &seed()).status, Status::Attested);
    let r = eval(
        one_of,
        &with(seed(), "/services/1/zones/1", json!("us-east1")),
    );
    assert_eq!(r.findings[0].field, "zones[1]");
    assert_eq!(r.findings[0].observed, json!("us-east1"));
}

#[test]
fn numeric_bounds() {
    let yaml = "scope: { each: services, id: service_id }\nchecks:\n  - at_least: { path: backups.retention_days, value: 7 }\n  - at_most: { path: backups.retention_days, value: 14 }";
    assert_eq!(eval(yaml, &seed()).status, Status::Attested);
    let r = eval(
        yaml,
        &with(seed(), "/services/0/backups/retention_days", json!(3)),
    );
    assert_eq!(r.findings[0].expected, "an integer of at least 7");
    let r = eval(
        yaml,
        &with(seed(), "/services/0/backups/retention_days", json!(30)),
    );
    assert_eq!(r.findings[0].expected, "an integer of at most 14");
    let r = eval(
        yaml,
        &with(seed(), "/services/0/backups/retention_days", Value::Null),
    );
    assert_eq!(
        r.status,
        Status::Exception,
        "no retention is not at least 7 days"
    );
}

#[test]
fn freshness_is_measured_from_the_period_end() {
    let yaml = "scope: { each: services, id: service_id }\nchecks:\n  - not_older_than: { path: backups.last_completed_at, max_age: 36h }";
    // 36h before 2026-06-22T10:00Z is 2026-06-20T22:00Z, inclusive.
    let edge = with(
        seed(),
        "/services/0/backups/last_completed_at",
        json!("2026-06-20T22:00:00Z"),
    );
    assert_eq!(eval(yaml, &edge).status, Status::Attested);
    let stale = with(
        seed(),
        "/services/0/backups/last_completed_at",
        json!("2026-06-20T21:59:59Z"),
    );
    assert_eq!(eval(yaml, &stale).status, Status::Exception);
    let after = with(
        seed(),
        "/services/0/backups/last_completed_at",
        json!("2026-06-22T10:00:01Z"),
    );
    assert_eq!(
        eval(yaml, &after).status,
        Status::Exception,
        "after the period is no evidence for it"
    );
}

#[test]
fn covers_period_needs_records_from_before_the_start() {
    let yaml = "checks:\n  - covers_period: audit_log.oldest_entry_at";
    assert_eq!(eval(yaml, &seed()).status, Status::Attested);
    let r = eval(
        yaml,
        &with(
            seed(),
            "/audit_log/oldest_entry_at",
            json!("2026-05-22T10:00:01Z"),
        ),
    );
    assert_eq!(r.status, Status::Exception);
    assert_eq!(
        r.findings[0].resource,
        "o1000000-0000-0000-0000-000000000001"
    );
    assert_eq!(r.findings[0].field, "audit_log.oldest_entry_at");
    let r = eval(
        yaml,
        &with(seed(), "/audit_log/oldest_entry_at", Value::Null),
    );
    assert_eq!(
        r.status,
        Status::Exception,
        "an empty audit log covers nothing"
    );
}

#[test]
fn count_with_where_and_within_period() {
    let yaml = "scope: { each: services, id: service_id }\nchecks:\n  - count: { path: backup_runs, where: [ { equals: { path: status, value: succeeded } } ], within_period: completed_at, min: 2 }";
    let run = |id: &str, status: &str, at: &str| json!({"run_id": id, "started_at": at, "completed_at": at, "status": status, "backup_type": "full"});
    let mut v = seed();
    v["services"] = json!([v["services"][0].clone()]);
    assert_eq!(
        eval(yaml, &v).status,
        Status::Inconclusive,
        "no backup_runs section"
    );
    v["services"][0]["backup_runs"] = json!([
        run("a", "succeeded", "2026-06-01T02:00:00Z"),
        run("b", "failed", "2026-06-02T02:00:00Z"),
        run("c", "succeeded", "2026-04-01T02:00:00Z"),
    ]);
    let r = eval(yaml, &v);
    assert_eq!(r.status, Status::Exception);
    assert_eq!(r.findings[0].observed, json!(1));
    v["services"][0]["backup_runs"][1]["status"] = json!("succeeded");
    assert_eq!(eval(yaml, &v).status, Status::Attested);
}

#[test]
fn count_of_zones_for_redundancy() {
    let yaml =
        "scope: { each: services, id: service_id }\nchecks:\n  - count: { path: zones, min: 2 }";
    let r = eval(yaml, &seed());
    let ids: Vec<_> = r.findings.iter().map(|f| f.resource.as_str()).collect();
    assert_eq!(ids, vec!["svc-orders", "svc-cache"]);
}

#[test]
fn any_of_passes_when_one_alternative_holds() {
    let yaml = "checks:\n  - any_of:\n      - equals: { path: audit_log.retention_policy, value: indefinite }\n      - at_least: { path: audit_log.retention_days, value: 180 }";
    assert_eq!(eval(yaml, &seed()).status, Status::Attested);
    let v = with(seed(), "/audit_log/retention_policy", json!("90 days"));
    assert_eq!(
        eval(yaml, &v).status,
        Status::Inconclusive,
        "retention_days is not in the records"
    );
    let mut v = v;
    v["audit_log"]["retention_days"] = json!(90);
    let r = eval(yaml, &v);
    assert_eq!(r.status, Status::Exception);
    assert_eq!(r.findings.len(), 2, "both alternatives explain the failure");
    v["audit_log"]["retention_days"] = json!(365);
    assert_eq!(eval(yaml, &v).status, Status::Attested);
}
