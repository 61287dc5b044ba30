//! "Throughout the period": configuration history, resources that existed for
//! part of the period, and history that does not reach back far enough.
//!
//! Each test starts from `examples/records/full.json` (every service and
//! member with one interval of history from 2025-01-06) and changes the
//! history the way the platform would report an incident.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};
use vouch_engine::eval::{evaluate_control, ControlResult, Interval, Verdict};
use vouch_engine::records::RecordsError;
use vouch_engine::{Period, RecordsDocument, Status};

const START: &str = "2026-05-22T10:00:00Z";
const END: &str = "2026-06-22T10:00:00Z";

fn full() -> Value {
    serde_json::from_str(include_str!("../../examples/records/full.json")).unwrap()
}

fn period(start: &str, end: &str) -> Period {
    Period::new(ts(start), ts(end)).unwrap()
}

fn judge(framework: &str, control: &str, records: &Value, period: &Period) -> ControlResult {
    let doc = RecordsDocument::from_value(records.clone()).unwrap_or_else(|e| panic!("{e}"));
    let set = builtin();
    let c = set.get(framework).unwrap().control(control).unwrap();
    evaluate_control(c, &doc.to_value(), period)
}

/// Splits the single interval of `/services/{i}` (or `/members/{i}`) at
/// `cuts`, and sets `field` to `value` in the interval that starts at
/// `cuts[0]` (so that it holds from `cuts[0]` to `cuts[1]`).
fn incident(
    mut v: Value,
    list: &str,
    i: usize,
    cuts: [&str; 2],
    field: &str,
    value: Value,
) -> Value {
    let history = v[list][i]["history"].as_array().unwrap().clone();
    assert_eq!(history.len(), 1);
    let whole = &history[0];
    let mut parts = vec![];
    let bounds = [
        whole["from"].clone(),
        json!(cuts[0]),
        json!(cuts[1]),
        whole["to"].clone(),
    ];
    for w in bounds.windows(2) {
        let mut iv = whole.clone();
        iv["from"] = w[0].clone();
        iv["to"] = w[1].clone();
        parts.push(iv);
    }
    *parts[1].pointer_mut(field).unwrap() = value;
    v[list][i]["history"] = Value::Array(parts);
    v
}

/// TLS off on `svc-features` from June 1st to 4th, 08:00.
fn tls_incident() -> Value {
    incident(
        full(),
        "services",
        1,
        ["2026-06-01T08:00:00Z", "2026-06-04T08:00:00Z"],
        "/tls_enabled",
        json!(false),
    )
}

#[test]
fn tls_off_for_three_days_mid_period_is_an_exception_naming_those_days() {
    let records = tls_incident();
    let r = judge(
        "soc2",
        "CC6.7-encryption-in-transit",
        &records,
        &period(START, END),
    );
    assert_eq!(r.status, Status::Exception, "{r:#?}");
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(
        (f.resource.as_str(), f.field.as_str()),
        ("svc-features", "tls_enabled")
    );
    assert_eq!(f.observed, json!(false));
    assert_eq!(
        f.interval,
        Some(Interval {
            from: ts("2026-06-01T08:00:00Z"),
            to: ts("2026-06-04T08:00:00Z")
        })
    );
    // The other services, and the same service before and after, passed.
    let p = r.population.unwrap();
    assert_eq!((p.passed, p.failed), (2, 1));
    // The current state (TLS on) did not hide the incident.
    assert_eq!(records["services"][1]["tls_enabled"], json!(true));
}

#[test]
fn a_period_entirely_after_the_fix_is_attested() {
    let records = tls_incident();
    let after = period("2026-06-05T00:00:00Z", END);
    let r = judge("soc2", "CC6.7-encryption-in-transit", &records, &after);
    assert_eq!(r.status, Status::Attested, "{r:#?}");
}

