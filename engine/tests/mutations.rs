//! Evidence mutation: fail closed, generically, for every control.
//!
//! For every built-in framework and every example records document, each
//! control that is `attested` is attacked: every field its evidence reads, on
//! every resource, is deleted, set to null and set to a value its check
//! rejects, and every list it iterates is emptied. No such mutation may leave
//! the control `attested`, except where the framework declares that the
//! mutated fact does not concern the control:
//! - a value read only inside an `any_of`, when another alternative still holds
//!   (e.g. a service recorded as holding no data categories);
//! - a scope's `where` value set so that the resource leaves the scope, when
//!   other resources in scope still pass;
//! - an empty population, when the control declares `empty: { status: attested }`.
//!
//! A mutation may also make the records contradict themselves: they are then
//! refused where they enter, which is not attested either. The test prints
//! how many mutations it tried, how each ended, and the declared cases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};
use vouch_engine::eval::evaluate_control;
use vouch_engine::framework::{Check, Control, EmptyStatus, Selector};
use vouch_engine::{assemble, Period, RecordsDocument, Status};

/// What a mutation does to each location of its group.
#[derive(Debug, Clone)]
enum Op {
    Delete,
    Null,
    Set(Value),
    EmptyList,
}

/// Why a mutation that leaves the control attested may be allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Allowance {
    None,
    AnyOf,
    LeavesScope,
}

/// Locations (JSON Pointers) mutated together, and how.
#[derive(Debug, Clone)]
struct Mutation {
    what: String,
    pointers: Vec<String>,
    op: Op,
    allowance: Allowance,
}

/// `$['services'][0]['tls_enabled']` -> `/services/0/tls_enabled`.
fn pointer(location: &str) -> String {
    let mut out = String::new();
    let mut rest = location.strip_prefix('$').unwrap_or(location);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").unwrap();
            out.push('/');
            out.push_str(&r[..end].replace('~', "~0").replace('/', "~1"));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap();
            out.push('/');
            out.push_str(&r[..end]);
            rest = &r[end + 1..];
        } else {
            panic!("unexpected location {location}");
        }
    }
    out
}

/// Concrete pointers `path` selects on the value at `base` of `doc`.
fn locate(doc: &Value, base: &str, path: &Selector) -> Vec<String> {
    let Some(at) = doc.pointer(base) else {
        return vec![];
    };
    path.select(at)
        .unwrap()
        .iter()
        .map(|s| format!("{base}{}", pointer(&s.location)))
        .collect()
}

/// The array a wildcard path iterates (`services[*].x` -> `services`), as pointers.
fn wildcard_lists(doc: &Value, base: &str, path: &Selector) -> Vec<String> {
    match path.split_wildcard() {
        Some((array, _)) => locate(doc, base, array),
        None => vec![],
    }
}

/// A value `check` rejects at its path (`current` is what the records hold).
fn failing_value(check: &Check, current: &Value, period: &Period) -> Value {
    match check {
        Check::AllTrue(_) => json!(false),
        Check::NonEmpty(_) => match current {
            Value::Array(_) => json!([]),
            Value::String(_) => json!(""),
            _ => Value::Null,
        },
        Check::Equals(a) => match &a.value {
            Value::Bool(b) => json!(!b),
            Value::String(s) => json!(format!("{s}-mutated")),
            Value::Number(n) => json!(n.as_i64().unwrap_or(0) + 1),
            Value::Array(_) => json!(["mutated"]),
            _ => json!("mutated"),
        },
        Check::OneOf(_) => json!("mutated-not-listed"),
        Check::AtLeast(a) => json!(a.value - 1),
        Check::AtMost(a) => json!(a.value + 1),
        Check::NotOlderThan(_) => json!("2000-01-01T00:00:00Z"),
        Check::CoversPeriod(_) => json!(period.end.to_string()),
        Check::ForPeriod(_) => {
            let mut v = current.clone();
            v["start"] = json!("2000-01-01T00:00:00Z");
            v
        }
        _ => Value::Null,
    }
}

struct Planner<'a> {
    doc: &'a Value,
    period: &'a Period,
    /// The resources the control judged as passed: only their evidence is
    /// attacked (changing an out-of-scope resource changes nothing).
    in_scope: Vec<String>,
    out: Vec<Mutation>,
}

