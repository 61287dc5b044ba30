//! Evaluation: a framework's controls against a records document, for a period.
//!
//! Fail closed: a control is `attested` only when every check holds on evidence
//! that is actually there. A path that selects nothing is missing evidence and
//! makes the control `inconclusive`; a failing check makes it an `exception`
//! whose findings name the resource, the field and the observed value.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::rc::Rc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::framework::{
    Check, Control, CountArgs, EmptyRule, EmptyStatus, MaxGapArgs, PluginArgs, Scope, Selected,
    Selector, Threshold, TimeBasis,
};
use crate::time::{Period, Timestamp};

mod view;
use view::{merged, Lookup, Table, View};

/// The four statuses of a control.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every check holds on complete evidence for every resource in scope, and
    /// the population is not empty (unless the framework declares what an
    /// empty one means).
    Attested,
    /// A check fails; the findings name the resources.
    Exception,
    /// Every resource is known to be out of scope, or `applies_if` is known
    /// not to hold, and the framework declares that this means not applicable.
    NotApplicable,
    /// Evidence is missing, partial or empty, scope is unknown, or a plugin
    /// failed: nothing can be attested.
    Inconclusive,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Attested => "attested",
            Status::Exception => "exception",
            Status::NotApplicable => "not_applicable",
            Status::Inconclusive => "inconclusive",
        }
    }
}

/// One failing value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The resource's id (e.g. a service_id), or the organization id for
    /// controls without a scope.
    pub resource: String,
    /// Where in the resource, e.g. `backups.retention_days`.
    pub field: String,
    /// The value the records hold there.
    pub observed: Value,
    /// What the check required, in words.
    pub expected: String,
    /// Fields of the resource named by the scope's `context`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, Value>,
    /// When the value lies in an item of a list (a location, a backup run),
    /// that item's plain fields: e.g. the zone, its country and its role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub item: BTreeMap<String, Value>,
    /// For a control judged throughout the period: the interval of the
    /// resource's history in which the value held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
}

/// Part of the period: from `from` (inclusive) to `to` (exclusive, or the
/// period end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The evaluated form of one control, as it appears in the packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlResult {
    pub control_id: String,
    pub title: String,
    pub assertion: String,
    pub status: Status,
    pub evidence_refs: Vec<String>,
    /// The criterion or article the control evidences.
    pub reference: String,
    /// When the evidence holds (configuration as of generation, the period
    /// end, during the period, a look-back window). Always written by this
    /// engine; absent in packets of the seed's first shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_basis: Option<TimeBasis>,
    /// The numbers the checks compare against: law or platform policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    /// Who was judged and how each fared, with the values the verdicts rest
    /// on. Always written by this engine; absent in packets of the seed's
    /// first shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Population>,
    /// Why the control is an exception (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// Why the control is inconclusive or not applicable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The plugins that took part in deciding the control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginInfo>,
}

/// A plugin as recorded in packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// The budget each call of the plugin had, in the host's fuel units
    /// (executed WebAssembly instructions): with the same budget every
    /// machine reaches the same verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

/// Runs plugins for the engine. The engine builds the input and judges the
/// output; the host only runs untrusted code in its sandbox (see `plugins/ABI.md`).
pub trait PluginHost: Sync {
    /// Runs plugin `name` on `input` (JSON); its output bytes, or why it failed
    /// (trap, timeout, memory, oversize output...).
    fn call(&self, name: &str, input: &[u8]) -> Result<Vec<u8>, String>;
    /// The plugin's version and sha256, recorded in packets.
    fn info(&self, name: &str) -> Option<PluginInfo>;
}

/// A host without plugins: every plugin check is inconclusive.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPluginHost;

impl PluginHost for NoPluginHost {
    fn call(&self, name: &str, _: &[u8]) -> Result<Vec<u8>, String> {
        Err(format!(
            "plugin `{name}` cannot run: no plugin host is configured"
        ))
    }
    fn info(&self, _: &str) -> Option<PluginInfo> {
        None
    }
}

/// What a plugin answers (ABI v1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginAnswer {
    status: PluginStatus,
    #[serde(default)]
    findings: Vec<PluginFinding>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum PluginStatus {
    Pass,
    Fail,
    Inconclusive,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginFinding {
    field: String,
    #[serde(default)]
    observed: Value,
    expected: String,
}

/// How many resources a control's population lists with their observations
/// (the counts always cover all of them).
pub const RESOURCE_LIMIT: usize = 100;
/// How many observed values each listed resource carries.
pub const OBSERVATION_LIMIT: usize = 20;
/// How many notes a control carries; the last one says how many were left out.
pub const NOTE_LIMIT: usize = 100;

/// One value a verdict rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// Where in the resource, e.g. `backups.retention_days`, or what was
    /// computed from it, e.g. `backup_runs (count)`.
    pub field: String,
    pub value: Value,
    /// For a control judged throughout the period: the interval of the
    /// resource's history the value is from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
}

/// What the control concluded about one resource.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check holds on evidence that is there.
    Passed,
    /// A check fails (see the findings).
    Failed,
    /// Evidence is missing, partial or empty, or whether the resource is in
    /// scope is unknown.
    Missing,
    /// Left out for a reason the framework declares (`when_missing`, `empty`).
    Excluded,
    /// Known not to meet the scope's `where` conditions.
    OutOfScope,
}

/// One resource of a control's population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceResult {
    pub resource: String,
    pub verdict: Verdict,
    /// Why the resource is excluded, out of scope or missing evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The values the verdict rests on, at most [`OBSERVATION_LIMIT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<Observation>,
    /// Observed values left out of `observed`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observed_omitted: u64,
}

/// Who a control judged, and how each fared.
///
/// `selected = passed + failed + missing + excluded + out_of_scope`, and
/// `in_scope = passed + failed + missing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// The path of the resources (`services`), or absent when the control
    /// judges the records as a whole (the organization is then the one resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<String>,
    pub selected: u64,
    pub in_scope: u64,
    pub passed: u64,
    pub failed: u64,
    pub missing: u64,
    pub excluded: u64,
    pub out_of_scope: u64,
    /// The first [`RESOURCE_LIMIT`] resources in records order.
    pub resources: Vec<ResourceResult>,
    /// Resources left out of `resources`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resources_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What one check concluded on one resource.
#[derive(Debug, Default)]
struct Outcome {
    findings: Vec<Finding>,
    /// Evidence missing, partial or unknown.
    missing: Vec<String>,
    /// Populations that were empty where the check would otherwise hold.
    empty: Vec<String>,
    observed: Vec<Observation>,
    plugins: Vec<PluginInfo>,
}

/// Three-valued logic for filters: unknown is never false.
#[derive(Debug, PartialEq)]
enum Truth {
    True,
    False,
    Unknown(Vec<String>),
}

impl Outcome {
    /// Empties it, keeping its lists' room for the next resource.
    fn clear(&mut self) {
        self.findings.clear();
        self.missing.clear();
        self.empty.clear();
        self.observed.clear();
        self.plugins.clear();
    }
    fn passed(&self) -> bool {
        self.findings.is_empty() && self.missing.is_empty() && self.empty.is_empty()
    }
    fn truth(self) -> Truth {
        if !self.findings.is_empty() {
            Truth::False
        } else if !self.missing.is_empty() || !self.empty.is_empty() {
            let mut why = self.missing;
            why.extend(self.empty);
            Truth::Unknown(why)
        } else {
            Truth::True
        }
    }
    fn absorb(&mut self, other: Outcome) {
        /// `from` after `into`, moved without copying into an empty `into`.
        fn append<T>(into: &mut Vec<T>, mut from: Vec<T>) {
            if into.is_empty() {
                *into = from;
            } else {
                into.append(&mut from);
            }
        }
        append(&mut self.findings, other.findings);
        append(&mut self.missing, other.missing);
        append(&mut self.empty, other.empty);
        append(&mut self.observed, other.observed);
        if !other.plugins.is_empty() {
            merge_plugins(&mut self.plugins, other.plugins);
        }
    }
}

