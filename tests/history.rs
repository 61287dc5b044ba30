//! Configuration history end to end, on SQLite and PostgreSQL: dated changes
//! imported through the admin API, reconstructed for a past period, and
//! judged across all of it by the packets the server signs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use support::harness::current_backend;
use support::*;

const MARCH: (&str, &str) = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
const APRIL: (&str, &str) = ("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z");

fn service(id: &str, org: &str) -> Value {
    json!({
        "service_id": id, "organization_id": org, "name": id, "database_type": "postgresql",
        "version": "17", "status": "running", "zones": ["de-fra1", "nl-ams1"], "storage_region": "de-fra1",
        "storage_encrypted": true, "backup_encryption_enabled": true, "tls_enabled": true, "auth_required": true,
        "backup_policy": {"schedule_enabled": true, "schedule_cron": "0 2 * * *", "retention_days": 7,
                          "encryption_algorithm": "AES-256-GCM", "storage_zone": "fi-hel1"}
    })
}

fn created(id: &str, at: &str) -> Value {
    json!({"change_id": format!("{id}-created"), "service_id": id, "at": at, "event": "created", "set": {
        "zones": ["de-fra1", "nl-ams1"], "storage_region": "de-fra1", "storage_encrypted": true,
        "backup_encryption_enabled": true, "tls_enabled": true, "auth_required": true,
        "backup_schedule_enabled": true, "backup_schedule_cron": "0 2 * * *", "backup_retention_days": 7,
        "backup_encryption_algorithm": "AES-256-GCM", "backup_storage_zone": "fi-hel1"}})
}

fn change(id: &str, service: &str, at: &str, set: Value) -> Value {
    json!({"change_id": id, "service_id": service, "at": at, "event": "updated", "set": set})
}

/// Organization `hist`: `svc-a` (TLS off from March 10th to 13th),
/// `svc-b` (deleted on March 15th), owner `h-owner`, and `h-temp`, who
/// never enrolled MFA and left on March 20th. The service changes come in
/// three groups: creation, the incident, the deletion.
fn batches() -> [Value; 3] {
    let base = json!({
        "organizations": [{"id": "hist", "name": "History Org", "billing_email": "b@hist.example"}],
        "users": [{"username": "h-owner", "password": "pw-owner", "mfa_enabled": true},
                  {"username": "h-temp", "password": "pw-temp", "mfa_enabled": false}],
        "memberships": [{"organization_id": "hist", "username": "h-owner", "role": "owner"}],
        "services": [service("svc-a", "hist"), service("svc-b", "hist")],
        "service_changes": [created("svc-a", "2026-01-05T00:00:00Z"), created("svc-b", "2026-01-05T00:00:00Z")],
        "member_changes": [
            {"change_id": "m-owner", "organization_id": "hist", "username": "h-owner", "at": "2026-01-05T00:00:00Z",
             "event": "added", "set": {"role": "owner", "mfa_enabled": true}},
            {"change_id": "m-temp", "organization_id": "hist", "username": "h-temp", "at": "2026-01-05T00:00:00Z",
             "event": "added", "set": {"role": "member", "mfa_enabled": false}},
            {"change_id": "m-temp-left", "organization_id": "hist", "username": "h-temp", "at": "2026-03-20T00:00:00Z",
             "event": "removed"}
        ]
    });
    let incident = json!({"service_changes": [
        change("a-tls-on", "svc-a", "2026-03-13T00:00:00Z", json!({"tls_enabled": true})),
        change("a-tls-off", "svc-a", "2026-03-10T00:00:00Z", json!({"tls_enabled": false})),
    ]});
    let deletion = json!({"service_changes": [
        {"change_id": "b-deleted", "service_id": "svc-b", "at": "2026-03-15T00:00:00Z", "event": "deleted"}
    ]});
    [base, incident, deletion]
}