#[test]
fn a_service_deleted_mid_period_is_in_the_population_and_judged_for_its_part() {
    let mut records = full();
    let deleted = "2026-06-10T00:00:00Z";
    let s = &mut records["services"][2];
    s["deleted_at"] = json!(deleted);
    s["history"][0]["to"] = json!(deleted);
    // It ran no backups after its deletion; those before it are kept.
    let runs: Vec<Value> = s["backup_runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["started_at"].as_str().unwrap() < deleted)
        .cloned()
        .collect();
    let last = runs
        .iter()
        .filter_map(|r| r["completed_at"].as_str())
        .max()
        .unwrap()
        .to_owned();
    s["backup_runs"] = Value::Array(runs);
    s["backups"]["last_completed_at"] = json!(last);

    let whole = period(START, END);
    let tls = judge("soc2", "CC6.7-encryption-in-transit", &records, &whole);
    assert_eq!(tls.status, Status::Attested, "{tls:#?}");
    let p = tls.population.as_ref().unwrap();
    assert_eq!((p.selected, p.passed), (3, 3));
    let sessions = p
        .resources
        .iter()
        .find(|r| r.resource == "svc-sessions")
        .unwrap();
    assert!(
        sessions
            .observed
            .iter()
            .any(|o| o.field == "existed" && o.value["to"] == json!(deleted)),
        "{sessions:?}"
    );

    // Backups are judged up to the deletion, not to the period end.
    let backups = judge("soc2", "A1.2-backups-completed", &records, &whole);
    assert_eq!(backups.status, Status::Attested, "{backups:#?}");

    // Its state at the period end is not judged: it no longer existed.
    let recent = judge("soc2", "A1.2-backups-recent", &records, &whole);
    let r = recent.population.unwrap();
    let gone = r
        .resources
        .iter()
        .find(|r| r.resource == "svc-sessions")
        .unwrap();
    assert_eq!(gone.verdict, Verdict::OutOfScope, "{gone:?}");

    // A period after the deletion does not judge it at all.
    let later = period("2026-06-15T00:00:00Z", END);
    let r = judge("soc2", "CC6.7-encryption-in-transit", &records, &later);
    let gone = r.population.unwrap();
    let s = gone
        .resources
        .iter()
        .find(|r| r.resource == "svc-sessions")
        .unwrap();
    assert_eq!(s.verdict, Verdict::OutOfScope);
    assert!(s
        .reason
        .as_deref()
        .unwrap()
        .contains("did not exist during the period"));
}

#[test]
fn a_member_removed_mid_period_without_mfa_is_a_finding() {
    let mut records = full();
    let removed = "2026-06-05T00:00:00Z";
    let m = &mut records["members"][2];
    m["removed_at"] = json!(removed);
    m["mfa_enabled"] = json!(false);
    m["history"] = json!([
        {"from": "2025-01-06T09:00:00Z", "to": "2026-06-01T00:00:00Z", "role": m["role"], "mfa_enabled": true},
        {"from": "2026-06-01T00:00:00Z", "to": removed, "role": m["role"], "mfa_enabled": false},
    ]);
    let r = judge("soc2", "CC6.6-mfa", &records, &period(START, END));
    assert_eq!(r.status, Status::Exception, "{r:#?}");
    let f = &r.findings[0];
    assert_eq!(
        (f.resource.as_str(), f.field.as_str()),
        ("carol", "mfa_enabled")
    );
    assert_eq!(
        f.interval,
        Some(Interval {
            from: ts("2026-06-01T00:00:00Z"),
            to: ts(removed)
        })
    );
    // The owner count is of those who are members at the period end.
    let owners = judge("soc2", "CC6.3-ownership", &records, &period(START, END));
    assert_eq!(owners.status, Status::Attested, "{owners:#?}");
}

#[test]
fn history_that_starts_inside_the_period_is_inconclusive_with_the_reason() {
    let mut records = full();
    for s in records["services"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("created_at");
        s["history"][0]["from"] = json!("2026-06-01T00:00:00Z");
    }
    let r = judge("soc2", "CC6.1", &records, &period(START, END));
    assert_eq!(r.status, Status::Inconclusive, "{r:#?}");
    assert!(
        r.notes
            .iter()
            .any(|n| n == "no configuration history before 2026-06-01T00:00:00Z for `svc-orders`"),
        "{:?}",
        r.notes
    );
    // A known failure in the part that is known is still an exception.
    let failing = incident(
        records,
        "services",
        0,
        ["2026-06-02T00:00:00Z", "2026-06-03T00:00:00Z"],
        "/storage_encrypted",
        json!(false),
    );
    let r = judge("soc2", "CC6.1", &failing, &period(START, END));
    assert_eq!(r.status, Status::Exception, "{r:#?}");
}

#[test]
fn a_period_before_any_history_is_inconclusive() {
    let records = full();
    let before = period("2024-11-01T00:00:00Z", "2024-12-01T00:00:00Z");
    // The services were created in 2025: they did not exist then.
    let r = judge("soc2", "CC6.1", &records, &before);
    assert_eq!(r.status, Status::Inconclusive, "{r:#?}");
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("an empty population proves nothing")));
    // Without a creation date nothing says they did not exist: unknown.
    let mut unknown = records.clone();
    for s in unknown["services"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("created_at");
    }
    let r = judge("soc2", "CC6.1", &unknown, &before);
    assert_eq!(r.status, Status::Inconclusive, "{r:#?}");
    assert!(
        r.notes
            .iter()
            .any(|n| n
                .contains("no configuration history for `svc-orders` from 2024-11-01T00:00:00Z")),
        "{:?}",
        r.notes
    );
}

