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
        "framework: t\nname: T\nversion: '1'\nstatement: S\nattests: T\nmonthly_price_eur: 1\nscope_boundary: T\ncontrols:\n  - control_id: C\n    title: T\n    reference: R\n    assertion: A\n    evidence_refs: [x]\n    time_basis: as_of_generation\n{indented}"
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
fn scope_without_the_section_is_inconclusive_and_so_is_an_empty_one() {
    let mut v = seed();
    v["services"] = json!([]);
    let r = eval(PER_SERVICE_TLS, &v);
    assert_eq!(r.status, Status::Inconclusive, "no services prove nothing");
    assert!(
        r.notes[0].contains("an empty population proves nothing"),
        "{:?}",
        r.notes
    );
    let r = eval(
        "scope: { each: members, id: user_id }\nchecks:\n  - all_true: mfa_enabled",
        &seed(),
    );
    assert_eq!(r.status, Status::Inconclusive);
    assert_eq!(r.notes, vec!["the records have no `members`".to_owned()]);
}

#[test]
fn where_filters_the_scope() {
    let yaml = "empty: { status: not_applicable, reason: none is high-risk }\nscope: { each: services, id: service_id, where: [ { equals: { path: high_risk_ai, value: true } } ] }\nchecks:\n  - all_true: tls_enabled";
    let mut v = seed();
    for s in v["services"].as_array_mut().unwrap() {
        s["high_risk_ai"] = json!(false);
    }
    let r = eval(yaml, &v);
    assert_eq!(r.status, Status::NotApplicable);
    assert_eq!(r.population.as_ref().unwrap().out_of_scope, 3);
    assert!(r.notes[0].ends_with("none is high-risk"), "{:?}", r.notes);
    let v = with(v, "/services/2/tls_enabled", json!(false));
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
    let mut v = with(seed(), "/services/0/backups/last_completed_at", Value::Null);
    v["services"][0]["backup_runs"] = json!([]);
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
    let empty_log = with(seed(), "/audit_log/oldest_entry_at", Value::Null);
    let r = eval(yaml, &with(empty_log, "/audit_log/entry_count", json!(0)));
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
    v["audit_log"]["retention_policy"] = json!("365 days");
    assert_eq!(eval(yaml, &v).status, Status::Attested);
}

// --- Fail-closed semantics ---------------------------------------------------

const HIGH_RISK_TLS: &str = "scope: { each: services, id: service_id, where: [ { equals: { path: high_risk_ai, value: true } } ] }\nchecks:\n  - all_true: tls_enabled";

#[test]
fn an_unknown_scope_flag_is_inconclusive_and_names_the_resource_and_field() {
    // svc-orders is high-risk, the other two do not say.
    let mut v = seed();
    v["services"][0]["high_risk_ai"] = json!(true);
    v["services"][1]["high_risk_ai"] = json!(false);
    let r = eval(HIGH_RISK_TLS, &v);
    assert_eq!(r.status, Status::Inconclusive, "{r:#?}");
    assert_eq!(
        (
            r.population.as_ref().unwrap().passed,
            r.population.as_ref().unwrap().missing,
            r.population.as_ref().unwrap().out_of_scope
        ),
        (1, 1, 1)
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("`svc-cache`") && n.contains("high_risk_ai")),
        "{:?}",
        r.notes
    );
}

#[test]
fn a_declared_when_missing_excludes_and_records_why() {
    let yaml = "scope: { each: services, id: service_id, where: [ { equals: { path: high_risk_ai, value: true } } ], when_missing: { action: exclude, reason: unclassified services are treated as not high-risk } }\nchecks:\n  - all_true: tls_enabled";
    let mut v = seed();
    v["services"][0]["high_risk_ai"] = json!(true);
    let r = eval(yaml, &v);
    assert_eq!(r.status, Status::Attested);
    assert_eq!(
        (
            r.population.as_ref().unwrap().passed,
            r.population.as_ref().unwrap().excluded
        ),
        (1, 2)
    );
    let excluded = &r.population.as_ref().unwrap().resources[1];
    assert_eq!(excluded.resource, "svc-events");
    assert!(excluded
        .reason
        .as_deref()
        .unwrap()
        .contains("unclassified services are treated as not high-risk"));
}

#[test]
fn a_wildcard_over_a_partial_population_is_inconclusive_for_the_rest() {
    // Two services say they require credentials; the third does not say.
    let mut v = seed();
    v["services"][0]["auth_required"] = json!(true);
    v["services"][1]["auth_required"] = json!(true);
    let r = eval("checks:\n  - all_true: services[*].auth_required", &v);
    assert_eq!(r.status, Status::Inconclusive, "{r:#?}");
    assert!(
        r.notes.iter().any(|n| n.contains("services[2]")
            && n.contains("svc-cache")
            && n.contains("auth_required")),
        "{:?}",
        r.notes
    );
    v["services"][2]["auth_required"] = json!(true);
    assert_eq!(
        eval("checks:\n  - all_true: services[*].auth_required", &v).status,
        Status::Attested
    );
    // And an empty list proves nothing.
    v["members"] = json!([]);
    let r = eval("checks:\n  - all_true: members[*].mfa_enabled", &v);
    assert_eq!(r.status, Status::Inconclusive);
}

#[test]
fn an_empty_population_means_what_the_control_declares() {
    let mut v = seed();
    v["services"] = json!([]);
    let na = format!("empty: {{ status: not_applicable, reason: no services }}\n{PER_SERVICE_TLS}");
    assert_eq!(eval(&na, &v).status, Status::NotApplicable);
    let at = format!("empty: {{ status: attested, reason: nothing runs }}\n{PER_SERVICE_TLS}");
    let r = eval(&at, &v);
    assert_eq!(r.status, Status::Attested);
    assert!(r.notes[0].contains("nothing runs"), "{:?}", r.notes);
}

