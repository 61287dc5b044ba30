//! Records that contradict themselves are refused where they enter, with the
//! JSONPath of both values: a verdict computed from a contradiction would be
//! whichever half a check happened to read.
//!
//! Every rule here is also listed in the description of the type it concerns
//! in `engine/schema/records.schema.json`.

use std::collections::BTreeSet;

use crate::records::{AuditLog, Location, RecordsDocument, RecordsError, Service, ServiceInterval};
use crate::time::Timestamp;

fn refuse(path: String, other: String, message: impl Into<String>) -> RecordsError {
    RecordsError::Contradiction {
        path,
        other,
        message: message.into(),
    }
}

/// Checks every rule; the first contradiction found is returned.
pub fn check(doc: &RecordsDocument) -> Result<(), RecordsError> {
    audit_log(&doc.audit_log)?;
    for (i, s) in doc.services.iter().enumerate() {
        service(&format!("$.services[{i}]"), s)?;
    }
    if let Some(members) = &doc.members {
        let mut seen = BTreeSet::new();
        for (i, m) in members.iter().enumerate() {
            if !seen.insert(m.user_id.as_str()) {
                let first = members
                    .iter()
                    .position(|x| x.user_id == m.user_id)
                    .unwrap_or(0);
                return Err(refuse(
                    format!("$.members[{i}].user_id"),
                    format!("$.members[{first}].user_id"),
                    format!("member `{}` is listed twice", m.user_id),
                ));
            }
            let base = format!("$.members[{i}]");
            let absent: Vec<(Timestamp, Timestamp)> =
                m.absent.iter().map(|a| (a.from, a.to)).collect();
            let lifetime = Lifetime {
                base: &base,
                start: ("added_at", m.added_at),
                end: ("removed_at", m.removed_at),
                absent: &absent,
            };
            if let Some(history) = &m.history {
                lifetime.check(history.iter().map(|h| (h.from, h.to)))?;
                if let Some(last) = history.last() {
                    let at = format!("{base}.history[{}]", history.len() - 1);
                    if last.role != m.role || last.mfa_enabled != m.mfa_enabled {
                        return Err(refuse(
                            format!("{base}.role"),
                            at,
                            "the member's role and MFA differ from those of the last interval of its history",
                        ));
                    }
                }
            } else {
                lifetime.check(std::iter::empty())?;
            }
        }
    }
    Ok(())
}

/// The lifetime of a resource and the intervals of its history.
struct Lifetime<'a> {
    base: &'a str,
    start: (&'static str, Option<Timestamp>),
    end: (&'static str, Option<Timestamp>),
    /// Gaps the history may have because the resource did not exist then.
    absent: &'a [(Timestamp, Timestamp)],
}

impl Lifetime<'_> {
    /// The intervals are in order, each ends after it starts and where the
    /// next begins (or where one of the resource's absences ends), and none
    /// lies outside the resource's lifetime.
    fn check(
        &self,
        intervals: impl Iterator<Item = (Timestamp, Timestamp)>,
    ) -> Result<(), RecordsError> {
        let intervals: Vec<(Timestamp, Timestamp)> = intervals.collect();
        let base = self.base;
        for (k, gap) in self.absent.iter().enumerate() {
            let between = intervals.windows(2).any(|w| (w[0].1, w[1].0) == *gap);
            if !between {
                return Err(refuse(
                    format!("{base}.absent[{k}]"),
                    format!("{base}.history"),
                    format!(
                        "an absence from {} to {} that is not a gap between two intervals",
                        gap.0, gap.1
                    ),
                ));
            }
        }
        let intervals = intervals.into_iter();
        let (start_field, start) = self.start;
        let (end_field, end) = self.end;
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                return Err(refuse(
                    format!("{base}.{end_field}"),
                    format!("{base}.{start_field}"),
                    format!("removed or deleted at {e}, before it began at {s}"),
                ));
            }
        }
        let mut previous: Option<Timestamp> = None;
        for (j, (from, to)) in intervals.enumerate() {
            let at = |f: &str| format!("{base}.history[{j}].{f}");
            if to <= from {
                return Err(refuse(
                    at("to"),
                    at("from"),
                    format!("an interval from {from} to {to} ends before it starts"),
                ));
            }
            if let Some(prev) = previous {
                if prev != from && !self.absent.contains(&(prev, from)) {
                    let what = if from > prev { "a gap" } else { "an overlap" };
                    return Err(refuse(
                        at("from"),
                        format!("{base}.history[{}].to", j - 1),
                        format!("{what} in the history: one interval ends at {prev}, the next starts at {from}"),
                    ));
                }
            }
            if start.is_some_and(|s| from < s) {
                return Err(refuse(
                    at("from"),
                    format!("{base}.{start_field}"),
                    format!("configuration at {from}, before the resource began"),
                ));
            }
            if end.is_some_and(|e| to > e) {
                return Err(refuse(
                    at("to"),
                    format!("{base}.{end_field}"),
                    format!("configuration until {to}, after the resource ended"),
                ));
            }
            previous = Some(to);
        }
        Ok(())
    }
}