impl Planner<'_> {
    fn field(&mut self, what: &str, pointers: Vec<String>, check: &Check, allowance: Allowance) {
        if pointers.is_empty() {
            return;
        }
        let current = self
            .doc
            .pointer(&pointers[0])
            .cloned()
            .unwrap_or(Value::Null);
        let fail = failing_value(check, &current, self.period);
        for op in [Op::Delete, Op::Null, Op::Set(fail)] {
            self.out.push(Mutation {
                what: what.to_owned(),
                pointers: pointers.clone(),
                op,
                allowance,
            });
        }
    }

    fn list(&mut self, what: &str, pointers: Vec<String>, allowance: Allowance) {
        for p in pointers {
            for op in [Op::Delete, Op::Null, Op::EmptyList] {
                self.out.push(Mutation {
                    what: format!("{what} (list)"),
                    pointers: vec![p.clone()],
                    op,
                    allowance,
                });
            }
        }
    }

    /// Pointers to every item of the lists at `lists`.
    fn item_pointers(&self, lists: &[String]) -> Vec<String> {
        lists
            .iter()
            .flat_map(|l| {
                let n = self
                    .doc
                    .pointer(l)
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                (0..n).map(move |i| format!("{l}/{i}"))
            })
            .collect()
    }

    /// Every item of the lists at `lists`, `path` in each: one group.
    fn items(&self, lists: &[String], path: &Selector) -> Vec<String> {
        self.item_pointers(lists)
            .iter()
            .flat_map(|item| locate(self.doc, item, path))
            .collect()
    }

    /// A list of events (`count`, `max_gap`): the list itself, the fields its
    /// `where` reads on every item together, and every item's timestamp moved
    /// out of the period.
    fn events(
        &mut self,
        base: &str,
        path: &Selector,
        filter: &[Check],
        at: Option<&Selector>,
        allowance: Allowance,
    ) {
        let lists = locate(self.doc, base, path);
        self.list(path.as_str(), lists.clone(), allowance);
        for f in filter {
            if let Some(p) = each(f) {
                let group = self.items(&lists, p);
                let what = format!("{}[*].{}", path.as_str(), p.as_str());
                self.field(&what, group, f, allowance);
            }
        }
        if let Some(p) = at {
            let group = self.items(&lists, p);
            let outside = Check::NotOlderThan(vouch_engine::framework::AgeArgs {
                path: p.clone(),
                max_age: vouch_engine::framework::Age::parse("1s"),
            });
            let what = format!("{}[*].{}", path.as_str(), p.as_str());
            self.field(&what, group, &outside, allowance);
        }
    }

    fn check(&mut self, base: &str, check: &Check, allowance: Allowance) {
        if let Some(path) = each(check) {
            // Each location on its own: every resource, every value.
            for p in locate(self.doc, base, path) {
                self.field(
                    &format!("{} at {p}", path.as_str()),
                    vec![p],
                    check,
                    allowance,
                );
            }
            let lists = wildcard_lists(self.doc, base, path);
            self.list(path.as_str(), lists, allowance);
            return;
        }
        match check {
            Check::Count(a) => self.events(
                base,
                &a.path,
                &a.filter,
                a.within_period.as_ref(),
                allowance,
            ),
            Check::MaxGap(a) => self.events(base, &a.path, &a.filter, Some(&a.at), allowance),
            Check::AnyOf(alternatives) => {
                for alt in alternatives {
                    self.check(base, alt, Allowance::AnyOf);
                }
            }
            _ => {}
        }
    }

    fn control(&mut self, c: &Control) {
        for check in &c.applies_if {
            self.check("", check, Allowance::None);
        }
        let Some(scope) = &c.scope else {
            for check in &c.checks {
                self.check("", check, Allowance::None);
            }
            return;
        };
        let lists = locate(self.doc, "", &scope.each);
        self.list(scope.each.as_str(), lists.clone(), Allowance::None);
        for base in self.item_pointers(&lists) {
            let id = self.doc.pointer(&format!("{base}/{}", scope.id));
            if !id.is_some_and(|v| self.in_scope.iter().any(|s| v == s)) {
                continue;
            }
            for f in &scope.filter {
                let before = self.out.len();
                self.check(&base, f, Allowance::None);
                // Failing a `where` takes the resource out of scope: declared.
                for m in &mut self.out[before..] {
                    if matches!(m.op, Op::Set(_)) {
                        m.allowance = Allowance::LeavesScope;
                    }
                }
            }
            for check in &c.checks {
                self.check(&base, check, Allowance::None);
            }
        }
    }
}

