//! The records document: what the platform knows about one organization.
//!
//! It is the input of evaluation, whether it comes from a file (`vouch generate
//! --records`) or is assembled by the server from its database. Its shape is the
//! seed's (organization, services with the fields of the legacy report, audit_log)
//! plus optional sections that some controls need. Controls whose evidence a
//! document lacks come out `inconclusive`, never `attested`.
//!
//! Input is validated where it enters ([`RecordsDocument::from_json_slice`]):
//! strings are NFC-normalized, floats and control characters are refused with the
//! JSON path of the offending value, unknown fields are refused, timestamps are
//! converted to UTC whole seconds.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use unicode_normalization::{is_nfc, UnicodeNormalization};

use crate::time::Timestamp;

/// The records document of one organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordsDocument {
    pub organization: Organization,
    /// The party that processes the data on the organization's behalf (GDPR Art. 30(2)(a)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor: Option<Processor>,
    pub services: Vec<Service>,
    pub audit_log: AuditLog,
    /// The organization's members and their sign-in protection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub billing_email: String,
    /// Contact for data-protection questions, when the organization named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_contact_email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Processor {
    pub name: String,
    pub contact_email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpo_email: Option<String>,
}

/// One managed database service, with the fields of the legacy report (seed 001).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub service_id: String,
    pub name: String,
    pub database_type: String,
    pub version: String,
    pub status: String,
    pub zones: Vec<String>,
    pub region: String,
    /// Derived from the zone catalogue: every zone of the service is in the EU.
    pub eu_residency: bool,
    pub storage_region: String,
    /// The service's storage volumes are encrypted at rest.
    pub storage_encrypted: bool,
    /// The seed's name for `backups.encryption_enabled`: one fact, two places.
    /// A document where the two differ is refused; controls read
    /// `backups.encryption_enabled`.
    pub backup_encryption_enabled: bool,
    /// The service refuses connections that do not use TLS (not merely "TLS is
    /// offered").
    pub tls_enabled: bool,
    pub backups: Backups,
    /// Categories of personal data the organization declared for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_categories: Option<Vec<String>>,
    /// Categories of processing carried out for the organization (GDPR Art. 30(2)(b)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_purposes: Option<Vec<String>>,
    /// The business function this ICT service supports (DORA register of information).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ict_function: Option<String>,
    /// The organization marked this service as infrastructure of a high-risk AI
    /// system (`true`) or declared it is not (`false`). Absent means the
    /// classification is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_risk_ai: Option<bool>,
    /// Whether every connection must authenticate (no trust or anonymous access).
    /// Absent means unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_required: Option<bool>,
    /// Every place the service's data lives (its zones, its storage region, its
    /// backup zone), with the country and the GDPR transfer basis. Derived by
    /// the platform from its zone catalogue. When present it lists exactly the
    /// service's zones, storage region and backup zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<Location>>,
    /// Backup runs that finished or started during the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_runs: Option<Vec<BackupRun>>,
    /// Restore tests performed on this service's backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_tests: Option<Vec<RestoreTest>>,
    /// When the service was created, where the platform's history records
    /// it. Absent: the history does not say (the service may be older than
    /// anything recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When the service was deleted; absent: it still existed at the period
    /// end. A deleted service stays in the records of every period it
    /// existed in, with the configuration it had when it was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    /// The service's configuration over time: contiguous intervals, oldest
    /// first, each with the configuration that held from `from` (inclusive)
    /// to `to` (exclusive). Controls judged `throughout_period` read these;
    /// where they do not reach back to the period start (or the service's
    /// creation), nothing is known before the first `from`. Absent: no
    /// history is recorded.
    ///
    /// Refused as contradictory: an interval that ends before it starts, a
    /// gap or an overlap between intervals, an interval before `created_at`
    /// or after `deleted_at`, a configuration other than the service's own
    /// fields in the last interval, and within an interval the same rules as
    /// for the service's own fields (backup encryption, segregation,
    /// locations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ServiceInterval>>,
}

