//! Platform records in: a batch of organizations, users, memberships, services,
//! backup runs, restore tests and audit events, created or updated together.
//!
//! The admin API (`POST /admin/v1/records`) and `vouch import FILE` share this
//! code. Input is validated where it enters: strings NFC-normalized; floats,
//! control characters and unknown fields refused with the path of the value;
//! zones checked against the catalogue. A batch is applied in one transaction:
//! a rejected batch changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vouch_engine::records::{from_clean_value, parse_json_input, RecordsError};
use vouch_engine::Timestamp;

use crate::auth::password::{check_hash, hash_password};
use crate::auth::Role;
use crate::zones::Catalogue;

/// Why a batch was refused. Each is a 400 with the JSONPath of the bad value.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Input(#[from] RecordsError),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(#[from] anyhow::Error),
}

pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ImportBatch")]
pub struct Batch {
    #[serde(default)]
    pub platform: Option<PlatformIn>,
    #[serde(default)]
    pub organizations: Vec<OrganizationIn>,
    #[serde(default)]
    pub users: Vec<UserIn>,
    #[serde(default)]
    pub memberships: Vec<MembershipIn>,
    #[serde(default)]
    pub services: Vec<ServiceIn>,
    #[serde(default)]
    pub backup_runs: Vec<BackupRunIn>,
    #[serde(default)]
    pub restore_tests: Vec<RestoreTestIn>,
    #[serde(default)]
    pub audit_events: Vec<AuditEventIn>,
    /// Dated changes of services' configuration, in any order.
    #[serde(default)]
    pub service_changes: Vec<ServiceChangeIn>,
    /// Dated changes of memberships (added, removed, role, MFA), in any order.
    #[serde(default)]
    pub member_changes: Vec<MemberChangeIn>,
}

/// The platform's own identity as processor (GDPR Art. 30(2)(a)).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformIn {
    pub processor_name: String,
    pub contact_email: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub dpo_email: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationIn {
    pub id: String,
    pub name: String,
    pub billing_email: String,
    #[serde(default)]
    pub privacy_contact_email: Option<String>,
    /// Audit-log retention in days; absent or null: kept indefinitely.
    #[serde(default)]
    pub audit_retention_days: Option<u32>,
    /// Safeguards recorded for transfers to third countries (GDPR Art. 46, 49),
    /// by ISO 3166-1 alpha-2 country code: `{"US": "SCC (EU) 2021/914 module 3"}`.
    #[serde(default)]
    pub transfer_safeguards: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    pub username: String,
    /// A password to hash with argon2 (never stored as given) ...
    #[serde(default)]
    pub password: Option<String>,
    /// ... or an argon2 PHC hash made elsewhere.
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub mfa_enabled: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipIn {
    pub organization_id: String,
    pub username: String,
    #[schemars(schema_with = "role_schema")]
    pub role: String,
}

fn role_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let roles = [Role::Owner, Role::Admin, Role::Member].map(|r| r.as_str());
    schemars::json_schema!({"type": "string", "enum": roles})
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceIn {
    pub service_id: String,
    pub organization_id: String,
    pub name: String,
    pub database_type: String,
    pub version: String,
    pub status: String,
    pub zones: Vec<String>,
    pub storage_region: String,
    pub storage_encrypted: bool,
    pub backup_encryption_enabled: bool,
    pub tls_enabled: bool,
    #[serde(default)]
    pub auth_required: Option<bool>,
    #[serde(default)]
    pub high_risk_ai: Option<bool>,
    #[serde(default)]
    pub ict_function: Option<String>,
    #[serde(default)]
    pub data_categories: Option<Vec<String>>,
    #[serde(default)]
    pub processing_purposes: Option<Vec<String>>,
    pub backup_policy: BackupPolicyIn,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupPolicyIn {
    pub schedule_enabled: bool,
    #[serde(default)]
    pub schedule_cron: Option<String>,
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub encryption_algorithm: Option<String>,
    #[serde(default)]
    pub storage_zone: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRunIn {
    pub run_id: String,
    pub service_id: String,
    pub started_at: Timestamp,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
    pub status: String,
    pub backup_type: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreTestIn {
    pub test_id: String,
    pub service_id: String,
    pub performed_at: Timestamp,
    pub succeeded: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEventIn {
    /// Unique: importing the same event twice keeps one.
    pub event_id: String,
    pub organization_id: String,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub remote_addr: Option<String>,
}

/// What happened to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceEvent {
    /// The service was created with the configuration in `set` (all of it).
    Created,
    /// The fields in `set` changed; the others kept their values.
    Updated,
    /// The service was deleted (no `set`).
    Deleted,
}

impl ServiceEvent {
    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceEvent::Created => "created",
            ServiceEvent::Updated => "updated",
            ServiceEvent::Deleted => "deleted",
        }
    }
}

/// What happened to a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberEvent {
    /// The user joined the organization with the role and MFA in `set`.
    Added,
    /// The fields in `set` changed.
    Updated,
    /// The user left the organization (no `set`).
    Removed,
}

impl MemberEvent {
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberEvent::Added => "added",
            MemberEvent::Updated => "updated",
            MemberEvent::Removed => "removed",
        }
    }
}