/// The path of a check that judges each selected value.
fn each(c: &Check) -> Option<&Selector> {
    match c {
        Check::AllTrue(p) | Check::NonEmpty(p) | Check::CoversPeriod(p) | Check::ForPeriod(p) => {
            Some(p)
        }
        Check::Equals(a) => Some(&a.path),
        Check::OneOf(a) => Some(&a.path),
        Check::AtLeast(a) | Check::AtMost(a) => Some(&a.path),
        Check::NotOlderThan(a) => Some(&a.path),
        _ => None,
    }
}

fn apply(doc: &Value, m: &Mutation) -> Option<Value> {
    let mut out = doc.clone();
    let mut changed = false;
    for p in &m.pointers {
        let (parent, key) = p.rsplit_once('/').unwrap();
        match &m.op {
            Op::Delete => {
                if let Some(Value::Object(map)) = out.pointer_mut(parent) {
                    changed |= map.remove(key).is_some();
                }
            }
            Op::Null => {
                if let Some(slot) = out.pointer_mut(p) {
                    changed |= !slot.is_null();
                    *slot = Value::Null;
                }
            }
            Op::Set(v) => {
                if let Some(slot) = out.pointer_mut(p) {
                    changed |= slot != v;
                    *slot = v.clone();
                }
            }
            Op::EmptyList => {
                if let Some(slot) = out.pointer_mut(p) {
                    changed |= slot != &json!([]);
                    *slot = json!([]);
                }
            }
        }
    }
    changed.then_some(out)
}