/// The configuration of a service during one interval of its history. The
/// fields mean what the service's fields of the same names mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInterval {
    /// The configuration holds from this time (inclusive) ...
    pub from: Timestamp,
    /// ... to this time (exclusive): the next change, the service's deletion,
    /// or the period end.
    pub to: Timestamp,
    pub zones: Vec<String>,
    pub region: String,
    pub eu_residency: bool,
    pub storage_region: String,
    pub storage_encrypted: bool,
    pub backup_encryption_enabled: bool,
    pub tls_enabled: bool,
    pub backups: BackupConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_risk_ai: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<Location>>,
}

/// The backup configuration of one interval (the fields of `backups` that
/// are configuration, not events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    pub encryption_enabled: bool,
    pub encryption_algorithm: Option<String>,
    pub schedule_enabled: bool,
    pub schedule_cron: Option<String>,
    pub retention_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segregated: Option<bool>,
}

impl Service {
    /// The service's own configuration fields, in the shape of an interval.
    pub fn interval(&self, from: Timestamp, to: Timestamp) -> ServiceInterval {
        let b = &self.backups;
        ServiceInterval {
            from,
            to,
            zones: self.zones.clone(),
            region: self.region.clone(),
            eu_residency: self.eu_residency,
            storage_region: self.storage_region.clone(),
            storage_encrypted: self.storage_encrypted,
            backup_encryption_enabled: self.backup_encryption_enabled,
            tls_enabled: self.tls_enabled,
            backups: BackupConfig {
                encryption_enabled: b.encryption_enabled,
                encryption_algorithm: b.encryption_algorithm.clone(),
                schedule_enabled: b.schedule_enabled,
                schedule_cron: b.schedule_cron.clone(),
                retention_days: b.retention_days,
                storage_zone: b.storage_zone.clone(),
                segregated: b.segregated,
            },
            high_risk_ai: self.high_risk_ai,
            auth_required: self.auth_required,
            locations: self.locations.clone(),
        }
    }
}

/// One place where a service's data lives.
///
/// Refused as contradictory: `eea` true with a `transfer_basis` other than
/// `within_eea` (or the reverse); `adequacy_decision` without `adequacy`;
/// `appropriate_safeguards` or `derogation` without a `safeguard`, or a
/// `safeguard` with any other basis; a `role` other than the three below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub zone: String,
    /// `zone` (the service runs there), `storage_region` or `backup_zone`.
    pub role: String,
    /// ISO 3166-1 alpha-2 country code of the zone.
    pub country: String,
    /// The country is in the European Economic Area (the EU, Iceland,
    /// Liechtenstein, Norway): no transfer to a third country.
    pub eea: bool,
    /// The European Commission has adopted an adequacy decision for the
    /// country (GDPR Art. 45).
    pub adequacy: bool,
    /// `within_eea`, `adequacy_decision` (Art. 45), `appropriate_safeguards`
    /// (Art. 46), `derogation` (Art. 49) or `none` (a transfer with no
    /// recorded basis).
    pub transfer_basis: String,
    /// The recorded safeguard or derogation, e.g. `SCC (EU) 2021/914 module 3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safeguard: Option<String>,
}

/// Backup configuration.
///
/// Refused as contradictory: an `encryption_algorithm` while
/// `encryption_enabled` is false; `segregated` that does not follow from
/// `storage_zone` (true exactly when the storage zone is none of the
/// service's zones nor its storage region; absent or false without a zone);
/// a `last_completed_at` earlier than a succeeded run's `completed_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backups {
    /// The last successful backup at or before the period end; null: none ever
    /// completed.
    pub last_completed_at: Option<Timestamp>,
    pub last_backup_type: Option<String>,
    /// Backup copies are encrypted.
    pub encryption_enabled: bool,
    pub encryption_algorithm: Option<String>,
    pub schedule_enabled: bool,
    pub schedule_cron: Option<String>,
    /// Days a backup copy is kept; null: no retention limit is configured.
    pub retention_days: Option<u32>,
    /// Zone where backup copies are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_zone: Option<String>,
    /// Derived: the backup storage zone is none of the service's own zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segregated: Option<bool>,
}