/// One dated change of a service's configuration. Its `change_id` names it:
/// sending the same change again changes nothing; another change under the
/// same id is refused.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceChangeIn {
    pub change_id: String,
    pub service_id: String,
    /// When the change took effect on the platform (not when it is sent).
    pub at: Timestamp,
    pub event: ServiceEvent,
    /// The configuration fields that took these values.
    #[serde(default)]
    pub set: Option<ServiceConfigPatch>,
}

/// One dated change of a membership, by `change_id` as for services.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberChangeIn {
    pub change_id: String,
    pub organization_id: String,
    pub username: String,
    pub at: Timestamp,
    pub event: MemberEvent,
    #[serde(default)]
    pub set: Option<MemberPatch>,
}

/// The configuration of a service that its history records, as stored after
/// each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub zones: Vec<String>,
    pub storage_region: String,
    pub storage_encrypted: bool,
    pub backup_encryption_enabled: bool,
    pub tls_enabled: bool,
    #[serde(default)]
    pub auth_required: Option<bool>,
    #[serde(default)]
    pub high_risk_ai: Option<bool>,
    pub backup_schedule_enabled: bool,
    #[serde(default)]
    pub backup_schedule_cron: Option<String>,
    #[serde(default)]
    pub backup_retention_days: Option<u32>,
    #[serde(default)]
    pub backup_encryption_algorithm: Option<String>,
    #[serde(default)]
    pub backup_storage_zone: Option<String>,
}

impl From<&ServiceIn> for ServiceConfig {
    fn from(s: &ServiceIn) -> Self {
        let p = &s.backup_policy;
        ServiceConfig {
            zones: s.zones.clone(),
            storage_region: s.storage_region.clone(),
            storage_encrypted: s.storage_encrypted,
            backup_encryption_enabled: s.backup_encryption_enabled,
            tls_enabled: s.tls_enabled,
            auth_required: s.auth_required,
            high_risk_ai: s.high_risk_ai,
            backup_schedule_enabled: p.schedule_enabled,
            backup_schedule_cron: p.schedule_cron.clone(),
            backup_retention_days: p.retention_days,
            backup_encryption_algorithm: p.encryption_algorithm.clone(),
            backup_storage_zone: p.storage_zone.clone(),
        }
    }
}

/// A field a change may set: left out (unchanged), or the value it takes
/// (`null` included, where the field may be null).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Set<T> {
    #[default]
    Unchanged,
    To(T),
}

impl<T> Set<T> {
    pub fn is_unchanged(&self) -> bool {
        matches!(self, Set::Unchanged)
    }
    pub fn value(&self) -> Option<&T> {
        match self {
            Set::To(v) => Some(v),
            Set::Unchanged => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Set<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Set::To)
    }
}

impl<T: Serialize> Serialize for Set<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Set::To(v) => v.serialize(s),
            Set::Unchanged => s.serialize_none(),
        }
    }
}

impl<T: JsonSchema> JsonSchema for Set<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<T>()
    }
}

