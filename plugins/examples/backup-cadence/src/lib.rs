//! `backup_cadence`: a successful backup at least every `max_gap_hours` hours
//! (default 26) across the whole assessment period, for each service.
//!
//! Evidence: the service's `backup_runs` (the framework's `path`). A gap is
//! measured from the period start to the first successful completion, between
//! completions, and from the last one to the period end; each gap longer than
//! allowed is a finding. JSONPath cannot express this: it needs sorting and
//! differences between timestamps.

use chrono::{DateTime, Utc};
use vouch_plugin_sdk::{plugin, Answer, Finding, Input, Value};

fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

pub fn check(input: Input) -> Answer {
    let max_gap_hours = input
        .config
        .get("max_gap_hours")
        .and_then(Value::as_i64)
        .unwrap_or(26);
    if max_gap_hours <= 0 {
        return Answer::Inconclusive(format!(
            "max_gap_hours must be positive, not {max_gap_hours}"
        ));
    }
    let (Some(start), Some(end)) = (parse(&input.period.start), parse(&input.period.end)) else {
        return Answer::Inconclusive("the period is not RFC 3339".into());
    };
    let Some(runs) = input.evidence.as_array() else {
        return Answer::Inconclusive("the evidence is not a list of backup runs".into());
    };
    let mut done: Vec<DateTime<Utc>> = runs
        .iter()
        .filter(|r| r.get("status").and_then(Value::as_str) == Some("succeeded"))
        .filter_map(|r| {
            r.get("completed_at")
                .and_then(Value::as_str)
                .and_then(parse)
        })
        .filter(|t| *t >= start && *t <= end)
        .collect();
    done.sort();
    let limit = chrono::Duration::hours(max_gap_hours);
    let mut points = vec![start];
    points.extend(done.iter().copied());
    points.push(end);
    let findings: Vec<Finding> = points
        .windows(2)
        .filter(|w| w[1] - w[0] > limit)
        .map(|w| {
            let hours = (w[1] - w[0]).num_minutes() as f64 / 60.0;
            Finding::new(
                "backup_runs",
                format!(
                    "no successful backup from {} to {} ({:.0} h)",
                    fmt(w[0]),
                    fmt(w[1]),
                    hours.floor()
                ),
                format!("a successful backup at least every {max_gap_hours} h"),
            )
        })
        .collect();
    if findings.is_empty() {
        Answer::Pass
    } else {
        Answer::fail(findings)
    }
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

plugin!(name: "backup_cadence", version: "1.0.0", check: check);

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_plugin_sdk::json;

    fn input(runs: Value) -> Input {
        vouch_plugin_sdk::serde_json::from_value(json!({
            "abi_version": 1, "control": {"control_id": "C", "title": "T"}, "config": {"max_gap_hours": 26},
            "resource_id": "svc", "evidence": runs,
            "period": {"start": "2026-06-01T00:00:00Z", "end": "2026-06-03T00:00:00Z"}
        }))
        .unwrap()
    }

    fn run(at: &str, status: &str) -> Value {
        json!({"run_id": at, "started_at": at, "completed_at": at, "status": status, "backup_type": "full"})
    }

    #[test]
    fn daily_backups_pass() {
        let a = check(input(json!([
            run("2026-06-01T02:00:00Z", "succeeded"),
            run("2026-06-02T02:00:00Z", "succeeded")
        ])));
        assert!(matches!(a, Answer::Pass), "{a:?}");
    }

    #[test]
    fn a_missed_day_fails_with_the_gap() {
        let a = check(input(json!([
            run("2026-06-01T02:00:00Z", "succeeded"),
            run("2026-06-02T02:00:00Z", "failed")
        ])));
        let Answer::Fail(f) = a else { panic!("{a:?}") };
        assert_eq!(f.len(), 1);
        assert!(f[0]
            .observed
            .as_str()
            .unwrap()
            .contains("from 2026-06-01T02:00:00Z to 2026-06-03T00:00:00Z (46 h)"));
    }

    #[test]
    fn no_runs_at_all_is_one_long_gap() {
        let Answer::Fail(f) = check(input(json!([]))) else {
            panic!()
        };
        assert_eq!(f.len(), 1);
    }
}