/// An example records document of `examples/records/`, as JSON.
fn example(name: &str) -> Value {
    let text = std::fs::read(format!(
        "{}/../examples/records/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_slice(&text).unwrap()
}

#[test]
fn no_mutation_of_the_evidence_leaves_a_control_attested_unless_declared() {
    let frameworks = builtin();
    let generated_at = ts("2026-06-22T10:00:00Z");
    let period = Period::month_ending_at(generated_at);
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    let mut declared = vec![];
    let mut violations = vec![];
    let mut attacked = 0;
    for name in ["full", "one-bad-service", "seed-only"] {
        let doc = example(name);
        let records = RecordsDocument::from_value(doc.clone()).unwrap();
        for fw in frameworks.iter() {
            let packet = assemble(fw, &records, generated_at, Some(period)).unwrap();
            for (c, result) in fw.controls.iter().zip(&packet.controls) {
                if result.status != Status::Attested {
                    continue;
                }
                attacked += 1;
                let population = result.population.as_ref().unwrap();
                assert_eq!(population.resources_omitted, 0);
                let mut planner = Planner {
                    doc: &doc,
                    period: &period,
                    in_scope: population
                        .resources
                        .iter()
                        .filter(|r| r.verdict == vouch_engine::eval::Verdict::Passed)
                        .map(|r| r.resource.clone())
                        .collect(),
                    out: vec![],
                };
                planner.control(c);
                assert!(
                    !planner.out.is_empty(),
                    "{} {}: no evidence to mutate",
                    fw.framework,
                    c.control_id
                );
                for m in planner.out {
                    let Some(mutated) = apply(&doc, &m) else {
                        *tally.entry("unchanged").or_default() += 1;
                        continue;
                    };
                    let outcome = match RecordsDocument::from_value(mutated) {
                        Err(_) => "refused",
                        Ok(r) => match evaluate_control(c, &r.to_value(), &period).status {
                            Status::Attested => {
                                let empty_attested = c
                                    .empty
                                    .as_ref()
                                    .is_some_and(|e| e.status == EmptyStatus::Attested)
                                    && matches!(m.op, Op::EmptyList);
                                let line = format!(
                                    "{name} {} {}: {:?} {}",
                                    fw.framework, c.control_id, m.op, m.what
                                );
                                if m.allowance != Allowance::None || empty_attested {
                                    declared.push(format!("{line} ({:?})", m.allowance));
                                    "attested (declared)"
                                } else {
                                    violations.push(line);
                                    "ATTESTED"
                                }
                            }
                            Status::Exception => "exception",
                            Status::Inconclusive => "inconclusive",
                            Status::NotApplicable => "not_applicable",
                        },
                    };
                    *tally.entry(outcome).or_default() += 1;
                }
            }
        }
    }
    let tried: usize = tally
        .iter()
        .filter(|(k, _)| **k != "unchanged")
        .map(|(_, n)| n)
        .sum();
    println!("evidence mutation: {attacked} attested controls attacked, {tried} mutations tried: {tally:?}");
    println!("declared cases ({}):", declared.len());
    for d in &declared {
        println!("  {d}");
    }
    assert!(tried > 1000, "only {tried} mutations");
    assert!(
        violations.is_empty(),
        "{} mutations left a control attested:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// The controls of a framework evaluated together (walking each scope's
/// resources once, sharing merged history, on one thread or with the
/// resources split across threads) give exactly what each gives alone: on
/// every example document and on each of its mutations that the records
/// accept.
#[test]
fn controls_evaluated_together_judge_as_each_alone() {
    let frameworks = builtin();
    let period = Period::month_ending_at(ts("2026-06-22T10:00:00Z"));
    let mut compared = 0;
    for name in ["full", "one-bad-service", "seed-only"] {
        let doc = example(name);
        for fw in frameworks.iter() {
            let mut docs = vec![doc.clone()];
            let root = RecordsDocument::from_value(doc.clone()).unwrap().to_value();
            for c in &fw.controls {
                let judged = evaluate_control(c, &root, &period);
                let mut planner = Planner {
                    doc: &doc,
                    period: &period,
                    in_scope: judged
                        .population
                        .iter()
                        .flat_map(|p| p.resources.iter().map(|r| r.resource.clone()))
                        .collect(),
                    out: vec![],
                };
                planner.control(c);
                docs.extend(planner.out.iter().step_by(3).filter_map(|m| apply(&doc, m)));
            }
            for d in docs {
                let Ok(records) = RecordsDocument::from_value(d) else {
                    continue;
                };
                let root = records.to_value();
                let together = vouch_engine::eval::evaluate_controls(
                    &fw.controls,
                    &root,
                    &period,
                    &vouch_engine::NoPluginHost,
                );
                let alone: Vec<_> = fw
                    .controls
                    .iter()
                    .map(|c| evaluate_control(c, &root, &period))
                    .collect();
                assert_eq!(together, alone, "{name} {}", fw.framework);
                in_parts_as_alone(fw, &root, &period, &alone, &[2, 3], name);
                compared += 1;
            }
        }
    }
    println!("{compared} documents compared");
    assert!(compared > 100, "only {compared} documents compared");
}

/// Split across threads, a scope of more resources than a population lists
/// and than a control keeps notes of judges as on one thread: the resources
/// listed, those omitted, the findings and the notes in order, their bound.
#[test]
fn a_large_scope_split_into_parts_judges_as_one_thread() {
    let frameworks = builtin();
    let period = Period::month_ending_at(ts("2026-06-22T10:00:00Z"));
    let (mut listed_fully, mut notes_bounded) = (0, 0);
    for name in ["full", "one-bad-service", "seed-only"] {
        let mut doc = example(name);
        let services = doc["services"].as_array().unwrap().clone();
        let copies: Vec<Value> = (0..60)
            .flat_map(|k| {
                services.iter().map(move |s| {
                    let mut s = s.clone();
                    let id = format!("{}-{k:02}", s["service_id"].as_str().unwrap());
                    s["service_id"] = Value::String(id);
                    s
                })
            })
            .collect();
        let count = copies.len();
        doc["services"] = Value::Array(copies);
        let root = RecordsDocument::from_value(doc)
            .unwrap_or_else(|e| panic!("{name} x60: {e}"))
            .to_value();
        for fw in frameworks.iter() {
            let alone: Vec<_> = fw
                .controls
                .iter()
                .map(|c| evaluate_control(c, &root, &period))
                .collect();
            listed_fully += alone
                .iter()
                .filter_map(|c| c.population.as_ref())
                .filter(|p| p.resources_omitted > 0)
                .count();
            notes_bounded += alone
                .iter()
                .filter(|c| c.notes.last().is_some_and(|n| n.ends_with(" more notes")))
                .count();
            let what = format!("{name} x60 ({count} services)");
            in_parts_as_alone(fw, &root, &period, &alone, &[2, 3, 7], &what);
        }
    }
    assert!(listed_fully > 0, "no population was past its listing bound");
    assert!(notes_bounded > 0, "no control was past its bound of notes");
}

/// Each scope's resources split into consecutive parts judged on threads of
/// their own, the tallies joined in order, judge as each control `alone`.
fn in_parts_as_alone(
    fw: &vouch_engine::Framework,
    root: &Value,
    period: &Period,
    alone: &[vouch_engine::eval::ControlResult],
    parts: &[usize],
    what: &str,
) {
    for &parts in parts {
        let split = vouch_engine::eval::evaluate_controls_in_parts(
            &fw.controls,
            root,
            period,
            &vouch_engine::NoPluginHost,
            parts,
        );
        assert_eq!(split, alone, "{what} {} in {parts} parts", fw.framework);
    }
}