/// The fields of [`ServiceConfig`] a change sets; a field left out keeps
/// its value. `null` is a value for the fields that may be null (e.g.
/// `backup_retention_days: null`: no retention limit from then on).
#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfigPatch {
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub zones: Set<Vec<String>>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub storage_region: Set<String>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub storage_encrypted: Set<bool>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub backup_encryption_enabled: Set<bool>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub tls_enabled: Set<bool>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub auth_required: Set<Option<bool>>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub high_risk_ai: Set<Option<bool>>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub backup_schedule_enabled: Set<bool>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub backup_schedule_cron: Set<Option<String>>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub backup_retention_days: Set<Option<u32>>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub backup_encryption_algorithm: Set<Option<String>>,
    #[serde(default, skip_serializing_if = "Set::is_unchanged")]
    pub backup_storage_zone: Set<Option<String>>,
}

impl ServiceConfigPatch {
    /// The whole configuration when this patch gives every field that has
    /// no default (a `created` change, or a first known state).
    pub fn whole(&self) -> Option<ServiceConfig> {
        Some(ServiceConfig {
            zones: self.zones.value()?.clone(),
            storage_region: self.storage_region.value()?.clone(),
            storage_encrypted: *self.storage_encrypted.value()?,
            backup_encryption_enabled: *self.backup_encryption_enabled.value()?,
            tls_enabled: *self.tls_enabled.value()?,
            backup_schedule_enabled: *self.backup_schedule_enabled.value()?,
            auth_required: self.auth_required.value().copied().flatten(),
            high_risk_ai: self.high_risk_ai.value().copied().flatten(),
            backup_schedule_cron: self.backup_schedule_cron.value().cloned().flatten(),
            backup_retention_days: self.backup_retention_days.value().copied().flatten(),
            backup_encryption_algorithm: self
                .backup_encryption_algorithm
                .value()
                .cloned()
                .flatten(),
            backup_storage_zone: self.backup_storage_zone.value().cloned().flatten(),
        })
    }

    /// `base` with this patch's fields in place.
    pub fn apply(&self, base: &ServiceConfig) -> ServiceConfig {
        let mut c = base.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Set::To(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        set!(
            zones,
            storage_region,
            storage_encrypted,
            backup_encryption_enabled,
            tls_enabled,
            auth_required,
            high_risk_ai,
            backup_schedule_enabled,
            backup_schedule_cron,
            backup_retention_days,
            backup_encryption_algorithm,
            backup_storage_zone
        );
        c
    }

    fn is_empty(&self) -> bool {
        serde_json::to_value(self).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
    }
}

/// A member's role and MFA, as stored after each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberState {
    #[schemars(schema_with = "role_schema")]
    pub role: String,
    pub mfa_enabled: bool,
}

/// The fields of [`MemberState`] a change sets.
#[derive(Debug, Default, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "role_schema")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_enabled: Option<bool>,
}

impl MemberPatch {
    pub fn whole(&self) -> Option<MemberState> {
        Some(MemberState {
            role: self.role.clone()?,
            mfa_enabled: self.mfa_enabled?,
        })
    }

    pub fn apply(&self, base: &MemberState) -> MemberState {
        MemberState {
            role: self.role.clone().unwrap_or_else(|| base.role.clone()),
            mfa_enabled: self.mfa_enabled.unwrap_or(base.mfa_enabled),
        }
    }
}

/// What a batch changed, by kind.
#[derive(Debug, Default, Serialize, PartialEq, Eq, JsonSchema)]
pub struct Applied {
    pub platform: u64,
    pub organizations: u64,
    pub users: u64,
    pub memberships: u64,
    pub services: u64,
    pub backup_runs: u64,
    pub restore_tests: u64,
    pub audit_events: u64,
    /// Changes recorded: those sent, and the current configuration of a
    /// service or membership where it differs from what the history says.
    pub service_changes: u64,
    pub member_changes: u64,
}

/// Who sent the batch, for vouch's own audit entries.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub remote_addr: Option<String>,
}

/// The stored hash of every user of the batch, in order: a given password
/// is hashed with argon2 (slow on purpose: call this off the async workers).
pub fn password_hashes(batch: &Batch) -> Result<Vec<String>, ImportError> {
    batch
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| match (&u.password, &u.password_hash) {
            (Some(p), _) => Ok(hash_password(p)?),
            (None, Some(h)) => Ok(h.clone()),
            (None, None) => Err(invalid(format!("$.users[{i}]"), "a user needs a password")),
        })
        .collect()
}