/// What a control concluded about one resource judged throughout the period.
enum Judgment {
    OutOfScope(String),
    Excluded(String),
    /// Judged: the outcome is in the one passed to [`Evaluator::throughout`].
    Judged,
}

/// Whether a check judges evidence (`null` is an observed value the check
/// judges) or decides scope (`null`, like a missing field, is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Check,
    Filter,
}

/// The resource a check is evaluated on.
#[derive(Clone, Copy)]
struct Target<'a> {
    value: View<'a>,
    id: &'a str,
    label: Label<'a>,
    context: Context<'a>,
}

/// How messages name the resource a check is on, written only when a
/// message is: `` `svc-1` ``, `the organization`, or an item of a list in
/// either, `` `backup_runs[2]` (run-7) of `svc-1` ``.
#[derive(Clone, Copy)]
enum Label<'a> {
    Organization,
    Resource(&'a str),
    Item {
        /// The list, as a readable path.
        at: &'a str,
        index: usize,
        item: &'a Value,
        of: &'a Label<'a>,
    },
}

impl Label<'_> {
    /// Appends the label to `s`: what `{label}` writes, without the
    /// formatting machinery for the common labels (a note a resource
    /// lacking evidence gets is written once per resource and control).
    fn push_to(&self, s: &mut String) {
        match self {
            Label::Organization => s.push_str("the organization"),
            Label::Resource(id) => {
                s.push('`');
                s.push_str(id);
                s.push('`');
            }
            item => {
                use fmt::Write;
                let _ = write!(s, "{item}");
            }
        }
    }
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Organization => f.write_str("the organization"),
            Label::Resource(id) => write!(f, "`{id}`"),
            Label::Item {
                at,
                index,
                item,
                of,
            } => match item_name(item) {
                Some(n) => write!(f, "`{at}[{index}]` ({n}) of {of}"),
                None => write!(f, "`{at}[{index}]` of {of}"),
            },
        }
    }
}

/// The fields of a resource named by its scope's `context`, copied into a
/// finding about it only when there is one.
#[derive(Clone, Copy)]
struct Context<'a> {
    names: &'a [String],
    of: &'a Value,
}

impl Context<'_> {
    const NONE: Context<'static> = Context {
        names: &[],
        of: &Value::Null,
    };

    fn fields(&self) -> BTreeMap<String, Value> {
        self.names
            .iter()
            .filter_map(|k| self.of.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }
}

/// A value a path selected, with the list item it lies in (if any).
struct Picked<'p, 'v> {
    location: Cow<'p, str>,
    value: &'v Value,
    item: Option<&'v Value>,
}

#[derive(Clone, Copy)]
struct Evaluator<'a> {
    period: &'a Period,
    host: &'a dyn PluginHost,
    control: &'a Control,
    memo: &'a Memo<'a>,
    /// Whether the values checks read are kept as observations: only the
    /// first [`RESOURCE_LIMIT`] resources of a population carry them.
    observe: bool,
}

/// What every control of a framework would otherwise compute again for the
/// same resource of the same records: the resource as it was during an
/// interval of its history ([`merged`]), for the paths that need it whole.
/// Keyed by the address of the interval in the records document, which the
/// memo borrows.
#[derive(Default)]
struct Memo<'r> {
    merged: RefCell<HashMap<*const Value, Rc<Value>>>,
    records: std::marker::PhantomData<&'r Value>,
}

type Lifetime = (Option<Timestamp>, Option<Timestamp>);

impl<'r> Memo<'r> {
    /// [`merged`] of `resource` and its history interval `interval`.
    fn merged(&self, resource: &'r Value, interval: &'r Value) -> Rc<Value> {
        self.merged
            .borrow_mut()
            .entry(interval as *const Value)
            .or_insert_with(|| Rc::new(merged(resource, interval)))
            .clone()
    }
}

/// A resource of a scope with what every control judging it reads of its
/// records, read once: its lifetime, its members at the names the scope's
/// paths begin with, and (for the controls judged throughout the period)
/// the bounds of its history's intervals, their members at those names,
/// and the times it was absent.
struct Resource<'a> {
    value: &'a Value,
    table: Table<'a>,
    lifetime: Lifetime,
    /// Its id, and the field it is read from.
    id: RefCell<Option<(String, Cow<'a, str>)>>,
    history: OnceCell<Option<Vec<Bounded<'a>>>>,
    absent: OnceCell<Vec<(Timestamp, Timestamp)>>,
}

/// An interval of a history, with its `from` and `to` if both are timestamps.
type Bounded<'a> = (Table<'a>, Option<(Timestamp, Timestamp)>);

impl<'a> Resource<'a> {
    /// Resource `value` of a scope whose paths begin with `names`.
    fn new(value: &'a Value, names: &'a [String]) -> Self {
        Resource {
            value,
            table: Table::new(value, names),
            lifetime: lifetime(value),
            id: RefCell::new(None),
            history: OnceCell::new(),
            absent: OnceCell::new(),
        }
    }

    /// Its id in field `field` (`#i`, its position in the scope, when it
    /// has none), read once for the controls that all name it by the same field.
    fn id(&self, field: &str, i: usize) -> Cow<'a, str> {
        let mut cached = self.id.borrow_mut();
        if let Some((f, id)) = cached.as_ref() {
            if f == field {
                return id.clone();
            }
        }
        let id = match self.value.get(field) {
            Some(v) => display_id(v),
            None => Cow::Owned(format!("#{i}")),
        };
        *cached = Some((field.to_owned(), id.clone()));
        id
    }

    /// The intervals of its `history`; `None` when it has no history list.
    fn history(&self) -> Option<&[Bounded<'a>]> {
        self.history
            .get_or_init(|| {
                let Some(Value::Array(history)) = self.value.get("history") else {
                    return None;
                };
                Some(
                    history
                        .iter()
                        .map(|iv| (Table::new(iv, self.table.names()), span(iv)))
                        .collect(),
                )
            })
            .as_deref()
    }

    /// Where a member was not one (removed, then added again): a gap in
    /// its history that is no missing evidence.
    fn absent(&self) -> &[(Timestamp, Timestamp)] {
        self.absent.get_or_init(|| {
            self.value
                .get("absent")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(span).collect())
                .unwrap_or_default()
        })
    }
}

/// The `from` and `to` of a part of a resource's life (an interval of its
/// history, an absence), if both are timestamps.
fn span(part: &Value) -> Option<(Timestamp, Timestamp)> {
    Some((
        part.get("from").and_then(timestamp)?,
        part.get("to").and_then(timestamp)?,
    ))
}

/// Evaluates the controls of a framework against one records document,
/// sharing what they would each compute again ([`Memo`]). The controls over
/// the same resources (`scope.each`) walk them together: each resource is
/// judged by all of them in turn while it is in the processor's cache,
/// instead of the whole document being read once per control. A scope of at
/// least [`PARALLEL_MIN`] resources per thread is split into consecutive
/// parts judged on the machine's threads at once
/// ([`std::thread::available_parallelism`]), each part's tallies joined in
/// order. The results are the controls', in order, as each evaluated alone,
/// on one thread or many.
pub fn evaluate_controls(
    controls: &[Control],
    root: &Value,
    period: &Period,
    host: &dyn PluginHost,
) -> Vec<ControlResult> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    evaluate_walks(controls, root, period, host, &|n| {
        (n / PARALLEL_MIN).clamp(1, threads)
    })
}

/// [`evaluate_controls`] with each scope's resources split into `parts`
/// parts (fewer when it has fewer resources), whatever their number: for
/// tests that the split changes nothing, and for benchmarks.
pub fn evaluate_controls_in_parts(
    controls: &[Control],
    root: &Value,
    period: &Period,
    host: &dyn PluginHost,
    parts: usize,
) -> Vec<ControlResult> {
    evaluate_walks(controls, root, period, host, &|n| parts.clamp(1, n.max(1)))
}