#[test]
fn no_failures_among_no_runs_is_not_evidence() {
    let yaml = "scope: { each: services, id: service_id }\nchecks:\n  - count: { path: backup_runs, where: [ { equals: { path: status, value: failed } } ], within_period: started_at, max: 0 }";
    let mut v = seed();
    v["services"] = json!([v["services"][0].clone()]);
    v["services"][0]["backup_runs"] = json!([]);
    let r = eval(yaml, &v);
    assert_eq!(r.status, Status::Inconclusive, "{r:#?}");
    assert!(
        r.notes[0].contains("no items in the period"),
        "{:?}",
        r.notes
    );
    v["services"][0]["backup_runs"] = json!([{"run_id": "a", "started_at": "2026-06-01T02:00:00Z", "completed_at": "2026-06-01T02:20:00Z", "status": "succeeded", "backup_type": "full"}]);
    assert_eq!(eval(yaml, &v).status, Status::Attested);
}

#[test]
fn applies_if_is_three_valued() {
    let yaml = "applies_if:\n  - count: { path: services, where: [ { equals: { path: high_risk_ai, value: true } } ], min: 1 }\nchecks:\n  - covers_period: audit_log.oldest_entry_at";
    let r = eval(yaml, &seed());
    assert_eq!(r.status, Status::Inconclusive, "nobody says: {r:#?}");
    let mut v = seed();
    for s in v["services"].as_array_mut().unwrap() {
        s["high_risk_ai"] = json!(false);
    }
    assert_eq!(eval(yaml, &v).status, Status::NotApplicable);
    v["services"][1]["high_risk_ai"] = json!(true);
    assert_eq!(eval(yaml, &v).status, Status::Attested);
    // One known high-risk service decides, whatever the others say.
    let mut v = seed();
    v["services"][1]["high_risk_ai"] = json!(true);
    assert_eq!(eval(yaml, &v).status, Status::Attested);
}

#[test]
fn max_gap_judges_the_whole_period() {
    let yaml = "scope: { each: services, id: service_id }\nchecks:\n  - max_gap: { path: backup_runs, at: completed_at, where: [ { equals: { path: status, value: succeeded } } ], max: 36h }";
    let run = |id: &str, at: &str| json!({"run_id": id, "started_at": at, "completed_at": at, "status": "succeeded", "backup_type": "full"});
    let mut v = seed();
    v["services"] = json!([v["services"][0].clone()]);
    // Daily from the period start to its end: no gap over 36 hours.
    let daily: Vec<Value> = (23..=31)
        .map(|d| run(&format!("m{d}"), &format!("2026-05-{d}T02:00:00Z")))
        .chain((1..=22).map(|d| run(&format!("j{d}"), &format!("2026-06-{d:02}T02:00:00Z"))))
        .collect();
    v["services"][0]["backups"]["last_completed_at"] = json!("2026-06-22T02:00:00Z");
    v["services"][0]["backup_runs"] = json!(daily);
    assert_eq!(eval(yaml, &v).status, Status::Attested);
    // Two days missing in the middle of the period.
    let mut gap = daily.clone();
    gap.retain(|r| r["run_id"] != "j10" && r["run_id"] != "j11");
    v["services"][0]["backup_runs"] = json!(gap);
    let r = eval(yaml, &v);
    assert_eq!(r.status, Status::Exception);
    let observed = r.findings[0].observed.as_str().unwrap();
    assert!(
        observed.contains("2026-06-09T02:00:00Z to 2026-06-12T02:00:00Z"),
        "{observed}"
    );
    // A failed run fills no gap.
    let mut failed = daily;
    failed[20]["status"] = json!("failed");
    v["services"][0]["backup_runs"] = json!(failed);
    assert_eq!(eval(yaml, &v).status, Status::Exception);
}

#[test]
fn figures_for_another_period_are_no_evidence_for_this_one() {
    let yaml = "checks:\n  - for_period: audit_log.in_period\n  - at_least: { path: audit_log.in_period.entries_in_period, value: 1 }";
    let mut v = seed();
    v["audit_log"]["in_period"] = json!({"start": PERIOD_START, "end": PERIOD_END, "entries_in_period": 10, "longest_gap_hours": 30});
    assert_eq!(eval(yaml, &v).status, Status::Attested);
    v["audit_log"]["in_period"]["start"] = json!("2026-04-22T10:00:00Z");
    let r = eval(yaml, &v);
    assert_eq!(r.status, Status::Inconclusive);
    assert!(
        r.notes[0].contains("not for the packet's period"),
        "{:?}",
        r.notes
    );
}

#[test]
fn the_population_carries_counts_and_observed_values() {
    let r = eval(
        PER_SERVICE_TLS,
        &with(seed(), "/services/1/tls_enabled", json!(false)),
    );
    let p = r.population.as_ref().unwrap();
    assert_eq!(p.each.as_deref(), Some("services"));
    assert_eq!((p.selected, p.in_scope, p.passed, p.failed), (3, 3, 2, 1));
    let ids: Vec<_> = p.resources.iter().map(|r| r.resource.as_str()).collect();
    assert_eq!(ids, vec!["svc-orders", "svc-events", "svc-cache"]);
    assert_eq!(p.resources[1].observed[0].field, "tls_enabled");
    assert_eq!(p.resources[1].observed[0].value, json!(false));
}