/// Parses and validates a batch; nothing is written.
pub fn parse(bytes: &[u8], zones: &Catalogue) -> Result<Batch, ImportError> {
    let value: Value = parse_json_input(bytes)?;
    if !value.is_object() {
        return Err(invalid(
            "$",
            "a batch is a JSON object with lists such as `organizations` and `services`",
        ));
    }
    let batch: Batch = from_clean_value(value)?;
    validate(&batch, zones)?;
    Ok(batch)
}

const MAX_ID: usize = 200;
const MAX_TEXT: usize = 2000;

fn check_id(path: String, id: &str) -> Result<(), ImportError> {
    if id.trim().is_empty() || id.len() > MAX_ID || id != id.trim() {
        return Err(invalid(
            path,
            format!("`{id}` is not an identifier: 1 to {MAX_ID} characters, no surrounding spaces"),
        ));
    }
    Ok(())
}

fn check_text(path: String, text: &str) -> Result<(), ImportError> {
    if text.trim().is_empty() || text.len() > MAX_TEXT {
        return Err(invalid(path, format!("must be 1 to {MAX_TEXT} characters")));
    }
    Ok(())
}

fn check_zone(path: String, zone: &str, zones: &Catalogue) -> Result<(), ImportError> {
    if zones.get(zone).is_none() {
        return Err(invalid(
            path,
            format!(
                "unknown zone `{zone}`; the zone catalogue (frameworks/reference/zones.yaml) has: {}",
                zones.names().join(", ")
            ),
        ));
    }
    Ok(())
}

/// A service's zones: at least one, each in the catalogue.
fn check_zones(path: &str, list: &[String], zones: &Catalogue) -> Result<(), ImportError> {
    if list.is_empty() {
        return Err(invalid(path, "a service runs in at least one zone"));
    }
    for (j, z) in list.iter().enumerate() {
        check_zone(format!("{path}[{j}]"), z, zones)?;
    }
    Ok(())
}

fn unique<'a>(kind: &str, ids: impl Iterator<Item = &'a str>) -> Result<(), ImportError> {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.enumerate() {
        if !seen.insert(id) {
            return Err(invalid(
                format!("$.{kind}[{i}]"),
                format!("`{id}` appears twice in this batch"),
            ));
        }
    }
    Ok(())
}