#[test]
fn a_scope_flag_that_changes_judges_only_the_part_in_scope() {
    // svc-features is high-risk AI; it was not yet so until June 10th, and
    // in May it had one zone only.
    let mut records = full();
    let s = &mut records["services"][1];
    let whole = s["history"][0].clone();
    let mut before = whole.clone();
    before["to"] = json!("2026-06-10T00:00:00Z");
    before["high_risk_ai"] = json!(false);
    before["zones"] = json!([whole["zones"][0]]);
    let locations: Vec<Value> = whole["locations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["role"] != "zone" || l["zone"] == whole["zones"][0])
        .cloned()
        .collect();
    before["locations"] = Value::Array(locations);
    let mut after = whole;
    after["from"] = json!("2026-06-10T00:00:00Z");
    s["history"] = json!([before, after]);
    let r = judge(
        "eu_ai_act",
        "Art15-4-redundancy",
        &records,
        &period(START, END),
    );
    assert_eq!(r.status, Status::Attested, "{r:#?}");
}

fn refused(records: Value) -> String {
    match RecordsDocument::from_value(records) {
        Err(e @ RecordsError::Contradiction { .. }) => e.to_string(),
        other => panic!("not refused as a contradiction: {other:?}"),
    }
}

#[test]
fn contradictory_history_is_refused_where_it_enters() {
    let split = incident(
        full(),
        "services",
        0,
        ["2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"],
        "/tls_enabled",
        json!(false),
    );
    let mut gap = split.clone();
    gap["services"][0]["history"][1]["from"] = json!("2026-06-01T01:00:00Z");
    let e = refused(gap);
    assert!(
        e.contains("$.services[0].history[1].from") && e.contains("a gap"),
        "{e}"
    );

    let mut overlap = split.clone();
    overlap["services"][0]["history"][1]["from"] = json!("2026-05-31T00:00:00Z");
    assert!(refused(overlap).contains("an overlap"));

    let mut current = split.clone();
    current["services"][0]["tls_enabled"] = json!(false);
    let e = refused(current);
    assert!(
        e.contains("$.services[0].tls_enabled")
            && e.contains("$.services[0].history[2].tls_enabled"),
        "{e}"
    );

    let mut early = split.clone();
    early["services"][0]["created_at"] = json!("2025-06-01T00:00:00Z");
    assert!(refused(early).contains("before the resource began"));

    let mut late = split.clone();
    late["services"][0]["deleted_at"] = json!("2026-06-20T00:00:00Z");
    assert!(refused(late).contains("after the resource ended"));

    let mut inside = split.clone();
    inside["services"][0]["history"][1]["backups"]["encryption_enabled"] = json!(false);
    let e = refused(inside);
    assert!(
        e.contains("$.services[0].history[1].backup_encryption_enabled"),
        "{e}"
    );

    let mut member = full();
    member["members"][0]["history"][0]["role"] = json!("admin");
    assert!(refused(member).contains("$.members[0].role"));

    // A member who was away: the gap in her history is refused unless it is
    // exactly one of her absences.
    let mut away = full();
    let m = &mut away["members"][1];
    let whole = m["history"][0].clone();
    let mut first = whole.clone();
    first["to"] = json!("2026-06-01T00:00:00Z");
    let mut second = whole;
    second["from"] = json!("2026-06-05T00:00:00Z");
    m["history"] = json!([first, second]);
    let e = refused(away.clone());
    assert!(e.contains("a gap"), "{e}");
    away["members"][1]["absent"] =
        json!([{"from": "2026-06-01T00:00:00Z", "to": "2026-06-05T00:00:00Z"}]);
    let r = judge("soc2", "CC6.6-mfa", &away, &period(START, END));
    assert_eq!(r.status, Status::Attested, "{r:#?}");
    away["members"][1]["absent"] =
        json!([{"from": "2026-06-01T00:00:00Z", "to": "2026-06-04T00:00:00Z"}]);
    assert!(refused(away).contains("not a gap between two intervals"));

    let mut backwards = full();
    backwards["members"][0]["removed_at"] = json!("2024-01-01T00:00:00Z");
    assert!(refused(backwards).contains("before it began"));
}