/// The fewest resources of one scope a thread of [`evaluate_controls`] is
/// given: below it, starting a thread costs more than it saves.
pub const PARALLEL_MIN: usize = 512;

fn evaluate_walks(
    controls: &[Control],
    root: &Value,
    period: &Period,
    host: &dyn PluginHost,
    parts: &dyn Fn(usize) -> usize,
) -> Vec<ControlResult> {
    let memo = Memo::default();
    let mut judged: Vec<Option<Judged>> = controls.iter().map(|_| None).collect();
    let mut walks: Vec<Walk<'_>> = vec![];
    for (k, control) in controls.iter().enumerate() {
        let ev = Evaluator {
            period,
            host,
            control,
            memo: &memo,
            observe: true,
        };
        match ev.start(root) {
            Started::Done(j) => judged[k] = Some(j),
            Started::Over(run, items) => {
                let each = run.scope.each.as_str();
                match walks.iter_mut().find(|w| w.each == each) {
                    Some(w) => {
                        w.controls.push(k);
                        w.runs.push(run);
                    }
                    None => walks.push(Walk {
                        each,
                        items,
                        controls: vec![k],
                        runs: vec![run],
                    }),
                }
            }
        }
    }
    for walk in &mut walks {
        walk.judge(parts(walk.items.len()), period, host);
    }
    for walk in walks {
        for (k, run) in walk.controls.into_iter().zip(walk.runs) {
            judged[k] = Some(run.finish());
        }
    }
    controls
        .iter()
        .zip(judged)
        .filter_map(|(c, j)| j.map(|j| result(c, j)))
        .collect()
}

/// The resources of one scope path and the controls judging them.
struct Walk<'a> {
    each: &'a str,
    items: Vec<&'a Value>,
    /// The position of each run's control among the framework's.
    controls: Vec<usize>,
    runs: Vec<Run<'a>>,
}

impl<'a> Walk<'a> {
    /// Judges every resource by every control, in `parts` consecutive parts
    /// at once: the first on this thread into the runs' own tallies, each
    /// other on a thread of its own into fresh ones (with its own [`Memo`]),
    /// joined after the first in order.
    fn judge(&mut self, parts: usize, period: &'a Period, host: &'a dyn PluginHost) {
        let size = self.items.len().div_ceil(parts.max(1)).max(1);
        let mut chunks = self.items.chunks(size).enumerate();
        let Some((_, first)) = chunks.next() else {
            return;
        };
        let specs: Vec<(&'a Control, &'a Scope)> =
            self.runs.iter().map(|r| (r.ev.control, r.scope)).collect();
        let runs = &mut self.runs;
        let later: Vec<Vec<Tally>> = std::thread::scope(|s| {
            let threads: Vec<_> = chunks
                .map(|(c, chunk)| {
                    let specs = &specs;
                    s.spawn(move || {
                        let memo = Memo::default();
                        let mut forks: Vec<Run<'_>> = specs
                            .iter()
                            .map(|&(control, scope)| Run::new(period, host, control, scope, &memo))
                            .collect();
                        judge_all(chunk, c * size, &mut forks);
                        forks.into_iter().map(|r| r.tally).collect::<Vec<Tally>>()
                    })
                })
                .collect();
            judge_all(first, 0, runs);
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for tallies in later {
            for (run, tally) in self.runs.iter_mut().zip(tallies) {
                run.tally.join(tally);
            }
        }
    }
}

/// Judges `items`, the first at position `offset` of their scope, by each
/// run, one resource at a time.
fn judge_all<'a>(items: &[&'a Value], offset: usize, runs: &mut [Run<'a>]) {
    // The runs are over one scope path: one framework's controls over it
    // share its first names (a path numbered otherwise is searched for).
    let names = runs.first().map_or(&[][..], |r| &r.scope.first_names[..]);
    for (i, item) in items.iter().enumerate() {
        let resource = Resource::new(item, names);
        for run in runs.iter_mut() {
            run.item(offset + i, &resource);
        }
    }
}

/// Evaluates one control against the records document (as a JSON value).
pub fn evaluate_control(control: &Control, root: &Value, period: &Period) -> ControlResult {
    evaluate_control_with(control, root, period, &NoPluginHost)
}

/// Evaluates one control, running its `plugin:` checks on `host`.
pub fn evaluate_control_with(
    control: &Control,
    root: &Value,
    period: &Period,
    host: &dyn PluginHost,
) -> ControlResult {
    let memo = Memo::default();
    let ev = Evaluator {
        period,
        host,
        control,
        memo: &memo,
        observe: true,
    };
    result(control, ev.control(root))
}

/// A control's judgment as the packet carries it.
fn result(control: &Control, judged: Judged) -> ControlResult {
    ControlResult {
        control_id: control.control_id.clone(),
        title: control.title.clone(),
        assertion: control.assertion.clone(),
        status: judged.status,
        evidence_refs: control
            .evidence_refs
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        reference: control.reference.clone(),
        time_basis: Some(control.time_basis),
        thresholds: control.thresholds.clone(),
        findings: judged.findings,
        notes: bounded_notes(judged.notes),
        plugins: judged.plugins,
        population: Some(judged.population),
    }
}

fn bounded_notes(mut notes: Vec<String>) -> Vec<String> {
    let first: Vec<bool> = {
        let mut seen = foldhash::HashSet::with_capacity_and_hasher(notes.len(), Default::default());
        notes.iter().map(|n| seen.insert(n.as_str())).collect()
    };
    let mut first = first.into_iter();
    notes.retain(|_| first.next().unwrap_or(false));
    if notes.len() > NOTE_LIMIT {
        let more = notes.len() - (NOTE_LIMIT - 1);
        notes.truncate(NOTE_LIMIT - 1);
        notes.push(format!("... and {more} more notes"));
    }
    notes
}

/// A control's verdict with what it rests on.
struct Judged {
    status: Status,
    findings: Vec<Finding>,
    notes: Vec<String>,
    plugins: Vec<PluginInfo>,
    population: Population,
}

/// Builds the population as resources are judged.
struct Tally {
    population: Population,
    findings: Vec<Finding>,
    notes: Vec<String>,
    plugins: Vec<PluginInfo>,
}

impl Tally {
    fn new(each: Option<String>) -> Self {
        Tally {
            population: Population {
                each,
                selected: 0,
                in_scope: 0,
                passed: 0,
                failed: 0,
                missing: 0,
                excluded: 0,
                out_of_scope: 0,
                resources: vec![],
                resources_omitted: 0,
            },
            findings: vec![],
            notes: vec![],
            plugins: vec![],
        }
    }

    /// Whether the next resource recorded is listed with its reason and
    /// observations (the first [`RESOURCE_LIMIT`] are).
    fn lists_next(&self) -> bool {
        self.population.resources.len() < RESOURCE_LIMIT
    }

    fn record(
        &mut self,
        resource: &str,
        verdict: Verdict,
        reason: Option<String>,
        mut observed: Vec<Observation>,
    ) {
        let p = &mut self.population;
        p.selected += 1;
        match verdict {
            Verdict::Passed => p.passed += 1,
            Verdict::Failed => p.failed += 1,
            Verdict::Missing => p.missing += 1,
            Verdict::Excluded => p.excluded += 1,
            Verdict::OutOfScope => p.out_of_scope += 1,
        }
        p.in_scope = p.passed + p.failed + p.missing;
        if p.resources.len() >= RESOURCE_LIMIT {
            p.resources_omitted += 1;
            return;
        }
        let omitted = observed.len().saturating_sub(OBSERVATION_LIMIT) as u64;
        observed.truncate(OBSERVATION_LIMIT);
        p.resources.push(ResourceResult {
            resource: resource.to_owned(),
            verdict,
            reason,
            observed,
            observed_omitted: omitted,
        });
    }