/// Everything that can be checked without the database.
pub fn validate(b: &Batch, zones: &Catalogue) -> Result<(), ImportError> {
    if let Some(p) = &b.platform {
        check_text("$.platform.processor_name".into(), &p.processor_name)?;
        check_text("$.platform.contact_email".into(), &p.contact_email)?;
    }
    unique(
        "organizations",
        b.organizations.iter().map(|o| o.id.as_str()),
    )?;
    for (i, o) in b.organizations.iter().enumerate() {
        check_id(format!("$.organizations[{i}].id"), &o.id)?;
        check_text(format!("$.organizations[{i}].name"), &o.name)?;
        check_text(
            format!("$.organizations[{i}].billing_email"),
            &o.billing_email,
        )?;
        for (country, safeguard) in o.transfer_safeguards.iter().flatten() {
            let at = format!(
                "$.organizations[{i}].transfer_safeguards[{}]",
                Value::String(country.clone())
            );
            if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(invalid(
                    at,
                    "a country is an ISO 3166-1 alpha-2 code such as `US`",
                ));
            }
            check_text(at, safeguard)?;
        }
    }
    unique("users", b.users.iter().map(|u| u.username.as_str()))?;
    for (i, u) in b.users.iter().enumerate() {
        check_id(format!("$.users[{i}].username"), &u.username)?;
        if u.username.contains(':') {
            return Err(invalid(
                format!("$.users[{i}].username"),
                "a username cannot contain `:` (HTTP Basic separates with it)",
            ));
        }
        match (&u.password, &u.password_hash) {
            (Some(p), None) if p.chars().count() >= 4 && p.len() <= 1024 => {}
            (Some(_), None) => {
                return Err(invalid(
                    format!("$.users[{i}].password"),
                    "a password has 4 to 1024 characters",
                ))
            }
            (None, Some(h)) => {
                check_hash(h).map_err(|why| invalid(format!("$.users[{i}].password_hash"), why))?
            }
            _ => {
                return Err(invalid(
                    format!("$.users[{i}]"),
                    "give exactly one of `password` and `password_hash`",
                ))
            }
        }
    }
    for (i, m) in b.memberships.iter().enumerate() {
        if Role::parse(&m.role).is_none() {
            return Err(invalid(
                format!("$.memberships[{i}].role"),
                format!("`{}` is not a role: owner, admin or member", m.role),
            ));
        }
    }
    unique("services", b.services.iter().map(|s| s.service_id.as_str()))?;
    for (i, s) in b.services.iter().enumerate() {
        let at = |f: &str| format!("$.services[{i}].{f}");
        check_id(at("service_id"), &s.service_id)?;
        check_text(at("name"), &s.name)?;
        check_zones(&at("zones"), &s.zones, zones)?;
        check_zone(at("storage_region"), &s.storage_region, zones)?;
        if let Some(z) = &s.backup_policy.storage_zone {
            check_zone(at("backup_policy.storage_zone"), z, zones)?;
        }
        if let (false, Some(alg)) = (
            s.backup_encryption_enabled,
            &s.backup_policy.encryption_algorithm,
        ) {
            return Err(invalid(
                at("backup_policy.encryption_algorithm"),
                format!(
                    "contradicts {}: an algorithm `{alg}` for backups that are not encrypted",
                    at("backup_encryption_enabled")
                ),
            ));
        }
    }
    unique(
        "backup_runs",
        b.backup_runs.iter().map(|r| r.run_id.as_str()),
    )?;
    for (i, r) in b.backup_runs.iter().enumerate() {
        check_id(format!("$.backup_runs[{i}].run_id"), &r.run_id)?;
        if !matches!(r.status.as_str(), "succeeded" | "failed" | "running") {
            return Err(invalid(
                format!("$.backup_runs[{i}].status"),
                format!(
                    "`{}` is not a run status: succeeded, failed or running",
                    r.status
                ),
            ));
        }
        match r.completed_at {
            Some(c) if c < r.started_at => {
                return Err(invalid(
                    format!("$.backup_runs[{i}].completed_at"),
                    "completed before it started",
                ));
            }
            None if r.status == "succeeded" => {
                return Err(invalid(
                    format!("$.backup_runs[{i}].completed_at"),
                    "a succeeded run has a completed_at",
                ));
            }
            Some(_) if r.status == "running" => {
                return Err(invalid(
                    format!("$.backup_runs[{i}].completed_at"),
                    format!(
                        "contradicts $.backup_runs[{i}].status: a running run has not completed"
                    ),
                ));
            }
            _ => {}
        }
    }
    unique(
        "restore_tests",
        b.restore_tests.iter().map(|t| t.test_id.as_str()),
    )?;
    for (i, t) in b.restore_tests.iter().enumerate() {
        check_id(format!("$.restore_tests[{i}].test_id"), &t.test_id)?;
    }
    unique(
        "audit_events",
        b.audit_events.iter().map(|e| e.event_id.as_str()),
    )?;
    for (i, e) in b.audit_events.iter().enumerate() {
        check_id(format!("$.audit_events[{i}].event_id"), &e.event_id)?;
        check_text(format!("$.audit_events[{i}].action"), &e.action)?;
    }
    unique(
        "service_changes",
        b.service_changes.iter().map(|c| c.change_id.as_str()),
    )?;
    for (i, c) in b.service_changes.iter().enumerate() {
        let at = |f: &str| format!("$.service_changes[{i}].{f}");
        check_id(at("change_id"), &c.change_id)?;
        match (c.event, &c.set) {
            (ServiceEvent::Deleted, Some(_)) => {
                return Err(invalid(at("set"), "a deletion sets no configuration"))
            }
            (ServiceEvent::Created, None) => {
                return Err(invalid(at("set"), "a created service has a configuration: give all of it in `set`"))
            }
            (ServiceEvent::Created, Some(p)) if p.whole().is_none() => {
                return Err(invalid(
                    at("set"),
                    "a created service needs its whole configuration: zones, storage_region, storage_encrypted, backup_encryption_enabled, tls_enabled and backup_schedule_enabled at least",
                ))
            }
            (ServiceEvent::Updated, None) => {
                return Err(invalid(at("set"), "an update names the fields that changed in `set`"))
            }
            (ServiceEvent::Updated, Some(p)) if p.is_empty() => {
                return Err(invalid(at("set"), "an update names the fields that changed in `set`"))
            }
            _ => {}
        }
        if let Some(p) = &c.set {
            if let Set::To(zs) = &p.zones {
                check_zones(&at("set.zones"), zs, zones)?;
            }
            if let Set::To(z) = &p.storage_region {
                check_zone(at("set.storage_region"), z, zones)?;
            }
            if let Set::To(Some(z)) = &p.backup_storage_zone {
                check_zone(at("set.backup_storage_zone"), z, zones)?;
            }
        }
    }
    unique(
        "member_changes",
        b.member_changes.iter().map(|c| c.change_id.as_str()),
    )?;
    for (i, c) in b.member_changes.iter().enumerate() {
        let at = |f: &str| format!("$.member_changes[{i}].{f}");
        check_id(at("change_id"), &c.change_id)?;
        if let Some(role) = c.set.as_ref().and_then(|p| p.role.as_deref()) {
            if Role::parse(role).is_none() {
                return Err(invalid(
                    at("set.role"),
                    format!("`{role}` is not a role: owner, admin or member"),
                ));
            }
        }
        match (c.event, &c.set) {
            (MemberEvent::Removed, Some(_)) => {
                return Err(invalid(at("set"), "a removal sets nothing"))
            }
            (MemberEvent::Added, p) if p.as_ref().and_then(MemberPatch::whole).is_none() => {
                return Err(invalid(
                    at("set"),
                    "an added member has a `role` and `mfa_enabled`",
                ))
            }
            (MemberEvent::Updated, p)
                if p.as_ref()
                    .is_none_or(|p| p.role.is_none() && p.mfa_enabled.is_none()) =>
            {
                return Err(invalid(
                    at("set"),
                    "an update names the fields that changed in `set`",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(batch: serde_json::Value) -> String {
        let zones = Catalogue::builtin().expect("the built-in catalogue loads");
        match parse(batch.to_string().as_bytes(), &zones) {
            Ok(_) => panic!("accepted: {batch}"),
            Err(e) => e.to_string(),
        }
    }

    fn service(encrypted: bool, algorithm: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "service_id": "s1", "organization_id": "o", "name": "db", "database_type": "postgresql",
            "version": "17", "status": "running", "zones": ["de-fra1"], "storage_region": "de-fra1",
            "storage_encrypted": true, "backup_encryption_enabled": encrypted, "tls_enabled": true,
            "backup_policy": {"schedule_enabled": true, "encryption_algorithm": algorithm}
        })
    }

    #[test]
    fn contradictions_are_refused_with_both_paths() {
        let e = refused(serde_json::json!({"services": [service(false, Some("AES-256-GCM"))]}));
        assert!(
            e.contains("$.services[0].backup_policy.encryption_algorithm")
                && e.contains("$.services[0].backup_encryption_enabled"),
            "{e}"
        );
        let run = serde_json::json!({"run_id": "r", "service_id": "s1", "started_at": "2026-06-01T02:00:00Z",
            "completed_at": "2026-06-01T02:20:00Z", "status": "running", "backup_type": "full"});
        let e = refused(serde_json::json!({"backup_runs": [run]}));
        assert!(
            e.contains("$.backup_runs[0].completed_at") && e.contains("$.backup_runs[0].status"),
            "{e}"
        );
        let e = refused(
            serde_json::json!({"organizations": [{"id": "o", "name": "O", "billing_email": "b@o",
            "transfer_safeguards": {"usa": "SCC"}}]}),
        );
        assert!(e.contains("ISO 3166-1"), "{e}");
    }

    #[test]
    fn consistent_services_are_accepted() {
        let zones = Catalogue::builtin().expect("the built-in catalogue loads");
        let mut second = service(false, None);
        second["service_id"] = "s2".into();
        let batch = serde_json::json!({"services": [service(true, Some("AES-256-GCM")), second]});
        assert!(parse(batch.to_string().as_bytes(), &zones).is_ok());
    }
}