/// One backup run.
///
/// Refused as contradictory: a status other than `succeeded`, `failed` or
/// `running`; `succeeded` without `completed_at`; `running` with one; a
/// `completed_at` before `started_at`; a `run_id` twice in one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRun {
    pub run_id: String,
    pub started_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// `succeeded`, `failed` or `running`.
    pub status: String,
    pub backup_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreTest {
    pub test_id: String,
    pub performed_at: Timestamp,
    pub succeeded: bool,
}

/// The organization's audit log on the platform.
///
/// Refused as contradictory: `retention_policy` `indefinite` with a
/// `retention_days`; a policy of `N days` with a different `retention_days`;
/// `entry_count` above zero with a null `oldest_entry_at`, or zero with one;
/// in `in_period`: `start` after `end`, more entries in the period than in
/// the log, entries in the period but the oldest entry after the period end,
/// a longest gap longer than the period, or no entries but a gap shorter
/// than the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditLog {
    /// As the platform states it: `indefinite`, `N days`, or `unknown`.
    pub retention_policy: String,
    /// The oldest entry still held at the period end; null: the log is empty.
    pub oldest_entry_at: Option<Timestamp>,
    /// Entries held at the period end, all of them (not only the period's).
    pub entry_count: u64,
    /// Retention in days when the policy is `N days`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Figures about the entries written during a period, so that "the log
    /// covers the period" means entries were written throughout it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_period: Option<AuditPeriod>,
}

/// Audit entries written during one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditPeriod {
    /// The period these figures are for; a control reads them only when it
    /// is the packet's period.
    pub start: Timestamp,
    pub end: Timestamp,
    /// Entries written from `start` to `end`.
    pub entries_in_period: u64,
    /// The longest stretch inside the period with no entry (from the start to
    /// the first entry, between entries, from the last entry to the end), in
    /// whole hours rounded up.
    pub longest_gap_hours: u64,
}

/// A member of the organization: as of the period end, or, for a member
/// removed during the period, as of the removal. A `user_id` twice is
/// refused, and so is `history` that breaks the rules of a service's
/// `history` (gaps, overlaps, outside `added_at`..`removed_at`, a last
/// interval other than the member's own fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub user_id: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub mfa_enabled: bool,
    /// When the member joined the organization, where the history records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<Timestamp>,
    /// When the member was removed; absent: still a member at the period end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<Timestamp>,
    /// The member's role and MFA over time, as a service's `history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<MemberInterval>>,
    /// Stretches between `added_at` and `removed_at` in which the user was not
    /// a member (removed, then added again): the history has a gap exactly
    /// there, and nothing is judged in it. Refused as contradictory: an
    /// absence that is not exactly a gap between two intervals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<Absence>,
}

/// A stretch in which a member was not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Absence {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// A member's role and MFA enrolment during one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInterval {
    pub from: Timestamp,
    pub to: Timestamp,
    pub role: String,
    pub mfa_enabled: bool,
}

/// Why a records document was refused. `path` is a JSONPath to the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    #[error("records are not valid JSON: {message} (line {line}, column {column})")]
    Syntax {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("{path}: floating-point number {value} is not allowed; use an integer")]
    Float { path: String, value: String },
    #[error("{path}: control character U+{code:04X} is not allowed in strings")]
    ControlCharacter { path: String, code: u32 },
    #[error("{path}: invisible formatting character U+{code:04X} (it changes how the text around it displays) is not allowed in strings")]
    InvisibleCharacter { path: String, code: u32 },
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
    #[error("{path}: duplicate service_id `{id}`")]
    DuplicateService { path: String, id: String },
    #[error("{path} contradicts {other}: {message}")]
    Contradiction {
        path: String,
        other: String,
        message: String,
    },
}