    /// Adds what `later` tallied of the resources after this tally's: the
    /// same as if this tally had judged them (the resources listed are the
    /// first [`RESOURCE_LIMIT`] of both, in order).
    fn join(&mut self, later: Tally) {
        let Tally {
            population: q,
            mut findings,
            mut notes,
            plugins,
        } = later;
        let p = &mut self.population;
        p.selected += q.selected;
        p.passed += q.passed;
        p.failed += q.failed;
        p.missing += q.missing;
        p.excluded += q.excluded;
        p.out_of_scope += q.out_of_scope;
        p.in_scope = p.passed + p.failed + p.missing;
        let room = RESOURCE_LIMIT.saturating_sub(p.resources.len());
        let mut listed = q.resources;
        p.resources_omitted += q.resources_omitted + listed.len().saturating_sub(room) as u64;
        listed.truncate(room);
        p.resources.append(&mut listed);
        self.findings.append(&mut findings);
        self.notes.append(&mut notes);
        merge_plugins(&mut self.plugins, plugins);
    }

    /// Judges one in-scope resource from the outcome of all its checks.
    /// `o` is left empty, its lists' room kept for the next resource.
    fn judge(&mut self, resource: &str, o: &mut Outcome, empty_rule: Option<&EmptyRule>) {
        merge_plugins(&mut self.plugins, std::mem::take(&mut o.plugins));
        let observed = std::mem::take(&mut o.observed);
        let listed = self.lists_next();
        if !o.findings.is_empty() {
            self.findings.append(&mut o.findings);
            self.notes.append(&mut o.missing);
            self.record(resource, Verdict::Failed, None, observed);
        } else if !o.missing.is_empty() {
            let reason = listed.then(|| o.missing.join("; "));
            self.notes.append(&mut o.missing);
            self.record(resource, Verdict::Missing, reason, observed);
        } else if !o.empty.is_empty() {
            let what = o.empty.join("; ");
            match empty_rule {
                None => {
                    let note = format!("{what}: an empty population proves nothing");
                    let reason = listed.then(|| note.clone());
                    self.notes.push(note);
                    self.record(resource, Verdict::Missing, reason, observed);
                }
                Some(rule) => {
                    let reason = format!("{what}: {}", rule.reason);
                    let verdict = match rule.status {
                        EmptyStatus::NotApplicable => Verdict::Excluded,
                        EmptyStatus::Attested => Verdict::Passed,
                    };
                    self.record(resource, verdict, Some(reason), observed);
                }
            }
        } else {
            self.record(resource, Verdict::Passed, None, observed);
        }
        o.clear();
    }

    /// Ends before any resource is judged: the records as a whole decide.
    fn stop(self, status: Status, notes: Vec<String>) -> Judged {
        Judged {
            status,
            findings: self.findings,
            notes,
            plugins: self.plugins,
            population: self.population,
        }
    }

    fn finish(self, empty_rule: Option<&EmptyRule>, what_empty: impl FnOnce() -> String) -> Judged {
        let p = &self.population;
        let (status, mut notes) = if p.failed > 0 {
            (Status::Exception, self.notes)
        } else if p.missing > 0 {
            (Status::Inconclusive, self.notes)
        } else if p.passed > 0 {
            (Status::Attested, self.notes)
        } else {
            let what = what_empty();
            match empty_rule {
                None => (
                    Status::Inconclusive,
                    vec![format!("{what}: an empty population proves nothing")],
                ),
                Some(rule) => {
                    let status = match rule.status {
                        EmptyStatus::NotApplicable => Status::NotApplicable,
                        EmptyStatus::Attested => Status::Attested,
                    };
                    (status, vec![format!("{what}: {}", rule.reason)])
                }
            }
        };
        // An attested control says which resources a declared rule excluded or passed.
        if status == Status::Attested || status == Status::NotApplicable {
            for r in &p.resources {
                if let (Verdict::Excluded | Verdict::Passed, Some(reason)) = (r.verdict, &r.reason)
                {
                    notes.push(format!("`{}`: {reason}", r.resource));
                }
            }
        }
        Judged {
            status,
            findings: self.findings,
            notes,
            plugins: self.plugins,
            population: self.population,
        }
    }
}

/// A control under way: its tally over the resources of its scope, judged
/// one at a time ([`evaluate_controls`] walks the resources once for all the
/// controls with the same scope).
struct Run<'a> {
    ev: Evaluator<'a>,
    scope: &'a Scope,
    tally: Tally,
    /// The outcome of the resource being judged, emptied after each.
    outcome: Outcome,
}

enum Started<'a> {
    Done(Judged),
    Over(Run<'a>, Vec<&'a Value>),
}

impl<'a> Run<'a> {
    /// A run of `control` over `scope`, with nothing judged yet.
    fn new(
        period: &'a Period,
        host: &'a dyn PluginHost,
        control: &'a Control,
        scope: &'a Scope,
        memo: &'a Memo<'a>,
    ) -> Self {
        Run {
            ev: Evaluator {
                period,
                host,
                control,
                memo,
                observe: true,
            },
            scope,
            tally: Tally::new(Some(scope.each.as_str().to_owned())),
            outcome: Outcome::default(),
        }
    }

    /// Judges resource `i` of the scope.
    fn item(&mut self, i: usize, resource: &Resource<'a>) {
        let (this, item) = (self.ev, resource.value);
        let (control, scope) = (this.control, self.scope);
        let rule = control.empty.as_ref();
        let id = resource.id(&scope.id, i);
        let id = id.as_ref();
        let target = Target {
            value: View::Resource(&resource.table),
            id,
            label: Label::Resource(id),
            context: Context {
                names: &scope.context,
                of: item,
            },
        };
        let (born, ended) = resource.lifetime;
        let Some(window) = this.window(born, ended) else {
            self.tally.record(
                id,
                Verdict::OutOfScope,
                Some(format!(
                    "did not exist during the period ({})",
                    describe_lifetime(born, ended)
                )),
                vec![],
            );
            return;
        };
        if let (Some(end), TimeBasis::AsOfGeneration | TimeBasis::PeriodEnd) =
            (ended, control.time_basis)
        {
            if end <= this.period.end {
                self.tally.record(
                    id,
                    Verdict::OutOfScope,
                    Some(format!(
                        "ended at {end}, before the period end: judged by the controls that cover the whole period"
                    )),
                    vec![],
                );
                return;
            }
        }
        // A resource that existed for part of the period is judged for that part.
        let ev = Evaluator {
            period: &window,
            observe: self.tally.population.resources.len() < RESOURCE_LIMIT,
            ..this
        };
        let lived = (window != *this.period).then(|| Observation {
            field: "existed".into(),
            value: serde_json::json!({"from": window.start, "to": window.end}),
            interval: None,
        });
        let total = &mut self.outcome;
        if control.time_basis == TimeBasis::ThroughoutPeriod {
            total.observed.extend(lived);
            match ev.throughout(scope, &target, resource, total) {
                Judgment::OutOfScope(reason) => {
                    total.clear();
                    self.tally
                        .record(id, Verdict::OutOfScope, Some(reason), vec![])
                }
                Judgment::Excluded(reason) => {
                    total.clear();
                    self.tally
                        .record(id, Verdict::Excluded, Some(reason), vec![])
                }
                Judgment::Judged => self.tally.judge(id, total, rule),
            }
            return;
        }
        match ev.all(&scope.filter, &target) {
            Truth::True => {}
            Truth::False => {
                self.tally.record(
                    id,
                    Verdict::OutOfScope,
                    Some("does not meet the scope's `where` conditions".into()),
                    vec![],
                );
                return;
            }
            Truth::Unknown(why) => {
                let why = why.join("; ");
                match &scope.when_missing {
                    Some(rule) => self.tally.record(
                        id,
                        Verdict::Excluded,
                        Some(format!("{why}: {}", rule.reason)),
                        vec![],
                    ),
                    None => {
                        let note =
                            format!("whether {} is in scope is unknown: {why}", target.label);
                        self.tally.notes.push(note.clone());
                        self.tally.record(id, Verdict::Missing, Some(note), vec![]);
                    }
                }
                return;
            }
        }
        let total = &mut self.outcome;
        total.observed.extend(lived);
        for check in &control.checks {
            ev.check_into(check, &target, Mode::Check, total);
        }
        self.tally.judge(id, total, rule);
    }

