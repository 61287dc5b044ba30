//! Framework definitions: YAML files of controls.
//!
//! A framework file is parsed straight into these types (unknown fields are
//! refused), then validated as a whole by [`load`], which reports every problem
//! with its `file:line:column`. The check vocabulary is [`Check`]; its variants
//! are documented for compliance staff in `frameworks/README.md` and in the
//! committed JSON Schema that editors use.

mod load;
pub mod positions;
pub(crate) mod selector;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) use load::{locate_and_hint, serde_path, strip_location};
pub use load::{
    parse_framework, parse_framework_with, suggest, unknown_name, Diagnostic, FrameworkSet,
    LoadError, NoPlugins, PluginCatalog, BUILTIN, IDENTIFIER_PATTERN,
};
pub use selector::{Age, Selected, Selector};

/// One framework file, e.g. `frameworks/soc2.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// Identifier used in the API and in packets: `soc2`, `gdpr_ropa`, `dora`,
    /// `eu_ai_act`. Must equal the file name without `.yaml`.
    pub framework: String,
    /// Display name, e.g. `SOC 2 Type II`.
    pub name: String,
    /// Version of this definition (e.g. `2026.11`); copied into every packet, so
    /// that a reader knows which edition of the controls judged the records.
    pub version: String,
    /// What a packet of this framework is and is not, in one or two sentences
    /// (e.g. platform-generated evidence, not a SOC 2 report or a legal
    /// opinion); copied into every packet and shown on the PDF cover.
    pub statement: String,
    /// What a packet of this framework attests, in one sentence.
    pub attests: String,
    /// Monthly price of the subscription, in whole euros.
    pub monthly_price_eur: u32,
    /// What the packet covers; copied into every packet.
    pub scope_boundary: String,
    /// How many days after the end of its period a packet stays good
    /// (1 to 3660): its `valid_until`. Without it, packets state no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3660))]
    pub valid_for_days: Option<u32>,
    /// The controls, in the order packets list them.
    pub controls: Vec<Control>,
    /// SHA-256 (lowercase hex) of the YAML text this framework was read
    /// from; recorded in packets so that a reader can tell which text judged
    /// the records. Not part of the file.
    #[serde(skip)]
    #[schemars(skip)]
    pub source_sha256: Option<String>,
}

/// One control: what is asserted, where the evidence is, and how it is checked.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Identifier unique within the framework, e.g. `CC6.1` or `Art30-2-d-encryption`.
    pub control_id: String,
    pub title: String,
    /// The criterion or article the control evidences, e.g. `TSC CC6.1` or `GDPR Art. 30(2)(d)`.
    pub reference: String,
    /// The plain-language statement an auditor accepts when the control is attested.
    pub assertion: String,
    /// JSONPath expressions naming the records the control relies on; listed in the packet.
    pub evidence_refs: Vec<Selector>,
    /// When the evidence holds: configuration as it stands when the packet is
    /// generated, the state at the period end, events during the period, or
    /// events in a look-back window before the period end.
    pub time_basis: TimeBasis,
    /// The numbers the checks compare against, each marked as law or as the
    /// platform's own policy, with its source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
    /// What an empty population means (no services in scope, no backup runs,
    /// nothing to count). Without it an empty population proves nothing and the
    /// control is `inconclusive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<EmptyRule>,
    /// Conditions on the whole document: unless all hold, the control is
    /// `not_applicable` (e.g. "the organization marks a service high-risk AI").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_if: Vec<Check>,
    /// Evaluate the checks once per resource (e.g. per service) instead of once
    /// on the whole document, so that findings name the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// All must hold for the control to be attested.
    pub checks: Vec<Check>,
}

/// Per-resource evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Path to an array of resources, e.g. `services` or `members`. A document
    /// without it makes the control `inconclusive`; an empty array makes it
    /// `not_applicable`.
    pub each: Selector,
    /// Field of each resource that names it in findings, e.g. `service_id`.
    pub id: String,
    /// Only resources for which all these checks hold are in scope (e.g. services
    /// marked `high_risk_ai`). None in scope: `not_applicable`.
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<Check>,
    /// Fields of the resource copied into each finding so the reader sees the
    /// cause, e.g. `[zones, region]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// What a resource whose `where` field is missing or null means. Without it
    /// the resource's scope is unknown and the control is `inconclusive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_missing: Option<WhenMissing>,
    /// The first names of the plain paths (`backups.retention_days`) that
    /// the framework's controls over the same `each` read on each resource,
    /// sorted and distinct: the evaluator finds each resource's members of
    /// these names once, for all those controls. Set when the framework is
    /// loaded; not part of the file.
    #[serde(skip)]
    #[schemars(skip)]
    pub first_names: Vec<String>,
}