/// `90 days` -> 90.
fn policy_days(policy: &str) -> Option<u32> {
    let n = policy.trim().strip_suffix("days")?.trim();
    n.parse().ok()
}

fn audit_log(a: &AuditLog) -> Result<(), RecordsError> {
    let policy = "$.audit_log.retention_policy".to_owned();
    let days = "$.audit_log.retention_days".to_owned();
    match (a.retention_policy.trim(), a.retention_days) {
        ("indefinite", Some(d)) => {
            return Err(refuse(
                policy,
                days,
                format!("an indefinite retention cannot also be {d} days"),
            ))
        }
        (p, Some(d)) if policy_days(p).is_some_and(|n| n != d) => {
            return Err(refuse(
                policy,
                days,
                format!("the policy says `{p}` but retention_days is {d}"),
            ))
        }
        _ => {}
    }
    let oldest = "$.audit_log.oldest_entry_at".to_owned();
    let count = "$.audit_log.entry_count".to_owned();
    match (a.entry_count, a.oldest_entry_at) {
        (0, Some(t)) => {
            return Err(refuse(
                oldest,
                count,
                format!("an oldest entry at {t} in a log of 0 entries"),
            ))
        }
        (n, None) if n > 0 => {
            return Err(refuse(
                oldest,
                count,
                format!("no oldest entry in a log of {n} entries"),
            ))
        }
        _ => {}
    }
    if let Some(p) = &a.in_period {
        let at = |f: &str| format!("$.audit_log.in_period.{f}");
        if p.start > p.end {
            return Err(refuse(
                at("start"),
                at("end"),
                "the period starts after it ends",
            ));
        }
        if p.entries_in_period > a.entry_count {
            return Err(refuse(
                at("entries_in_period"),
                count,
                format!(
                    "{} entries in the period but {} in the whole log",
                    p.entries_in_period, a.entry_count
                ),
            ));
        }
        if p.entries_in_period > 0 && a.oldest_entry_at.is_some_and(|o| o > p.end) {
            return Err(refuse(
                at("entries_in_period"),
                oldest,
                "entries in the period, but the oldest entry is after the period end",
            ));
        }
        let secs = (p.end.unix_seconds() - p.start.unix_seconds()).max(0) as u64;
        let period_hours = secs.div_ceil(3600);
        if p.longest_gap_hours > period_hours {
            return Err(refuse(
                at("longest_gap_hours"),
                at("end"),
                format!(
                    "a gap of {} hours in a period of {period_hours} hours",
                    p.longest_gap_hours
                ),
            ));
        }
        if p.entries_in_period == 0 && p.longest_gap_hours < period_hours {
            return Err(refuse(
                at("longest_gap_hours"),
                at("entries_in_period"),
                "with no entries in the period, the longest gap is the whole period",
            ));
        }
    }
    Ok(())
}

/// The fields of a service that its configuration history records, borrowed
/// from the service itself or from one interval of its history: the rules
/// about them are the same for both.
struct Config<'a> {
    zones: &'a [String],
    storage_region: &'a str,
    eu_residency: bool,
    backup_encryption_enabled: bool,
    encryption_enabled: bool,
    encryption_algorithm: Option<&'a str>,
    storage_zone: Option<&'a str>,
    segregated: Option<bool>,
    locations: Option<&'a [Location]>,
}

impl<'a> Config<'a> {
    fn of_service(s: &'a Service) -> Self {
        Config {
            zones: &s.zones,
            storage_region: &s.storage_region,
            eu_residency: s.eu_residency,
            backup_encryption_enabled: s.backup_encryption_enabled,
            encryption_enabled: s.backups.encryption_enabled,
            encryption_algorithm: s.backups.encryption_algorithm.as_deref(),
            storage_zone: s.backups.storage_zone.as_deref(),
            segregated: s.backups.segregated,
            locations: s.locations.as_deref(),
        }
    }