    fn finish(self) -> Judged {
        let (scope, rule) = (self.scope, self.ev.control.empty.as_ref());
        let each = scope.each.as_str().to_owned();
        let filtered = !scope.filter.is_empty();
        self.tally.finish(rule, move || {
            if filtered {
                format!("no item of `{each}` meets the scope's `where` conditions")
            } else {
                format!("`{each}` is empty")
            }
        })
    }
}

impl<'a> Evaluator<'a> {
    /// Evaluates the control on its own.
    fn control(&self, root: &'a Value) -> Judged {
        match self.start(root) {
            Started::Done(judged) => judged,
            Started::Over(mut run, items) => {
                judge_all(&items, 0, std::slice::from_mut(&mut run));
                run.finish()
            }
        }
    }

    /// Decides what the records as a whole decide (`applies_if`, a control
    /// without a scope, a scope that selects nothing), or starts the run over
    /// the scope's resources.
    fn start(&self, root: &'a Value) -> Started<'a> {
        let control = self.control;
        let id = root
            .pointer("/organization/id")
            .map_or(Cow::Borrowed("organization"), display_id);
        let org = Target {
            value: View::Plain(root),
            id: &id,
            label: Label::Organization,
            context: Context::NONE,
        };
        let each = control.scope.as_ref().map(|s| s.each.as_str().to_owned());
        let mut tally = Tally::new(each);
        let rule = control.empty.as_ref();
        match self.all(&control.applies_if, &org) {
            Truth::True => {}
            Truth::False => {
                return Started::Done(tally.stop(
                    Status::NotApplicable,
                    vec!["the records do not meet the control's `applies_if` conditions".into()],
                ));
            }
            Truth::Unknown(why) => {
                let notes = why
                    .into_iter()
                    .map(|w| format!("whether the control applies is unknown: {w}"))
                    .collect();
                return Started::Done(tally.stop(Status::Inconclusive, notes));
            }
        }
        let Some(scope) = control.scope.as_ref() else {
            let mut total = Outcome::default();
            for check in &control.checks {
                self.check_into(check, &org, Mode::Check, &mut total);
            }
            tally.judge(&id, &mut total, rule);
            return Started::Done(tally.finish(rule, || "nothing to judge".into()));
        };
        let selected = match scope.each.select(root) {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => {
                let note = format!("the records have no `{}`", scope.each.as_str());
                return Started::Done(tally.stop(Status::Inconclusive, vec![note]));
            }
            Err(e) => {
                let note = format!(
                    "scope `{}` could not be evaluated: {e}",
                    scope.each.as_str()
                );
                return Started::Done(tally.stop(Status::Inconclusive, vec![note]));
            }
        };
        let items: Vec<&'a Value> = selected
            .iter()
            .flat_map(|s| match s.value {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect();
        Started::Over(
            Run {
                ev: *self,
                scope,
                tally,
                outcome: Outcome::default(),
            },
            items,
        )
    }

    /// The part of the period a resource existed in; `None` if it did not
    /// exist during the period.
    fn window(&self, born: Option<Timestamp>, ended: Option<Timestamp>) -> Option<Period> {
        let start = born.map_or(self.period.start, |b| b.max(self.period.start));
        let end = ended.map_or(self.period.end, |e| e.min(self.period.end));
        let instant = self.period.start == self.period.end;
        if end < start || (end == start && !instant) {
            return None;
        }
        Some(Period { start, end })
    }

    /// Judges a resource on every interval of its `history` within the
    /// period (already narrowed to the resource's lifetime): the scope's
    /// `where` and the checks on the resource as it was in each interval.
    /// Any part of the period the history does not cover is missing evidence.
    fn throughout<'r: 'a>(
        &self,
        scope: &Scope,
        t: &Target<'_>,
        r: &Resource<'r>,
        out: &mut Outcome,
    ) -> Judgment {
        let label = &t.label;
        let (start, end) = (self.period.start, self.period.end);
        let Some(history) = r.history() else {
            out.missing.push(format!(
                "no configuration history for {label}: nothing is known of its configuration during the period"
            ));
            return Judgment::Judged;
        };
        let absent = r.absent();
        let mut covered = start;
        let (mut in_scope, mut excluded, mut out_of_scope) = (0usize, vec![], 0usize);
        for (j, (iv, bounds)) in history.iter().enumerate() {
            let bounds = *bounds;
            let Some((from, to)) = bounds else {
                out.missing.push(format!(
                    "`history[{j}]` of {label} has no `from` and `to` timestamps"
                ));
                continue;
            };
            let (from, to) = (from.max(start), to.min(end));
            if to < from || (to == from && start != end) {
                continue;
            }
            let known_absence = absent
                .iter()
                .any(|(a, b)| a.max(&start) <= &covered && b.min(&end) >= &from);
            if from > covered && !known_absence {
                out.missing.push(if covered == start {
                    format!("no configuration history before {from} for {label}")
                } else {
                    format!("no configuration history from {covered} to {from} for {label}")
                });
            }
            covered = covered.max(to);
            let interval = Interval { from, to };
            let merged = OnceCell::new();
            let make = || self.memo.merged(r.value, iv.value());
            let here = Target {
                value: View::during(&r.table, iv, &merged, &make),
                ..*t
            };
            match self.all(&scope.filter, &here) {
                Truth::True => in_scope += 1,
                Truth::False => {
                    out_of_scope += 1;
                    continue;
                }
                Truth::Unknown(why) => {
                    let why = why.join("; ");
                    match &scope.when_missing {
                        Some(rule) => {
                            excluded.push(format!("from {from} to {to}: {why}: {}", rule.reason))
                        }
                        None => out.missing.push(format!(
                            "whether {label} is in scope from {from} to {to} is unknown: {why}"
                        )),
                    }
                    continue;
                }
            }
            let (findings, observed) = (out.findings.len(), out.observed.len());
            for check in &self.control.checks {
                self.check_into(check, &here, Mode::Check, out);
            }
            for f in &mut out.findings[findings..] {
                f.interval = Some(interval);
            }
            for obs in &mut out.observed[observed..] {
                obs.interval = Some(interval);
            }
        }
        if covered == start
            && in_scope + out_of_scope + excluded.len() == 0
            && out.missing.is_empty()
        {
            out.missing.push(format!(
                "no configuration history for {label} from {start} to {end}"
            ));
        } else if covered < end {
            out.missing.push(format!(
                "no configuration history after {covered} for {label}"
            ));
        }
        if in_scope == 0 && out.missing.is_empty() {
            if !excluded.is_empty() {
                return Judgment::Excluded(excluded.join("; "));
            }
            return Judgment::OutOfScope(
                "does not meet the scope's `where` conditions at any time in the period".into(),
            );
        }
        Judgment::Judged
    }

    /// The conjunction of `checks` in three-valued logic: a known failure is
    /// false whatever else is unknown.
    fn all(&self, checks: &[Check], t: &Target<'_>) -> Truth {
        let mut unknown = vec![];
        for c in checks {
            match self.check(c, t, Mode::Filter).truth() {
                Truth::True => {}
                Truth::False => return Truth::False,
                Truth::Unknown(why) => unknown.extend(why),
            }
        }
        if unknown.is_empty() {
            Truth::True
        } else {
            Truth::Unknown(unknown)
        }
    }

    /// What `check` concludes on the target, on its own.
    fn check(&self, check: &Check, t: &Target<'_>, mode: Mode) -> Outcome {
        let mut out = Outcome::default();
        self.check_into(check, t, mode, &mut out);
        out
    }

    /// What `check` concludes on the target, after what `out` holds.
    fn check_into(&self, check: &Check, t: &Target<'_>, mode: Mode, out: &mut Outcome) {
        match check {
            Check::AllTrue(path) => {
                let expected = || "true".into();
                self.each(t, path, mode, &expected, |v| v == &Value::Bool(true), out)
            }
            Check::NonEmpty(path) => {
                let expected = || "a value that is not empty".into();
                self.each(
                    t,
                    path,
                    mode,
                    &expected,
                    |v| match v {
                        Value::Null => false,
                        Value::String(s) => !s.trim().is_empty(),
                        Value::Array(a) => !a.is_empty(),
                        Value::Object(o) => !o.is_empty(),
                        _ => true,
                    },
                    out,
                )
            }
            Check::Equals(a) => {
                let expected = || format!("equal to {}", a.value);
                self.each(t, &a.path, mode, &expected, |v| v == &a.value, out)
            }
            Check::OneOf(a) => {
                let expected = || {
                    let list: Vec<String> = a.values.iter().map(Value::to_string).collect();
                    format!("one of {}", list.join(", "))
                };
                self.each(t, &a.path, mode, &expected, |v| a.values.contains(v), out)
            }
            Check::AtLeast(a) => {
                let expected = || format!("an integer of at least {}", a.value);
                self.each(
                    t,
                    &a.path,
                    mode,
                    &expected,
                    |v| v.as_i64().is_some_and(|n| n >= a.value),
                    out,
                )
            }
            Check::AtMost(a) => {
                let expected = || format!("an integer of at most {}", a.value);
                self.each(
                    t,
                    &a.path,
                    mode,
                    &expected,
                    |v| v.as_i64().is_some_and(|n| n <= a.value),
                    out,
                )
            }
            Check::NotOlderThan(a) => {
                let Some(age) = a.max_age.duration() else {
                    out.missing.push(format!(
                        "max_age `{}` is not a duration",
                        a.max_age.as_str()
                    ));
                    return;
                };
                let earliest = self.period.end.saturating_sub(age);
                let expected = || {
                    format!(
                        "a time between {earliest} and {} (no older than {})",
                        self.period.end,
                        a.max_age.as_str()
                    )
                };
                self.each(
                    t,
                    &a.path,
                    mode,
                    &expected,
                    |v| timestamp(v).is_some_and(|ts| earliest <= ts && ts <= self.period.end),
                    out,
                )
            }
            Check::CoversPeriod(path) => {
                let start = self.period.start;
                let expected = || format!("a time at or before the period start {start}");
                self.each(
                    t,
                    path,
                    mode,
                    &expected,
                    |v| timestamp(v).is_some_and(|ts| ts <= start),
                    out,
                )
            }
            Check::ForPeriod(path) => self.for_period(path, t, out),
            Check::Count(a) => self.count(a, t, out),
            Check::MaxGap(a) => self.max_gap(a, t, out),
            Check::Plugin(a) => out.absorb(self.plugin(a, t)),
            Check::AnyOf(alternatives) => {
                let mut all = Outcome::default();
                for alt in alternatives {
                    let o = self.check(alt, t, mode);
                    if o.passed() {
                        out.absorb(o);
                        return;
                    }
                    all.absorb(o);
                }
                // None holds: unknown beats vacuous beats failed.
                if !all.missing.is_empty() {
                    all.findings.clear();
                    all.empty.clear();
                } else if !all.empty.is_empty() {
                    all.findings.clear();
                }
                out.absorb(all);
            }
        }
    }

    /// Calls `visit` with each value `path` selects on `value` (and `out`),
    /// and notes in `out` what is missing or empty; a `[*]` is expanded item by item, so
    /// that an item lacking the rest of the path is missing evidence and an
    /// empty list is an empty population.
    #[allow(clippy::too_many_arguments)]
    fn gather<'v>(
        &self,
        value: View<'v>,
        path: &Selector,
        base: &str,
        item: Option<&'v Value>,
        label: &Label<'_>,
        out: &mut Outcome,
        visit: &mut dyn FnMut(Picked<'_, 'v>, &mut Outcome),
    ) {
        let Some((array, rest)) = path.split_wildcard() else {
            match pick(path, value, label) {
                Ok(picks) => {
                    for (location, value) in picks {
                        let location = match base {
                            "" => location,
                            _ => Cow::Owned(join_location(base, &location)),
                        };
                        visit(
                            Picked {
                                location,
                                value,
                                item,
                            },
                            out,
                        );
                    }
                }
                Err(note) => out.missing.push(note),
            }
            return;
        };
        let lists = match pick(array, value, label) {
            Ok(picks) => picks,
            Err(note) => {
                out.missing.push(note);
                return;
            }
        };
        for (location, list) in lists {
            let at = join_location(base, &location);
            let Value::Array(items) = list else {
                out.missing
                    .push(format!("`{at}` is not a list, for {label}"));
                continue;
            };
            if items.is_empty() {
                out.empty.push(format!("`{at}` is empty for {label}"));
            }
            for (index, it) in items.iter().enumerate() {
                let here = format!("{at}[{index}]");
                let name = Label::Item {
                    at: &at,
                    index,
                    item: it,
                    of: label,
                };
                self.gather(View::Plain(it), rest, &here, Some(it), &name, out, visit);
            }
        }
    }

    /// Selects `path` on the target and tests every selected value.
    fn each(
        &self,
        t: &Target<'_>,
        path: &Selector,
        mode: Mode,
        expected: &dyn Fn() -> String,
        ok: impl Fn(&Value) -> bool,
        out: &mut Outcome,
    ) {
        let mut judged = Outcome::default();
        let direct = path.split_wildcard().is_none();
        self.gather(t.value, path, "", None, &t.label, out, &mut |p, out| {
            let judged = if direct { out } else { &mut judged };
            if self.observe {
                judged.observed.push(Observation {
                    field: p.location.clone().into_owned(),
                    value: p.value.clone(),
                    interval: None,
                });
            }
            if mode == Mode::Filter && p.value.is_null() {
                judged
                    .missing
                    .push(format!("`{}` is null for {}", p.location, t.label));
            } else if !ok(p.value) {
                judged.findings.push(Finding {
                    item: p.item.map(scalars).unwrap_or_default(),
                    ..finding(t, p.location.into_owned(), p.value.clone(), expected())
                });
            }
        });
        // What the values showed comes after what the path could not select
        // (a path without `[*]` selects values or notes that it cannot,
        // never both: its values went straight into `out`).
        if !direct {
            out.absorb(judged);
        }
    }

    /// Figures computed for a period are evidence only for that period.
    fn for_period(&self, path: &Selector, t: &Target<'_>, out: &mut Outcome) {
        let mut judged = Outcome::default();
        self.gather(t.value, path, "", None, &t.label, out, &mut |p, _| {
            let start = p.value.get("start").and_then(timestamp);
            let end = p.value.get("end").and_then(timestamp);
            if self.observe {
                judged.observed.push(Observation {
                    field: p.location.clone().into_owned(),
                    value: serde_json::json!({"start": p.value.get("start"), "end": p.value.get("end")}),
                    interval: None,
                });
            }
            if start != Some(self.period.start) || end != Some(self.period.end) {
                judged.missing.push(format!(
                    "`{}` for {} holds figures for {} .. {}, not for the packet's period {} .. {}",
                    p.location,
                    t.label,
                    p.value.get("start").unwrap_or(&Value::Null),
                    p.value.get("end").unwrap_or(&Value::Null),
                    self.period.start,
                    self.period.end
                ));
            }
        });
        out.absorb(judged);
    }

    /// Evaluates `filter` on item `index` of the list at `at` in three-valued logic.
    fn item_truth(
        &self,
        filter: &[Check],
        item: &Value,
        t: &Target<'_>,
        at: &str,
        index: usize,
    ) -> Truth {
        let it = Target {
            value: View::Plain(item),
            id: t.id,
            label: Label::Item {
                at,
                index,
                item,
                of: &t.label,
            },
            context: Context::NONE,
        };
        self.all(filter, &it)
    }

    fn count(&self, a: &CountArgs, t: &Target<'_>, out: &mut Outcome) {
        let selected = match pick(&a.path, t.value, &t.label) {
            Ok(s) => s,
            Err(note) => return out.missing.push(note),
        };
        let expected = || {
            let expected = match (a.min, a.max) {
                (Some(lo), Some(hi)) => format!("between {lo} and {hi} items"),
                (Some(lo), None) => format!("at least {lo} items"),
                (None, Some(hi)) => format!("at most {hi} items"),
                (None, None) => "a count".to_owned(),
            };
            match a.within_period {
                Some(_) => format!(
                    "{expected} within the period {} .. {}",
                    self.period.start, self.period.end
                ),
                None => expected,
            }
        };
        for (at, value) in selected {
            let Value::Array(items) = value else {
                let expected = "a list".into();
                out.findings
                    .push(finding(t, at.into_owned(), value.clone(), expected));
                continue;
            };
            let (mut known, mut unknown, mut population) = (0u64, 0u64, 0u64);
            let mut unknown_why = vec![];
            for (i, item) in items.iter().enumerate() {
                // A count is of what exists at the period end: a member
                // removed (a service deleted) before then is not counted.
                if let Some(ended) = lifetime(item).1.filter(|e| *e <= self.period.end) {
                    if self.observe {
                        out.observed.push(Observation {
                            field: format!("{at}[{i}] (not counted)"),
                            value: Value::String(format!("ended at {ended}")),
                            interval: None,
                        });
                    }
                    continue;
                }
                if let Some(p) = &a.within_period {
                    let inside = select_in(p, View::Plain(item)).is_ok_and(|mut sel| {
                        sel.any(|(_, x)| timestamp(x).is_some_and(|ts| self.period.contains(ts)))
                    });
                    if !inside {
                        continue;
                    }
                }
                population += 1;
                match self.item_truth(&a.filter, item, t, &at, i) {
                    Truth::True => known += 1,
                    Truth::False => {}
                    Truth::Unknown(why) => match &a.when_missing {
                        Some(rule) => {
                            if self.observe {
                                out.observed.push(Observation {
                                    field: format!("{at}[{i}] (excluded)"),
                                    value: Value::String(format!(
                                        "{}: {}",
                                        why.join("; "),
                                        rule.reason
                                    )),
                                    interval: None,
                                })
                            }
                        }
                        None => {
                            unknown += 1;
                            unknown_why.extend(why);
                        }
                    },
                }
            }
            if self.observe {
                out.observed.push(Observation {
                    field: format!("{at} (count)"),
                    value: Value::from(known),
                    interval: None,
                });
            }
            let low = known;
            let high = known + unknown;
            let holds_surely =
                a.min.is_none_or(|lo| low >= lo) && a.max.is_none_or(|hi| high <= hi);
            let fails_surely =
                a.min.is_some_and(|lo| high < lo) || a.max.is_some_and(|hi| low > hi);
            if fails_surely {
                out.findings
                    .push(finding(t, at.into_owned(), Value::from(known), expected()));
            } else if !holds_surely {
                out.missing.push(format!(
                    "the count of `{at}` for {} is {low} to {high}, {unknown} of its items being unknown: {}",
                    t.label,
                    unknown_why.join("; ")
                ));
            } else if population == 0 {
                let what = if a.within_period.is_some() {
                    format!("`{at}` has no items in the period for {}", t.label)
                } else {
                    format!("`{at}` is empty for {}", t.label)
                };
                out.empty.push(what);
            }
        }
    }

    fn max_gap(&self, a: &MaxGapArgs, t: &Target<'_>, out: &mut Outcome) {
        let Some(max) = a.max.duration() else {
            let note = format!("max `{}` is not a duration", a.max.as_str());
            return out.missing.push(note);
        };
        let selected = match pick(&a.path, t.value, &t.label) {
            Ok(s) => s,
            Err(note) => return out.missing.push(note),
        };
        for (at, value) in selected {
            let Value::Array(items) = value else {
                out.missing
                    .push(format!("`{at}` is not a list, for {}", t.label));
                continue;
            };
            let mut times = vec![];
            for (i, item) in items.iter().enumerate() {
                match self.item_truth(&a.filter, item, t, &at, i) {
                    Truth::True => {}
                    Truth::False => continue,
                    Truth::Unknown(why) => {
                        out.missing.extend(why);
                        continue;
                    }
                }
                let when = select_in(&a.at, View::Plain(item))
                    .ok()
                    .and_then(|mut sel| sel.next())
                    .and_then(|(_, x)| timestamp(x));
                match when {
                    Some(ts) if self.period.contains(ts) => times.push(ts),
                    Some(_) => {}
                    None => out.missing.push(format!(
                        "`{at}[{i}]` of {} has no timestamp `{}`",
                        t.label,
                        a.at.as_str()
                    )),
                }
            }
            times.sort();
            let mut bounds = vec![self.period.start];
            bounds.extend(times.iter().copied());
            bounds.push(self.period.end);
            let (from, to) = bounds
                .windows(2)
                .map(|w| (w[0], w[1]))
                .max_by_key(|(x, y)| y.unix_seconds() - x.unix_seconds())
                .unwrap_or((self.period.start, self.period.end));
            let gap = (to.unix_seconds() - from.unix_seconds()).max(0) as u64;
            let failed = gap > max.as_secs();
            if !(self.observe || failed) {
                continue;
            }
            let observed = Value::String(format!(
                "longest gap {} from {from} to {to} ({} events in the period)",
                humantime::format_duration(std::time::Duration::from_secs(gap)),
                times.len()
            ));
            if self.observe {
                out.observed.push(Observation {
                    field: format!("{at} (longest gap)"),
                    value: observed.clone(),
                    interval: None,
                });
            }
            if failed {
                let expected = format!(
                    "no gap longer than {} between {} and {}",
                    a.max.as_str(),
                    self.period.start,
                    self.period.end
                );
                out.findings
                    .push(finding(t, at.into_owned(), observed, expected));
            }
        }
    }

    /// Runs a plugin on the target's evidence. Anything but a well-formed
    /// answer (trap, timeout, memory, malformed output) is missing evidence:
    /// the control is inconclusive, never attested, and nothing else fails.
    fn plugin(&self, a: &PluginArgs, t: &Target<'_>) -> Outcome {
        let info = self.host.info(&a.name);
        let with_info = |mut o: Outcome| {
            o.plugins.extend(info.clone());
            o
        };
        let evidence = match &a.path {
            None => t.value.whole().clone(),
            Some(sel) => match pick(sel, t.value, &t.label) {
                Ok(picks) => {
                    let mut values: Vec<Value> = picks.map(|(_, v)| v.clone()).collect();
                    match values.len() {
                        1 => values.swap_remove(0),
                        _ => Value::Array(values),
                    }
                }
                Err(note) => return missing(note),
            },
        };
        let input = serde_json::json!({
            "abi_version": 1,
            "control": {"control_id": self.control.control_id, "title": self.control.title},
            "config": a.config,
            "resource_id": t.id,
            "evidence": evidence,
            "period": {"start": self.period.start, "end": self.period.end},
        });
        let input = match serde_json::to_vec(&input) {
            Ok(b) => b,
            Err(e) => {
                return with_info(missing(format!(
                    "plugin `{}`: cannot encode its input: {e}",
                    a.name
                )))
            }
        };
        let inconclusive = |why: String| {
            with_info(missing(format!(
                "plugin `{}` failed for {}: {why}",
                a.name, t.label
            )))
        };
        let raw = match self.host.call(&a.name, &input) {
            Ok(raw) => raw,
            Err(why) => return inconclusive(why),
        };
        // The answer is untrusted input like any other: NFC, no floats, no control characters.
        let answer: PluginAnswer = match crate::records::parse_json_input(&raw)
            .and_then(crate::records::from_clean_value)
        {
            Ok(a) => a,
            Err(e) => return inconclusive(format!("malformed output: {e}")),
        };
        let observed = |status: &str| Observation {
            field: format!("plugin {}", a.name),
            value: Value::String(status.to_owned()),
            interval: None,
        };
        match answer.status {
            PluginStatus::Pass => {
                let mut o = with_info(Outcome::default());
                o.observed.push(observed("pass"));
                o
            }
            PluginStatus::Inconclusive => inconclusive(
                answer
                    .note
                    .unwrap_or_else(|| "the plugin could not decide".into()),
            ),
            PluginStatus::Fail => {
                let mut findings: Vec<Finding> = answer
                    .findings
                    .into_iter()
                    .map(|f| finding(t, f.field, f.observed, f.expected))
                    .collect();
                if findings.is_empty() {
                    let expected = answer
                        .note
                        .unwrap_or_else(|| format!("what plugin `{}` checks", a.name));
                    findings.push(finding(t, String::new(), Value::Null, expected));
                }
                with_info(Outcome {
                    findings,
                    observed: vec![observed("fail")],
                    ..Outcome::default()
                })
            }
        }
    }
}

/// `base` + `rest`, as readable paths: `services[0]` + `auth_required`.
fn join_location(base: &str, rest: &str) -> String {
    match (base.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => base.to_owned(),
        _ if rest.starts_with('[') => format!("{base}{rest}"),
        _ => format!("{base}.{rest}"),
    }
}

/// A finding about `field` of the target.
fn finding(t: &Target<'_>, field: String, observed: Value, expected: String) -> Finding {
    Finding {
        resource: t.id.to_owned(),
        field,
        observed,
        expected,
        context: t.context.fields(),
        item: BTreeMap::new(),
        interval: None,
    }
}

/// What a path selected, each value with its location as messages write it
/// (`backups.retention_days`, `zones[1]`).
enum Picks<'p, 'v> {
    /// A path of member names: its one value, at the path as written.
    One(Option<(&'p str, &'v Value)>),
    Many(std::vec::IntoIter<Selected<'v>>),
}

impl<'p, 'v> Iterator for Picks<'p, 'v> {
    type Item = (Cow<'p, str>, &'v Value);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Picks::One(one) => one.take().map(|(at, v)| (Cow::Borrowed(at), v)),
            Picks::Many(many) => many
                .next()
                .map(|s| (Cow::Owned(pretty_location(&s.location)), s.value)),
        }
    }
}

/// Why a path picked nothing.
enum Unpicked {
    Nothing,
    Error(String),
}

/// What `path` selects on `value`: a path of member names is looked up
/// (in a resource and its interval together, without merging them), any
/// other goes through the JSONPath library.
fn select_in<'p, 'v>(path: &'p Selector, value: View<'v>) -> Result<Picks<'p, 'v>, Unpicked> {
    if let (Some(names), Some(at)) = (path.names(), path.readable_location()) {
        match value.lookup(names, path.slot()) {
            Lookup::Found(v) => return Ok(Picks::One(Some((at, v)))),
            Lookup::Nothing => return Err(Unpicked::Nothing),
            Lookup::Merge => {}
        }
    }
    match path.select(value.whole()) {
        Ok(s) if s.is_empty() => Err(Unpicked::Nothing),
        Ok(s) => Ok(Picks::Many(s.into_iter())),
        Err(e) => Err(Unpicked::Error(e)),
    }
}

/// What `path` selects on `value`; when it selects nothing, or cannot be
/// evaluated, the note that says so for `label`.
fn pick<'p, 'v>(
    path: &'p Selector,
    value: View<'v>,
    label: &Label<'_>,
) -> Result<Picks<'p, 'v>, String> {
    select_in(path, value).map_err(|why| match why {
        Unpicked::Nothing => {
            let (before, after) = ("no `", "` in the records for ");
            let mut note =
                String::with_capacity(before.len() + path.as_str().len() + after.len() + 24);
            note.push_str(before);
            note.push_str(path.as_str());
            note.push_str(after);
            label.push_to(&mut note);
            note
        }
        Unpicked::Error(e) => format!(
            "`{}` could not be evaluated for {label}: {e}",
            path.as_str()
        ),
    })
}

/// Adds `from` to `into`, each plugin once.
pub(crate) fn merge_plugins(into: &mut Vec<PluginInfo>, from: Vec<PluginInfo>) {
    for p in from {
        if !into.contains(&p) {
            into.push(p);
        }
    }
}

/// The identifier of a list item, for messages: its first `*_id` field, or `zone`.
fn item_name(item: &Value) -> Option<Cow<'_, str>> {
    let obj = item.as_object()?;
    obj.iter()
        .find(|(k, v)| (k.ends_with("_id") || k.as_str() == "zone") && v.is_string())
        .map(|(_, v)| display_id(v))
}