/// When the evidence a control reads holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeBasis {
    /// Configuration as it stands when the packet is generated (not the
    /// configuration throughout the period).
    AsOfGeneration,
    /// Configuration throughout the period: every interval of each
    /// resource's `history` within the part of the period the resource
    /// existed. Needs a `scope`.
    ThroughoutPeriod,
    /// The state at the end of the period (e.g. the last completed backup).
    PeriodEnd,
    /// Events recorded during the period, across the whole period.
    DuringPeriod,
    /// Events in a window before the period end (e.g. restore tests in the
    /// 90 days before it).
    Lookback,
}

impl TimeBasis {
    pub const ALL: [TimeBasis; 5] = [
        TimeBasis::AsOfGeneration,
        TimeBasis::ThroughoutPeriod,
        TimeBasis::PeriodEnd,
        TimeBasis::DuringPeriod,
        TimeBasis::Lookback,
    ];

    /// As written in YAML and packets.
    pub fn as_str(&self) -> &'static str {
        match self {
            TimeBasis::AsOfGeneration => "as_of_generation",
            TimeBasis::ThroughoutPeriod => "throughout_period",
            TimeBasis::PeriodEnd => "period_end",
            TimeBasis::DuringPeriod => "during_period",
            TimeBasis::Lookback => "lookback",
        }
    }

    /// In words, for readers of the PDF and the README.
    pub fn describe(&self) -> &'static str {
        match self {
            TimeBasis::AsOfGeneration => {
                "configuration as it stood when the packet was generated, not throughout the period"
            }
            TimeBasis::ThroughoutPeriod => {
                "configuration throughout the period, every change included"
            }
            TimeBasis::PeriodEnd => "the state at the end of the period",
            TimeBasis::DuringPeriod => "events recorded throughout the period",
            TimeBasis::Lookback => "events in a window before the end of the period",
        }
    }
}

/// A number a check compares against, and whether law or the platform's
/// policy sets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// As written in the checks, e.g. `36h` or `365 days`.
    pub value: String,
    pub basis: ThresholdBasis,
    /// Where it comes from, e.g. `EU AI Act Art. 19(1)` or `platform backup policy`.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdBasis {
    /// Set by the regulation or standard itself.
    Law,
    /// Chosen by the platform; the standard asks for a policy, not this number.
    PlatformPolicy,
}

/// What an empty population means for a control, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRule {
    /// `not_applicable` (the resources that have nothing to judge are excluded,
    /// and with none left the control does not apply) or `attested`.
    pub status: EmptyStatus,
    /// Why, in words an auditor accepts; recorded in the packet.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmptyStatus {
    NotApplicable,
    Attested,
}

/// What a missing or null field in a `where` filter means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhenMissing {
    /// The only choice: `exclude` the resource (or item), recorded in the packet.
    pub action: MissingAction,
    /// Why missing means out of scope; recorded in the packet with each exclusion.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingAction {
    Exclude,
}