    fn of_interval(iv: &'a ServiceInterval) -> Self {
        Config {
            zones: &iv.zones,
            storage_region: &iv.storage_region,
            eu_residency: iv.eu_residency,
            backup_encryption_enabled: iv.backup_encryption_enabled,
            encryption_enabled: iv.backups.encryption_enabled,
            encryption_algorithm: iv.backups.encryption_algorithm.as_deref(),
            storage_zone: iv.backups.storage_zone.as_deref(),
            segregated: iv.backups.segregated,
            locations: iv.locations.as_deref(),
        }
    }
}

/// The rules about a configuration: one backup-encryption fact, no
/// algorithm without encryption, segregation that follows from the storage
/// zone, locations that are exactly the service's places.
fn configuration(base: &str, c: &Config<'_>) -> Result<(), RecordsError> {
    let at = |f: &str| format!("{base}.{f}");
    if c.backup_encryption_enabled != c.encryption_enabled {
        return Err(refuse(
            at("backup_encryption_enabled"),
            at("backups.encryption_enabled"),
            format!(
                "{} and {}: one fact cannot have two values",
                c.backup_encryption_enabled, c.encryption_enabled
            ),
        ));
    }
    if let (false, Some(alg)) = (c.encryption_enabled, c.encryption_algorithm) {
        return Err(refuse(
            at("backups.encryption_algorithm"),
            at("backups.encryption_enabled"),
            format!("an algorithm `{alg}` for backups that are not encrypted"),
        ));
    }
    match (c.storage_zone, c.segregated) {
        (None, Some(true)) => {
            return Err(refuse(
                at("backups.segregated"),
                at("backups.storage_zone"),
                "segregated backups with no storage zone",
            ))
        }
        (Some(z), Some(seg)) => {
            let apart = !c.zones.iter().any(|x| x == z) && z != c.storage_region;
            if seg != apart {
                return Err(refuse(
                    at("backups.segregated"),
                    at("backups.storage_zone"),
                    format!(
                        "segregated is {seg}, but storage zone `{z}` {} one of the service's zones or its storage region",
                        if apart { "is not" } else { "is" }
                    ),
                ));
            }
        }
        _ => {}
    }
    if let Some(locations) = c.locations {
        locations_of(base, c, locations)?;
    }
    Ok(())
}

fn service(base: &str, s: &Service) -> Result<(), RecordsError> {
    let at = |f: &str| format!("{base}.{f}");
    let b = &s.backups;
    configuration(base, &Config::of_service(s))?;
    if let Some(runs) = &s.backup_runs {
        let mut seen = BTreeSet::new();
        for (i, r) in runs.iter().enumerate() {
            let run = |f: &str| format!("{base}.backup_runs[{i}].{f}");
            if !seen.insert(r.run_id.as_str()) {
                return Err(refuse(
                    run("run_id"),
                    format!("{base}.backup_runs"),
                    format!("run `{}` is listed twice", r.run_id),
                ));
            }
            match (r.status.as_str(), r.completed_at) {
                ("succeeded", None) => {
                    return Err(refuse(
                        run("status"),
                        run("completed_at"),
                        "a succeeded run that never completed",
                    ))
                }
                ("running", Some(_)) => {
                    return Err(refuse(
                        run("status"),
                        run("completed_at"),
                        "a running run that has completed",
                    ))
                }
                ("succeeded" | "failed" | "running", _) => {}
                (other, _) => {
                    return Err(refuse(
                        run("status"),
                        run("status"),
                        format!("`{other}` is not a run status: succeeded, failed or running"),
                    ))
                }
            }
            if let Some(c) = r.completed_at {
                if c < r.started_at {
                    return Err(refuse(
                        run("completed_at"),
                        run("started_at"),
                        "completed before it started",
                    ));
                }
                if r.status == "succeeded" && b.last_completed_at.is_none_or(|last| last < c) {
                    return Err(refuse(
                        at("backups.last_completed_at"),
                        run("completed_at"),
                        format!(
                            "the last completed backup is {}, but run `{}` completed at {c}",
                            b.last_completed_at
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| "none".into()),
                            r.run_id
                        ),
                    ));
                }
            }
        }
    }
    if let Some(tests) = &s.restore_tests {
        let mut seen = BTreeSet::new();
        for (i, t) in tests.iter().enumerate() {
            if !seen.insert(t.test_id.as_str()) {
                return Err(refuse(
                    format!("{base}.restore_tests[{i}].test_id"),
                    format!("{base}.restore_tests"),
                    format!("test `{}` is listed twice", t.test_id),
                ));
            }
        }
    }
    if s.history.is_some() || s.created_at.is_some() || s.deleted_at.is_some() {
        history(base, s)?;
    }
    Ok(())
}