/// The scalar fields of a list item, copied into a finding about a value in it.
fn scalars(item: &Value) -> BTreeMap<String, Value> {
    item.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_array() && !v.is_object())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The names of a resource's lifetime: services are created and deleted,
/// members added and removed.
const LIFETIME: [(&str, &str); 2] = [("created_at", "deleted_at"), ("added_at", "removed_at")];

/// When a resource began and ended, as far as its records say.
fn lifetime(item: &Value) -> (Option<Timestamp>, Option<Timestamp>) {
    let find = |names: [&str; 2]| names.iter().find_map(|n| item.get(*n).and_then(timestamp));
    let born = find([LIFETIME[0].0, LIFETIME[1].0]);
    let ended = find([LIFETIME[0].1, LIFETIME[1].1]);
    (born, ended)
}

fn describe_lifetime(born: Option<Timestamp>, ended: Option<Timestamp>) -> String {
    match (born, ended) {
        (Some(b), Some(e)) => format!("from {b} to {e}"),
        (Some(b), None) => format!("from {b}"),
        (None, Some(e)) => format!("until {e}"),
        (None, None) => "always".into(),
    }
}

fn missing(note: String) -> Outcome {
    Outcome {
        missing: vec![note],
        ..Outcome::default()
    }
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|s| s.parse().ok())
}