fn admin_ok(s: &Server, batch: &Value) -> Value {
    let r = s.admin(batch);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["applied"].clone()
}

fn records(s: &Server, (start, end): (&str, &str)) -> Value {
    let r = s.get(
        &format!("/organizations/hist/records?period_start={start}&period_end={end}"),
        Auth::Basic("h-owner", "pw-owner"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn subscribe(s: &Server, org: &str, user: &str, pass: &str) {
    let r = s.send(
        "PUT",
        &format!("/organizations/{org}/compliance-subscriptions/soc2"),
        Auth::Basic(user, pass),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn packet(s: &Server, org: &str, user: &str, pass: &str, (start, end): (&str, &str)) -> Value {
    let body = json!({"framework": "soc2", "period_start": start, "period_end": end});
    let r = request(
        "POST",
        &s.url(&format!("/organizations/{org}/compliance-reports")),
        Auth::Basic(user, pass),
        Some(&serde_json::to_vec(&body).unwrap()),
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["packet"].clone()
}

fn control<'a>(packet: &'a Value, id: &str) -> &'a Value {
    packet["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["control_id"] == id)
        .unwrap_or_else(|| panic!("no control {id}"))
}

fn resource<'a>(c: &'a Value, id: &str) -> Option<&'a Value> {
    c["population"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == id)
}

/// A server with the demo's signing key (its organizations are not used).
fn hist_server(store: &Store) -> Server {
    Server::start(store)
}

fn a_past_period_is_judged_across_all_of_it() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = hist_server(&store);
    for b in batches() {
        admin_ok(&s, &b);
    }
    subscribe(&s, "hist", "h-owner", "pw-owner");

    let doc = records(&s, MARCH);
    let a = &doc["services"][0];
    assert_eq!(a["service_id"], "svc-a");
    let froms: Vec<&str> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["from"].as_str().unwrap())
        .collect();
    assert_eq!(
        froms,
        [MARCH.0, "2026-03-10T00:00:00Z", "2026-03-13T00:00:00Z"],
        "{backend:?}"
    );
    assert_eq!(a["created_at"], "2026-01-05T00:00:00Z");
    let b = &doc["services"][1];
    assert_eq!(
        (b["service_id"].as_str(), b["deleted_at"].as_str()),
        (Some("svc-b"), Some("2026-03-15T00:00:00Z"))
    );
    assert_eq!(b["history"][0]["to"], "2026-03-15T00:00:00Z");
    let temp = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == "h-temp")
        .expect("a member removed during the period is in the records");
    assert_eq!(temp["removed_at"], "2026-03-20T00:00:00Z");

    let march = packet(&s, "hist", "h-owner", "pw-owner", MARCH);
    let tls = control(&march, "CC6.7-encryption-in-transit");
    assert_eq!(tls["status"], "exception", "{backend:?}: {tls:#}");
    assert_eq!(tls["findings"].as_array().unwrap().len(), 1);
    let f = &tls["findings"][0];
    assert_eq!(
        (&f["resource"], &f["field"], &f["observed"]),
        (&json!("svc-a"), &json!("tls_enabled"), &json!(false))
    );
    assert_eq!(
        f["interval"],
        json!({"from": "2026-03-10T00:00:00Z", "to": "2026-03-13T00:00:00Z"})
    );
    // The deleted service is in the population, judged until its deletion.
    let gone = resource(tls, "svc-b").expect("svc-b in the population");
    assert_eq!(gone["verdict"], "passed");
    assert_eq!(tls["population"]["selected"], 2);
    // The member who left without MFA is a finding for the time she was one.
    let mfa = control(&march, "CC6.6-mfa");
    assert_eq!(mfa["status"], "exception", "{mfa:#}");
    let f = &mfa["findings"][0];
    assert_eq!(
        (&f["resource"], &f["field"]),
        (&json!("h-temp"), &json!("mfa_enabled"))
    );
    assert_eq!(
        f["interval"],
        json!({"from": MARCH.0, "to": "2026-03-20T00:00:00Z"})
    );
    assert_eq!(control(&march, "CC6.3-ownership")["status"], "attested");

    // April is after the fix, the deletion and the departure.
    let april = packet(&s, "hist", "h-owner", "pw-owner", APRIL);
    let tls = control(&april, "CC6.7-encryption-in-transit");
    assert_eq!(tls["status"], "attested", "{backend:?}: {tls:#}");
    assert_eq!(tls["population"]["selected"], 1, "svc-b no longer exists");
    assert_eq!(control(&april, "CC6.6-mfa")["status"], "attested");
    // The membership itself ended with the history: h-temp cannot read.
    let r = s.get(
        "/organizations/hist/compliance-reports",
        Auth::Basic("h-temp", "pw-temp"),
    );
    assert_eq!(r.status, 404, "{}", r.text());

    // The legacy posture report is of now: a service deleted two days ago
    // is in this month's records, but not in the posture.
    let two_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 2 * 86_400;
    let gone = vouch_engine::Timestamp::from_unix_seconds(two_days_ago).unwrap();
    admin_ok(
        &s,
        &json!({"services": [service("svc-c", "hist")], "service_changes": [
            created("svc-c", "2026-01-05T00:00:00Z"),
            {"change_id": "c-deleted", "service_id": "svc-c", "at": gone, "event": "deleted"}
        ]}),
    );
    let r = s.get(
        "/organizations/hist/compliance-report",
        Auth::Basic("h-owner", "pw-owner"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let legacy = r.json();
    assert_eq!(legacy["report"]["service_count"], 1, "{legacy:#}");
    assert_eq!(legacy["report"]["services"][0]["service_id"], "svc-a");

    // Before the services were created there was nothing to judge.
    let before = packet(
        &s,
        "hist",
        "h-owner",
        "pw-owner",
        ("2025-11-01T00:00:00Z", "2025-12-01T00:00:00Z"),
    );
    let tls = control(&before, "CC6.7-encryption-in-transit");
    assert_eq!(tls["status"], "inconclusive", "{tls:#}");
}

fn a_period_before_any_history_is_inconclusive_with_the_reason() {
    let backend = current_backend();
    let store = Store::new(backend);
    let s = hist_server(&store);
    // Only the current configuration, as clients sent it before history:
    // it is recorded from now on, and says nothing of March.
    admin_ok(
        &s,
        &json!({
            "organizations": [{"id": "hist", "name": "History Org", "billing_email": "b@hist.example"}],
            "users": [{"username": "h-owner", "password": "pw-owner", "mfa_enabled": true}],
            "memberships": [{"organization_id": "hist", "username": "h-owner", "role": "owner"}],
            "services": [service("svc-a", "hist")]
        }),
    );
    subscribe(&s, "hist", "h-owner", "pw-owner");
    let march = packet(&s, "hist", "h-owner", "pw-owner", MARCH);
    for id in ["CC6.1", "CC6.7-encryption-in-transit", "CC6.6-mfa"] {
        let c = control(&march, id);
        assert_eq!(c["status"], "inconclusive", "{backend:?} {id}: {c:#}");
        let notes = c["notes"].to_string();
        assert!(
            notes.contains(&format!(
                "no configuration history for `{}` from {} to {}",
                if id == "CC6.6-mfa" {
                    "h-owner"
                } else {
                    "svc-a"
                },
                MARCH.0,
                MARCH.1
            )),
            "{id}: {notes}"
        );
    }
}

/// The snapshot of March with the changes arriving in `order`.
fn snapshot_after(order: &[Value]) -> Value {
    let store = Store::new(current_backend());
    let s = hist_server(&store);
    for b in order {
        admin_ok(&s, b);
    }
    let mut doc = records(&s, MARCH);
    doc.as_object_mut().unwrap().remove("audit_log");
    doc
}

fn out_of_order_and_replayed_batches_give_the_same_snapshot() {
    let [base, incident, deletion] = batches();
    let in_order = snapshot_after(&[base.clone(), incident.clone(), deletion.clone()]);

    // Everything in one batch, in reverse order.
    let mut one = base.clone();
    let mut all: Vec<Value> = [&base, &incident, &deletion]
        .iter()
        .flat_map(|b| b["service_changes"].as_array().unwrap().clone())
        .collect();
    all.reverse();
    one["service_changes"] = json!(all);
    let mut members = one["member_changes"].as_array().unwrap().clone();
    members.reverse();
    one["member_changes"] = json!(members);
    assert_eq!(snapshot_after(&[one.clone()]), in_order);

    // The deletion before the incident that preceded it, then every batch again.
    let store = Store::new(current_backend());
    let s = hist_server(&store);
    admin_ok(&s, &base);
    admin_ok(&s, &deletion);
    admin_ok(&s, &incident);
    let first = records(&s, MARCH);
    for b in [&base, &incident, &deletion, &one] {
        let applied = admin_ok(&s, b);
        assert_eq!(
            (&applied["service_changes"], &applied["member_changes"]),
            (&json!(0), &json!(0)),
            "a replay records nothing: {applied}"
        );
    }
    let mut again = records(&s, MARCH);
    let mut first = first;
    for d in [&mut first, &mut again] {
        d.as_object_mut().unwrap().remove("audit_log");
    }
    assert_eq!(again, first);
    assert_eq!(again, in_order);
}

fn contradictory_history_is_refused_whole() {
    let store = Store::new(current_backend());
    let s = hist_server(&store);
    let [base, _, deletion] = batches();
    admin_ok(&s, &base);
    admin_ok(&s, &deletion);
    let before = records(&s, MARCH);
    let refused = |batch: Value, path: &str, words: &str| {
        let r = s.admin(&batch);
        assert_eq!(r.status, 400, "{batch}: {}", r.text());
        let text = r.text();
        assert!(
            text.contains(path) && text.contains(words),
            "{batch}: {text}"
        );
    };
    // A change after the deletion, with a new valid organization beside it.
    let mut after_deletion = json!({"service_changes": [
        change("b-late", "svc-b", "2026-03-16T00:00:00Z", json!({"tls_enabled": false}))
    ]});
    after_deletion["organizations"] =
        json!([{"id": "newco", "name": "New", "billing_email": "n@x.example"}]);
    refused(
        after_deletion,
        "$.service_changes[0]",
        "comes after the service was deleted",
    );
    // A second creation.
    refused(
        json!({"service_changes": [created("svc-a", "2026-02-01T00:00:00Z")]}),
        "$.service_changes[0].change_id",
        "already recorded with other content",
    );
    let mut second = created("svc-a", "2026-02-01T00:00:00Z");
    second["change_id"] = json!("svc-a-created-again");
    refused(
        json!({"service_changes": [second]}),
        "$.service_changes[0]",
        "creates the service",
    );
    // The future, a partial creation, an update that sets nothing, an
    // unknown field, an unknown service, an unknown zone.
    refused(
        json!({"service_changes": [change("f", "svc-a", "2999-01-01T00:00:00Z", json!({"tls_enabled": false}))]}),
        "$.service_changes[0].at",
        "in the future",
    );
    refused(
        json!({"service_changes": [{"change_id": "p", "service_id": "svc-a", "at": "2026-01-01T00:00:00Z", "event": "created", "set": {"tls_enabled": true}}]}),
        "$.service_changes[0].set",
        "whole configuration",
    );
    refused(
        json!({"service_changes": [change("e", "svc-a", "2026-02-01T00:00:00Z", json!({}))]}),
        "$.service_changes[0].set",
        "names the fields",
    );
    refused(
        json!({"service_changes": [change("u", "svc-a", "2026-02-01T00:00:00Z", json!({"colour": "red"}))]}),
        "$.service_changes[0].set",
        "unknown field",
    );
    refused(
        json!({"service_changes": [change("x", "svc-nope", "2026-02-01T00:00:00Z", json!({"tls_enabled": true}))]}),
        "$.service_changes[0].service_id",
        "unknown service",
    );
    refused(
        json!({"service_changes": [change("z", "svc-a", "2026-02-01T00:00:00Z", json!({"zones": ["mars-1"]}))]}),
        "$.service_changes[0].set.zones[0]",
        "unknown zone",
    );
    // An algorithm for backups that the history says are not encrypted.
    refused(
        json!({"service_changes": [change("k", "svc-a", "2026-02-01T00:00:00Z", json!({"backup_encryption_enabled": false}))]}),
        "$.service_changes[0]",
        "not encrypted",
    );
    // A member removed twice.
    refused(
        json!({"member_changes": [{"change_id": "again", "organization_id": "hist", "username": "h-temp", "at": "2026-03-25T00:00:00Z", "event": "removed"}]}),
        "$.member_changes[0]",
        "comes after the member was removed",
    );
    // Nothing of a refused batch stayed: not its organization ...
    let r = s.admin(&json!({"memberships": [{"organization_id": "newco", "username": "h-owner", "role": "owner"}]}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unknown organization `newco`"));
    // ... nor any of its changes.
    let after = records(&s, MARCH);
    for part in ["services", "members"] {
        assert_eq!(after[part], before[part], "{part}");
    }
}

fn a_member_who_left_and_came_back_is_judged_for_both_stints() {
    let store = Store::new(current_backend());
    let s = hist_server(&store);
    let [base, incident, deletion] = batches();
    for b in [&base, &incident, &deletion] {
        admin_ok(&s, b);
    }
    let stint = |id: &str, at: &str, event: &str| {
        let mut c = json!({"change_id": id, "organization_id": "hist", "username": "h-back", "at": at, "event": event});
        if event == "added" {
            c["set"] = json!({"role": "admin", "mfa_enabled": true});
        }
        c
    };
    admin_ok(
        &s,
        &json!({
            "users": [{"username": "h-back", "password": "pw-back", "mfa_enabled": true}],
            "member_changes": [
                stint("back-1", "2026-01-05T00:00:00Z", "added"),
                stint("back-left", "2026-03-05T00:00:00Z", "removed"),
                stint("back-2", "2026-03-10T00:00:00Z", "added"),
            ]
        }),
    );
    let doc = records(&s, MARCH);
    let back = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == "h-back")
        .unwrap();
    assert_eq!(
        back["absent"],
        json!([{"from": "2026-03-05T00:00:00Z", "to": "2026-03-10T00:00:00Z"}]),
        "{back:#}"
    );
    assert!(
        back.get("removed_at").is_none(),
        "a member again at the period end"
    );
    subscribe(&s, "hist", "h-owner", "pw-owner");
    let march = packet(&s, "hist", "h-owner", "pw-owner", MARCH);
    let mfa = control(&march, "CC6.6-mfa");
    let judged = resource(mfa, "h-back").unwrap();
    assert_eq!(judged["verdict"], "passed", "{mfa:#}");
    assert!(
        !mfa["notes"]
            .to_string()
            .contains("no configuration history"),
        "{mfa:#}"
    );
}

fn main() -> std::process::ExitCode {
    use support::harness::run;
    run(&[
        case!(a_past_period_is_judged_across_all_of_it).on_backends(),
        case!(a_period_before_any_history_is_inconclusive_with_the_reason).on_backends(),
        case!(out_of_order_and_replayed_batches_give_the_same_snapshot).on_backends(),
        case!(contradictory_history_is_refused_whole).on_backends(),
        case!(a_member_who_left_and_came_back_is_judged_for_both_stints).on_backends(),
    ])
}