/// The check vocabulary. Paths are relative to the resource when the control has
/// a `scope`, otherwise to the document root. A path that selects nothing is
/// missing evidence: the control is then `inconclusive`, never `attested`.
///
/// In YAML a check is a map with exactly one key, the operator:
/// `- all_true: tls_enabled` or `- at_least: { path: retention_days, value: 7 }`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Every selected value is `true`: `all_true: tls_enabled`.
    #[schemars(example = serde_json::json!({"all_true": "tls_enabled"}))]
    AllTrue(Selector),
    /// Every selected value is present and not empty: not null, not `""`, not `[]`.
    #[schemars(example = serde_json::json!({"non_empty": "processor.contact_email"}))]
    NonEmpty(Selector),
    /// Every selected value equals `value`.
    #[schemars(example = serde_json::json!({"equals": {"path": "backups.encryption_algorithm", "value": "AES-256-GCM"}}))]
    Equals(EqualsArgs),
    /// Every selected value is one of `values`.
    #[schemars(example = serde_json::json!({"one_of": {"path": "role", "values": ["owner", "admin", "member"]}}))]
    OneOf(OneOfArgs),
    /// Every selected value is an integer of at least `value`.
    #[schemars(example = serde_json::json!({"at_least": {"path": "backups.retention_days", "value": 7}}))]
    AtLeast(BoundArgs),
    /// Every selected value is an integer of at most `value`.
    #[schemars(example = serde_json::json!({"at_most": {"path": "backups.retention_days", "value": 35}}))]
    AtMost(BoundArgs),
    /// Every selected value is a timestamp no older than `max_age` before the
    /// period end (and not after it).
    #[schemars(example = serde_json::json!({"not_older_than": {"path": "backups.last_completed_at", "max_age": "36h"}}))]
    NotOlderThan(AgeArgs),
    /// Every selected value is a timestamp at or before the period start: the
    /// records cover the whole period (e.g. `audit_log.oldest_entry_at`).
    #[schemars(example = serde_json::json!({"covers_period": "audit_log.oldest_entry_at"}))]
    CoversPeriod(Selector),
    /// The path selects an array; the number of its items that pass `where`
    /// (and, with `within_period`, whose timestamp lies in the period) is
    /// between `min` and `max`.
    #[schemars(example = serde_json::json!({"count": {"path": "backup_runs", "where": [{"equals": {"path": "status", "value": "succeeded"}}], "within_period": "completed_at", "min": 1}}))]
    Count(CountArgs),
    /// At least one of these checks holds.
    #[schemars(example = serde_json::json!({"any_of": [{"equals": {"path": "audit_log.retention_policy", "value": "indefinite"}}, {"at_least": {"path": "audit_log.retention_days", "value": 183}}]}))]
    AnyOf(Vec<Check>),
    /// The path selects an array of events; across the whole period, no gap
    /// between the period start, the timestamps at `at` of the items that pass
    /// `where`, and the period end is longer than `max`.
    #[schemars(example = serde_json::json!({"max_gap": {"path": "backup_runs", "at": "completed_at", "where": [{"equals": {"path": "status", "value": "succeeded"}}], "max": "36h"}}))]
    MaxGap(MaxGapArgs),
    /// The object at the path (`{start, end, ...}`) holds figures computed for
    /// exactly the packet's period; otherwise they are evidence of another
    /// period and the control is inconclusive.
    #[schemars(example = serde_json::json!({"for_period": "audit_log.in_period"}))]
    ForPeriod(Selector),
    /// A WebAssembly plugin decides (for what JSONPath cannot express); see
    /// `plugins/ABI.md`. Its sha256 is pinned here and checked at load.
    #[schemars(example = serde_json::json!({"plugin": {"name": "residency", "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "config": {}}}))]
    Plugin(PluginArgs),
}

/// The operators, as written in YAML.
pub const OPERATORS: &[&str] = &[
    "all_true",
    "non_empty",
    "equals",
    "one_of",
    "at_least",
    "at_most",
    "not_older_than",
    "covers_period",
    "count",
    "any_of",
    "max_gap",
    "for_period",
    "plugin",
];