fn display_id(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// `$['backups']['retention_days']` -> `backups.retention_days`; `$['zones'][1]` -> `zones[1]`.
pub fn pretty_location(loc: &str) -> String {
    let mut out = String::new();
    let mut rest = loc.strip_prefix('$').unwrap_or(loc);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            if let Some(end) = r.find("']") {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&r[..end]);
                rest = &r[end + 2..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix('[') {
            if let Some(end) = r.find(']') {
                out.push_str(&format!("[{}]", &r[..end]));
                rest = &r[end + 1..];
                continue;
            }
        }
        out.push_str(rest);
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_like_paths() {
        assert_eq!(
            pretty_location("$['backups']['retention_days']"),
            "backups.retention_days"
        );
        assert_eq!(
            pretty_location("$['services'][2]['zones'][0]"),
            "services[2].zones[0]"
        );
        assert_eq!(pretty_location("$"), "");
    }

    /// The note of a resource lacking evidence writes the label without
    /// the formatting machinery: the same text as `{label}`.
    #[test]
    fn labels_push_what_they_display() {
        let item = serde_json::json!({"run_id": "run-7"});
        let resource = Label::Resource("svc-1");
        for label in [
            Label::Organization,
            resource,
            Label::Item {
                at: "backup_runs",
                index: 2,
                item: &item,
                of: &resource,
            },
        ] {
            let mut pushed = String::new();
            label.push_to(&mut pushed);
            assert_eq!(pushed, label.to_string());
        }
        assert_eq!(resource.to_string(), "`svc-1`");
    }

    /// A path of member names is looked up and located without the
    /// JSONPath library: the location it gives is the library's, made readable.
    #[test]
    fn plain_paths_are_located_as_the_library_locates_them() {
        for text in ["tls_enabled", "$.backups.retention_days", "a.b_2.c"] {
            let path = Selector::parse(text);
            let names = path.names().unwrap();
            assert_eq!(
                path.readable_location().unwrap(),
                pretty_location(&crate::framework::selector::member_location(names)),
                "{text}"
            );
        }
    }
}