impl RecordsDocument {
    /// Parses and validates a records document from JSON bytes.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Self, RecordsError> {
        let value: Value = strict_json(bytes).map_err(|e| RecordsError::Syntax {
            message: syntax_message(&e),
            line: e.line(),
            column: e.column(),
        })?;
        Self::from_value(value)
    }

    /// Validates an already parsed JSON value (NFC, no floats, no control
    /// characters, known fields only) and returns the typed document.
    pub fn from_value(mut value: Value) -> Result<Self, RecordsError> {
        sanitize(&mut value, &mut String::from("$"))?;
        let doc: RecordsDocument =
            serde_path_to_error::deserialize(value).map_err(|e| RecordsError::Shape {
                path: jsonpath_of(e.path()),
                message: e.inner().to_string(),
            })?;
        let mut seen = BTreeSet::new();
        for (i, s) in doc.services.iter().enumerate() {
            if !seen.insert(s.service_id.as_str()) {
                return Err(RecordsError::DuplicateService {
                    path: format!("$.services[{i}].service_id"),
                    id: s.service_id.clone(),
                });
            }
        }
        crate::contradictions::check(&doc)?;
        Ok(doc)
    }

    /// Checks the rules against contradictions (listed in the schema's
    /// descriptions) on a document built in memory, e.g. from a database.
    /// [`Self::from_value`] already applies them to documents that are parsed.
    pub fn check_consistency(&self) -> Result<(), RecordsError> {
        crate::contradictions::check(self)
    }

    /// The document as a JSON value, the form JSONPath expressions are evaluated against.
    pub fn to_value(&self) -> Value {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no floats.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// `true` when every service resides in the EU (and vacuously for none).
    pub fn all_services_eu_residency(&self) -> bool {
        self.services.iter().all(|s| s.eu_residency)
    }
}

fn syntax_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    // serde_json appends " at line L column C"; we report those separately.
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}

/// Validates JSON that enters vouch, wherever it comes from (records documents,
/// the admin API, `vouch import`): refuses floats and control characters with
/// the JSONPath of the value, and normalizes every string (keys included) to NFC.
pub fn clean_json(value: &mut Value) -> Result<(), RecordsError> {
    sanitize(value, &mut String::from("$"))
}

/// Parses JSON that enters vouch: a syntax error with its line and column, then [`clean_json`].
pub fn parse_json_input(bytes: &[u8]) -> Result<Value, RecordsError> {
    let mut value: Value = strict_json(bytes).map_err(|e| RecordsError::Syntax {
        message: syntax_message(&e),
        line: e.line(),
        column: e.column(),
    })?;
    clean_json(&mut value)?;
    Ok(value)
}

/// Parses JSON, refusing an object that names a key twice (which
/// `serde_json` would resolve silently, keeping the last).
pub fn strict_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A `serde_json::Value` seed that refuses duplicate object keys.
struct StrictValue;

impl<'de> serde::de::DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{}` appears twice in one object",
                    key.escape_debug()
                )));
            }
            let v = map.next_value_seed(StrictValue)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Deserializes cleaned JSON into `T`, naming the path of a misfit value.
pub fn from_clean_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, RecordsError> {
    serde_path_to_error::deserialize(value).map_err(|e| RecordsError::Shape {
        path: jsonpath_of(e.path()),
        message: e.inner().to_string(),
    })
}

/// Walks `value`, refusing floats and control characters and normalizing strings to NFC.
fn sanitize(value: &mut Value, path: &mut String) -> Result<(), RecordsError> {
    match value {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => Err(RecordsError::Float {
            path: path.clone(),
            value: n.to_string(),
        }),
        Value::String(s) => clean_string(s, path),
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                sanitize(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (mut key, mut item) in entries {
                let len = path.len();
                push_key(path, &key);
                clean_string(&mut key, path)?;
                sanitize(&mut item, path)?;
                path.truncate(len);
                map.insert(key, item);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Characters that change how text around them is shown without being seen
/// themselves: bidirectional embeddings, overrides, isolates and marks, and
/// zero-width spaces, word joiners, invisible operators, the byte-order mark,
/// the soft hyphen and tag characters. A name holding one can render as
/// another name ("Evil Pro" from other letters); they are refused where
/// strings enter. ZWNJ and ZWJ (U+200C, U+200D) stay allowed: scripts and
/// emoji need them, and they do not reorder text.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x061C | 0x180E | 0x200B | 0x200E | 0x200F | 0x202A..=0x202E
        | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xFEFF | 0xFFF9..=0xFFFB | 0xE0000..=0xE007F)
}

fn clean_string(s: &mut String, path: &str) -> Result<(), RecordsError> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(RecordsError::ControlCharacter {
            path: path.to_owned(),
            code: c as u32,
        });
    }
    if let Some(c) = s.chars().find(|c| is_invisible_format(*c)) {
        return Err(RecordsError::InvisibleCharacter {
            path: path.to_owned(),
            code: c as u32,
        });
    }
    if !is_nfc(s) {
        *s = s.nfc().collect();
    }
    Ok(())
}