// serde_yaml reads externally tagged enums only from `!tag` syntax once a value
// went through `serde_yaml::Value`; a check is written as a one-key map, so it is
// read as one, whatever the deserializer.
impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Check;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a check: a map with one operator key, e.g. `all_true: tls_enabled`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Check, A::Error> {
                use serde::de::Error;
                let Some(op) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(
                        "empty check: write one operator, e.g. `all_true: tls_enabled`",
                    ));
                };
                let check = match op.as_str() {
                    "all_true" => Check::AllTrue(map.next_value()?),
                    "non_empty" => Check::NonEmpty(map.next_value()?),
                    "equals" => Check::Equals(map.next_value()?),
                    "one_of" => Check::OneOf(map.next_value()?),
                    "at_least" => Check::AtLeast(map.next_value()?),
                    "at_most" => Check::AtMost(map.next_value()?),
                    "not_older_than" => Check::NotOlderThan(map.next_value()?),
                    "covers_period" => Check::CoversPeriod(map.next_value()?),
                    "count" => Check::Count(map.next_value()?),
                    "any_of" => Check::AnyOf(map.next_value()?),
                    "max_gap" => Check::MaxGap(map.next_value()?),
                    "for_period" => Check::ForPeriod(map.next_value()?),
                    "plugin" => Check::Plugin(map.next_value()?),
                    other => return Err(A::Error::unknown_variant(other, OPERATORS)),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "a check has exactly one operator, but `{op}` is followed by `{extra}`: start a new list item (`- {extra}: ...`)"
                    )));
                }
                Ok(check)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EqualsArgs {
    /// The values to compare, e.g. `backups.encryption_algorithm`.
    #[schemars(example = &"backups.encryption_algorithm")]
    pub path: Selector,
    /// A string, boolean, integer or null.
    pub value: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneOfArgs {
    /// The values to look up, e.g. `role`.
    #[schemars(example = &"role")]
    pub path: Selector,
    /// Strings, booleans, integers or null.
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundArgs {
    /// The integers to compare, e.g. `backups.retention_days`.
    #[schemars(example = &"backups.retention_days")]
    pub path: Selector,
    /// The bound, included: mark it under the control's `thresholds`.
    #[schemars(example = 7)]
    pub value: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgeArgs {
    /// The timestamps (RFC 3339) to judge, e.g. `backups.last_completed_at`.
    #[schemars(example = &"backups.last_completed_at")]
    pub path: Selector,
    /// How long before the period end a timestamp may lie: `36h`, `7d`, `6months`.
    #[schemars(example = &"36h")]
    pub max_age: Age,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginArgs {
    /// The plugin's file name without `.wasm`, in `VOUCH_PLUGINS_DIR`.
    pub name: String,
    /// Lowercase hex SHA-256 of the `.wasm` file (`vouch plugins check FILE` prints it).
    pub sha256: String,
    /// Handed to the plugin as `config`.
    #[serde(default)]
    pub config: Value,
    /// The evidence handed to the plugin, relative to the resource (or the
    /// document root without a scope) [default: the whole resource].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Selector>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountArgs {
    /// Path to an array, e.g. `backup_runs`.
    pub path: Selector,
    /// Only items for which all these checks hold are counted.
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<Check>,
    /// Only items whose timestamp at this path lies within the period are counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_period: Option<Selector>,
    /// At least this many items must count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 1)]
    pub min: Option<u64>,
    /// At most this many items may count (`max: 0`: none may). With nothing
    /// to count, `max` alone proves nothing: the check is inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 0)]
    pub max: Option<u64>,
    /// What an item whose `where` field is missing or null means. Without it
    /// the item might count or not, and the check holds only if it holds either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_missing: Option<WhenMissing>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaxGapArgs {
    /// Path to an array of events, e.g. `backup_runs`.
    pub path: Selector,
    /// The timestamp of each event, relative to the item, e.g. `completed_at`.
    pub at: Selector,
    /// Only items for which all these checks hold are events.
    #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<Check>,
    /// The longest gap allowed, e.g. `36h`.
    pub max: Age,
}

impl Framework {
    /// The control with this id.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.control_id == id)
    }
}

/// The committed JSON Schema of framework files (`frameworks/framework.schema.json`).
///
/// Each check's description and examples are on its operator key too, where
/// an editor (yaml-language-server) shows them on hover over `at_least:`.
pub fn json_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Framework)).unwrap_or(Value::Null);
    if let Some(Value::Array(checks)) = schema.pointer_mut("/$defs/Check/oneOf") {
        for check in checks {
            let copied: Vec<(String, Value)> = ["description", "examples"]
                .iter()
                .filter_map(|k| Some(((*k).to_owned(), check.get(*k)?.clone())))
                .collect();
            if let Some(Value::Object(props)) = check.get_mut("properties") {
                for (_, operator) in props.iter_mut() {
                    if let Value::Object(o) = operator {
                        o.extend(copied.iter().cloned());
                    }
                }
            }
        }
    }
    schema
}