/// A service's history: its intervals in order, inside its lifetime, each
/// consistent in itself, the last one the service's own configuration.
fn history(base: &str, s: &Service) -> Result<(), RecordsError> {
    let lifetime = Lifetime {
        base,
        start: ("created_at", s.created_at),
        end: ("deleted_at", s.deleted_at),
        absent: &[],
    };
    let intervals = s.history.as_deref().unwrap_or_default();
    lifetime.check(intervals.iter().map(|h| (h.from, h.to)))?;
    for (j, iv) in intervals.iter().enumerate() {
        configuration(&format!("{base}.history[{j}]"), &Config::of_interval(iv))?;
    }
    if let Some(last) = intervals.last().filter(|l| s.interval(l.from, l.to) != **l) {
        let own = serde_json::to_value(s.interval(last.from, last.to)).unwrap_or_default();
        let theirs = serde_json::to_value(last).unwrap_or_default();
        let (field, _, _) = crate::diff::first_difference(&own, &theirs);
        if !field.is_empty() {
            return Err(refuse(
                format!("{base}.{field}"),
                format!("{base}.history[{}].{field}", intervals.len() - 1),
                "the service's configuration differs from that of the last interval of its history",
            ));
        }
    }
    Ok(())
}

fn locations_of(base: &str, s: &Config<'_>, locations: &[Location]) -> Result<(), RecordsError> {
    let mut expected: BTreeSet<(&str, &str)> =
        s.zones.iter().map(|z| (z.as_str(), "zone")).collect();
    expected.insert((s.storage_region, "storage_region"));
    if let Some(z) = s.storage_zone {
        expected.insert((z, "backup_zone"));
    }
    let mut listed = BTreeSet::new();
    for (i, l) in locations.iter().enumerate() {
        let at = |f: &str| format!("{base}.locations[{i}].{f}");
        if !matches!(l.role.as_str(), "zone" | "storage_region" | "backup_zone") {
            return Err(refuse(
                at("role"),
                at("role"),
                format!(
                    "`{}` is not a role: zone, storage_region or backup_zone",
                    l.role
                ),
            ));
        }
        if !expected.contains(&(l.zone.as_str(), l.role.as_str())) {
            let other = format!("{base}.{}", role_field(&l.role));
            return Err(refuse(
                at("zone"),
                other,
                format!("`{}` is not the service's {}", l.zone, l.role),
            ));
        }
        listed.insert((l.zone.as_str(), l.role.as_str()));
        let basis = l.transfer_basis.as_str();
        let known = [
            "within_eea",
            "adequacy_decision",
            "appropriate_safeguards",
            "derogation",
            "none",
        ];
        if !known.contains(&basis) {
            return Err(refuse(
                at("transfer_basis"),
                at("transfer_basis"),
                format!("`{basis}` is not a transfer basis: {}", known.join(", ")),
            ));
        }
        if l.eea != (basis == "within_eea") {
            return Err(refuse(
                at("transfer_basis"),
                at("eea"),
                format!("`{basis}` for a zone whose eea is {}", l.eea),
            ));
        }
        if basis == "adequacy_decision" && !l.adequacy {
            return Err(refuse(
                at("transfer_basis"),
                at("adequacy"),
                format!("an adequacy decision for {}, which has none", l.country),
            ));
        }
        let needs_safeguard = matches!(basis, "appropriate_safeguards" | "derogation");
        let has_safeguard = l.safeguard.as_deref().is_some_and(|t| !t.trim().is_empty());
        if needs_safeguard != has_safeguard {
            return Err(refuse(
                at("safeguard"),
                at("transfer_basis"),
                if needs_safeguard {
                    format!("`{basis}` names no safeguard")
                } else {
                    format!("a safeguard with transfer basis `{basis}`")
                },
            ));
        }
        if s.eu_residency && !l.eea {
            return Err(refuse(
                format!("{base}.eu_residency"),
                at("eea"),
                format!(
                    "EU residency, but `{}` is in {}, outside the EEA",
                    l.zone, l.country
                ),
            ));
        }
    }
    if let Some((zone, role)) = expected.difference(&listed).next() {
        return Err(refuse(
            format!("{base}.locations"),
            format!("{base}.{}", role_field(role)),
            format!("`{zone}` ({role}) is not among the locations"),
        ));
    }
    Ok(())
}

/// The service field that names the zones of a location `role`.
fn role_field(role: &str) -> &'static str {
    match role {
        "zone" => "zones",
        "storage_region" => "storage_region",
        _ => "backups.storage_zone",
    }
}