fn push_key(path: &mut String, key: &str) {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        path.push('.');
        path.push_str(key);
    } else {
        path.push_str(&format!("[{}]", serde_json::Value::String(key.to_owned())));
    }
}

fn jsonpath_of(path: &serde_path_to_error::Path) -> String {
    let mut out = String::from("$");
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => push_key(&mut out, key),
            serde_path_to_error::Segment::Enum { variant } => push_key(&mut out, variant),
            serde_path_to_error::Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// The committed JSON Schema of the records document (`engine/records.schema.json`).
pub fn json_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(RecordsDocument)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_doc() -> Value {
        serde_json::from_str(include_str!("../../examples/records/seed-only.json")).unwrap()
    }

    #[test]
    fn seed_only_document_is_valid() {
        let doc = RecordsDocument::from_value(seed_doc()).unwrap();
        assert_eq!(doc.services.len(), 3);
        assert!(doc.all_services_eu_residency());
    }

    #[test]
    fn refuses_float_with_path() {
        let mut v = seed_doc();
        v["services"][1]["backups"]["retention_days"] = json!(7.5);
        let err = RecordsDocument::from_value(v).unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.services[1].backups.retention_days: floating-point number 7.5 is not allowed; use an integer"
        );
    }

    #[test]
    fn refuses_control_character_with_path() {
        let mut v = seed_doc();
        v["services"][2]["name"] = json!("orders\u{7}db");
        let err = RecordsDocument::from_value(v).unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.services[2].name: control character U+0007 is not allowed in strings"
        );
    }

    #[test]
    fn refuses_unknown_field_with_path() {
        let mut v = seed_doc();
        v["services"][0]["colour"] = json!("blue");
        let err = RecordsDocument::from_value(v).unwrap_err().to_string();
        assert!(
            err.starts_with("$.services[0].colour: unknown field `colour`"),
            "{err}"
        );
    }

    #[test]
    fn normalizes_to_nfc() {
        let mut v = seed_doc();
        v["organization"]["name"] = json!("Acme Cafe\u{301}");
        let doc = RecordsDocument::from_value(v).unwrap();
        assert_eq!(doc.organization.name, "Acme Caf\u{e9}");
    }

    #[test]
    fn truncated_file_is_a_syntax_error() {
        let text = include_str!("../../examples/records/seed-only.json");
        let err = RecordsDocument::from_json_slice(&text.as_bytes()[..text.len() / 2]).unwrap_err();
        assert!(matches!(err, RecordsError::Syntax { .. }), "{err}");
    }

    #[test]
    fn refuses_duplicate_keys_and_invisible_characters() {
        let dup = parse_json_input(br#"{"framework":"soc2","framework":"dora"}"#).unwrap_err();
        assert!(
            dup.to_string().contains("`framework` appears twice"),
            "{dup}"
        );
        assert!(
            parse_json_input(br#"{"a":{"b":1,"c":{"b":2}}}"#).is_ok(),
            "nesting is not duplication"
        );
        for name in [r"Evil\u202EorP", r"Ev\u200Bil", r"\uFEFFacme", r"a\u2066b"] {
            let doc = format!(r#"{{"name":"{name}"}}"#);
            let err = parse_json_input(doc.as_bytes()).unwrap_err();
            assert!(
                err.to_string().contains("invisible formatting"),
                "{name}: {err}"
            );
        }
        assert!(
            parse_json_input("{\"name\":\"\u{0645}\u{06CC}\u{200C}\u{062E}\"}".as_bytes()).is_ok(),
            "ZWNJ stays allowed"
        );
    }

    #[test]
    fn refuses_duplicate_service_ids() {
        let mut v = seed_doc();
        let first = v["services"][0].clone();
        v["services"].as_array_mut().unwrap().push(first);
        let err = RecordsDocument::from_value(v).unwrap_err();
        assert!(
            matches!(err, RecordsError::DuplicateService { .. }),
            "{err}"
        );
    }
}
