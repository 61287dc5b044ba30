//! Configuration history: dated changes of services and memberships.
//!
//! A change is stored as given (`fields`) and with the whole configuration
//! after it (`state`), recomputed for every later change of the resource
//! whenever a batch adds one, so that history may arrive out of order and
//! the configuration at any instant is one indexed lookup. The sequence of a
//! resource's changes is checked as it is folded: a service is `created`
//! once, first; nothing follows its deletion; a first change that is not a
//! creation must give the whole configuration. A batch that breaks these
//! rules is refused whole.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::Serialize;
use vouch_engine::Timestamp;

use super::{Backend, WriteTx};
use crate::import::{
    invalid, ImportError, MemberChangeIn, MemberPatch, MemberState, ServiceChangeIn, ServiceConfig,
    ServiceConfigPatch,
};

type RowTuple = (String, i64, String, String, Option<String>);

/// The changes of a resource selected by `sql`, whose last parameter is `since`.
fn read<'q>(
    sql: &'q str,
    keys: &'q [String],
    since: i64,
) -> sqlx::query::QueryAs<'q, sqlx::Any, RowTuple, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query_as::<_, RowTuple>(sql);
    for k in keys {
        q = q.bind(k);
    }
    q.bind(since)
}

fn row((change_id, at, event, fields, state): RowTuple) -> StoredChange {
    StoredChange {
        change_id,
        at,
        event,
        fields,
        state,
    }
}

/// A change as the fold reads it.
struct StoredChange {
    change_id: String,
    at: i64,
    event: String,
    fields: String,
    state: Option<String>,
}

/// Which history a statement works on: the table, the columns that name a
/// resource, and the events that begin and end it.
struct Kind {
    table: &'static str,
    /// The column that names the resource within its organization.
    column: &'static str,
    /// `service_id = $1` or `organization_id = $1 AND username = $2`.
    key: &'static str,
    noun: &'static str,
    begin: &'static str,
    end: &'static str,
    /// A resource that begins once and, once ended, never returns (a
    /// service); otherwise it may end and begin again (a member).
    once: bool,
}

const SERVICES: Kind = Kind {
    table: "service_changes",
    column: "service_id",
    key: "service_id = $1",
    noun: "service",
    begin: "created",
    end: "deleted",
    once: true,
};

const MEMBERS: Kind = Kind {
    table: "member_changes",
    column: "username",
    key: "organization_id = $1 AND username = $2",
    noun: "member",
    begin: "added",
    end: "removed",
    once: false,
};

/// The resources whose histories a batch touched, each with the earliest
/// time it added a change at: folding starts there.
#[derive(Debug, Default)]
pub struct Touched(BTreeMap<Resource, i64>);

impl Touched {
    pub fn touch(&mut self, resource: Resource, at: Timestamp) {
        let at = at.unix_seconds();
        self.0
            .entry(resource)
            .and_modify(|t| *t = (*t).min(at))
            .or_insert(at);
    }
}

/// A resource whose history a batch touched: its key values and a name for
/// messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resource {
    keys: Vec<String>,
    name: String,
}

impl Resource {
    /// The id within the organization: the service id or the username.
    fn id(&self) -> &str {
        self.keys.last().map_or("", String::as_str)
    }
    pub fn service(service_id: &str) -> Self {
        Resource {
            keys: vec![service_id.to_owned()],
            name: format!("`{service_id}`"),
        }
    }
    pub fn member(org: &str, username: &str) -> Self {
        Resource {
            keys: vec![org.to_owned(), username.to_owned()],
            name: format!("`{username}` of `{org}`"),
        }
    }
}

fn ts(secs: i64) -> String {
    Timestamp::from_unix_seconds(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// On PostgreSQL, takes the rows of the services and users whose histories
/// the batch changes, in one order, before any change is written: two
/// servers importing at once then fold the same history one after the
/// other. (Writing a change first would take a shared lock on the row it
/// references, and two such transactions would deadlock on the upgrade.)
/// SQLite has one writer at a time already.
pub async fn lock(
    tx: &mut WriteTx,
    backend: Backend,
    services: &BTreeSet<&str>,
    users: &BTreeSet<&str>,
) -> Result<(), sqlx::Error> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    for id in services {
        sqlx::query("SELECT 1 FROM services WHERE service_id = $1 FOR UPDATE")
            .bind(*id)
            .fetch_optional(tx.conn())
            .await?;
    }
    for name in users {
        sqlx::query("SELECT 1 FROM users WHERE username = $1 FOR UPDATE")
            .bind(*name)
            .fetch_optional(tx.conn())
            .await?;
    }
    Ok(())
}

/// One change to record.
struct NewChange<'a> {
    change_id: &'a str,
    org: &'a str,
    resource: &'a Resource,
    at: Timestamp,
    event: &'a str,
    /// The change as given (JSON), compared when its id comes again.
    fields: &'a str,
}

/// Inserts one change; `Ok(false)` when the same change is already recorded
/// (a replay), an error at `path` when its id names another change.
async fn insert(
    tx: &mut WriteTx,
    kind: &Kind,
    path: &str,
    c: NewChange<'_>,
    now: Timestamp,
) -> Result<bool, ImportError> {
    let column = kind.column;
    let existing = sqlx::query_as::<_, (String, String, i64, String, String)>(&format!(
        "SELECT organization_id, {column}, at, event, fields FROM {} WHERE change_id = $1",
        kind.table
    ))
    .bind(c.change_id)
    .fetch_optional(tx.conn())
    .await?;
    if let Some(stored) = existing {
        let sent = (
            c.org.to_owned(),
            c.resource.id().to_owned(),
            c.at.unix_seconds(),
            c.event.to_owned(),
            c.fields.to_owned(),
        );
        if stored == sent {
            return Ok(false);
        }
        return Err(invalid(
            format!("{path}.change_id"),
            format!(
                "change `{}` was already recorded with other content; a change id names one change",
                c.change_id
            ),
        ));
    }
    sqlx::query(&format!(
        "INSERT INTO {} (change_id, organization_id, {column}, at, event, fields, state, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
        kind.table
    ))
    .bind(c.change_id)
    .bind(c.org)
    .bind(c.resource.id())
    .bind(c.at.unix_seconds())
    .bind(c.event)
    .bind(c.fields)
    .bind(now.unix_seconds())
    .execute(tx.conn())
    .await?;
    Ok(true)
}

fn json<T: Serialize>(value: &T) -> Result<String, ImportError> {
    serde_json::to_string(value).map_err(|e| ImportError::Internal(e.into()))
}

/// A change of the admin batch, checked against the database and recorded.
pub async fn record_service_change(
    tx: &mut WriteTx,
    path: &str,
    org: &str,
    c: &ServiceChangeIn,
    now: Timestamp,
) -> Result<bool, ImportError> {
    let fields = json(&c.set.clone().unwrap_or_default())?;
    let change = NewChange {
        change_id: &c.change_id,
        org,
        resource: &Resource::service(&c.service_id),
        at: c.at,
        event: c.event.as_str(),
        fields: &fields,
    };
    insert(tx, &SERVICES, path, change, now).await
}

pub async fn record_member_change(
    tx: &mut WriteTx,
    path: &str,
    c: &MemberChangeIn,
    now: Timestamp,
) -> Result<bool, ImportError> {
    let fields = json(&c.set.clone().unwrap_or_default())?;
    let change = NewChange {
        change_id: &c.change_id,
        org: &c.organization_id,
        resource: &Resource::member(&c.organization_id, &c.username),
        at: c.at,
        event: c.event.as_str(),
        fields: &fields,
    };
    insert(tx, &MEMBERS, path, change, now).await
}

/// Which state of a history to read.
enum Latest {
    /// The state at this instant: `None` when nothing is recorded before
    /// it, or the resource had ended.
    At(Timestamp),
    /// The last state the resource had, ended since or not.
    Known,
}

async fn latest_state<T: DeserializeOwned>(
    tx: &mut WriteTx,
    kind: &Kind,
    resource: &Resource,
    which: Latest,
) -> Result<Option<T>, ImportError> {
    let condition = match which {
        Latest::At(_) => format!("at <= ${}", resource.keys.len() + 1),
        Latest::Known => "state IS NOT NULL".to_owned(),
    };
    let sql = format!(
        "SELECT state FROM {} WHERE {} AND {condition} ORDER BY at DESC, change_id DESC LIMIT 1",
        kind.table, kind.key
    );
    let mut q = sqlx::query_as::<_, (Option<String>,)>(&sql);
    for k in &resource.keys {
        q = q.bind(k);
    }
    if let Latest::At(at) = which {
        q = q.bind(at.unix_seconds());
    }
    match q
        .fetch_optional(tx.conn())
        .await?
        .and_then(|(state,)| state)
    {
        Some(text) => Ok(Some(
            serde_json::from_str(&text).map_err(|e| ImportError::Internal(e.into()))?,
        )),
        None => Ok(None),
    }
}

/// Whether the current configuration sent for a resource is news to its
/// history: not when the history holds it now, nor when the resource has
/// ended and this is the configuration it ended with (a batch sent again).
/// Any other configuration of an ended resource is recorded, and the fold
/// then decides whether that can be (a member added again) or not (a
/// deleted service).
async fn is_news<T: DeserializeOwned + PartialEq>(
    tx: &mut WriteTx,
    kind: &Kind,
    resource: &Resource,
    sent: &T,
    now: Timestamp,
) -> Result<bool, ImportError> {
    let known: Option<T> = latest_state(tx, kind, resource, Latest::At(now)).await?;
    if let Some(k) = known {
        return Ok(&k != sent);
    }
    let ended: Option<T> = latest_state(tx, kind, resource, Latest::Known).await?;
    Ok(ended.as_ref() != Some(sent))
}

/// Records what a batch sent as current as an `updated` change at `now`
/// that gives all of it.
async fn observed<T: Serialize>(
    tx: &mut WriteTx,
    kind: &Kind,
    org: &str,
    resource: &Resource,
    state: &T,
    now: Timestamp,
) -> Result<bool, ImportError> {
    let id = format!("import:{}", uuid::Uuid::new_v4());
    let fields = json(state)?;
    let change = NewChange {
        change_id: &id,
        org,
        resource,
        at: now,
        event: "updated",
        fields: &fields,
    };
    insert(tx, kind, "$", change, now).await
}

/// Records the current configuration of a service, as sent in `services`,
/// as a change at `now` where it is news to the history ([`is_news`]).
pub async fn observe_service(
    tx: &mut WriteTx,
    org: &str,
    service_id: &str,
    config: &ServiceConfig,
    now: Timestamp,
) -> Result<bool, ImportError> {
    let resource = Resource::service(service_id);
    if !is_news(tx, &SERVICES, &resource, config, now).await? {
        return Ok(false);
    }
    observed(tx, &SERVICES, org, &resource, config, now).await
}

/// The same for a membership's role and the user's MFA.
pub async fn observe_member(
    tx: &mut WriteTx,
    org: &str,
    username: &str,
    state: &MemberState,
    now: Timestamp,
) -> Result<bool, ImportError> {
    let resource = Resource::member(org, username);
    if !is_news(tx, &MEMBERS, &resource, state, now).await? {
        return Ok(false);
    }
    observed(tx, &MEMBERS, org, &resource, state, now).await
}

/// How a history folds: the whole state from a first change, a patch
/// applied on top of it, the consistency of a state.
trait Fold {
    type State: Serialize + DeserializeOwned + PartialEq;
    type Patch: DeserializeOwned;
    fn whole(patch: &Self::Patch) -> Option<Self::State>;
    fn apply(patch: &Self::Patch, base: &Self::State) -> Self::State;
    fn check(state: &Self::State) -> Result<(), String>;
}

struct ServiceFold;
impl Fold for ServiceFold {
    type State = ServiceConfig;
    type Patch = ServiceConfigPatch;
    fn whole(p: &ServiceConfigPatch) -> Option<ServiceConfig> {
        p.whole()
    }
    fn apply(p: &ServiceConfigPatch, base: &ServiceConfig) -> ServiceConfig {
        p.apply(base)
    }
    fn check(c: &ServiceConfig) -> Result<(), String> {
        if let (false, Some(alg)) = (c.backup_encryption_enabled, &c.backup_encryption_algorithm) {
            return Err(format!(
                "its backups are not encrypted, yet their encryption algorithm is `{alg}`"
            ));
        }
        Ok(())
    }
}

struct MemberFold;
impl Fold for MemberFold {
    type State = MemberState;
    type Patch = MemberPatch;
    fn whole(p: &MemberPatch) -> Option<MemberState> {
        p.whole()
    }
    fn apply(p: &MemberPatch, base: &MemberState) -> MemberState {
        p.apply(base)
    }
    fn check(_: &MemberState) -> Result<(), String> {
        Ok(())
    }
}

/// Recomputes the state after every change of one resource, in order, and
/// refuses a sequence that cannot have happened. `paths` names the batch
/// entry of each change it sent, for messages.
async fn refold<F: Fold>(
    tx: &mut WriteTx,
    kind: &Kind,
    resource: &Resource,
    since: i64,
    paths: &BTreeMap<String, String>,
) -> Result<Option<F::State>, ImportError> {
    let n = resource.keys.len();
    // Changes before `since` are folded already: the last of them is the
    // starting point, and only the changes from `since` on are folded again.
    let before_sql = format!(
        "SELECT change_id, at, event, fields, state FROM {} WHERE {} AND at < ${} ORDER BY at DESC, change_id DESC LIMIT 1",
        kind.table,
        kind.key,
        n + 1
    );
    let rows_sql = format!(
        "SELECT change_id, at, event, fields, state FROM {} WHERE {} AND at >= ${} ORDER BY at, change_id",
        kind.table,
        kind.key,
        n + 1
    );
    let before = read(&before_sql, &resource.keys, since)
        .fetch_optional(tx.conn())
        .await?
        .map(row);
    let rows: Vec<StoredChange> = read(&rows_sql, &resource.keys, since)
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .map(row)
        .collect();
    let name = &resource.name;
    let mut state: Option<F::State> = match before.as_ref().and_then(|b| b.state.as_deref()) {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| ImportError::Internal(anyhow::anyhow!("stored state: {e}")))?,
        ),
        None => None,
    };
    let mut ended: Option<i64> = before
        .as_ref()
        .filter(|b| b.event == kind.end)
        .map(|b| b.at);
    let first = before
        .as_ref()
        .or(rows.first())
        .map(|r| (r.change_id.clone(), r.at));
    let mut updates = vec![];
    for (i, row) in rows.iter().enumerate() {
        let path = paths
            .get(&row.change_id)
            .cloned()
            .unwrap_or_else(|| "$".to_owned());
        let refuse = |why: String| {
            invalid(
                path.clone(),
                format!(
                    "{} {name}: change `{}` at {} {why}",
                    kind.noun,
                    row.change_id,
                    ts(row.at)
                ),
            )
        };
        let after_end = |end: i64| {
            refuse(format!(
                "comes after the {} was {} at {}",
                kind.noun,
                kind.end,
                ts(end)
            ))
        };
        let patch: F::Patch = serde_json::from_str(&row.fields)
            .map_err(|e| ImportError::Internal(anyhow::anyhow!("stored change: {e}")))?;
        let next = if row.event == kind.end {
            if let (None, Some(end)) = (&state, ended) {
                return Err(after_end(end));
            }
            if state.is_none() {
                return Err(refuse(format!(
                    "ends a {} whose history holds nothing before it",
                    kind.noun
                )));
            }
            ended = Some(row.at);
            None
        } else if row.event == kind.begin {
            if (i > 0 || before.is_some()) && kind.once {
                let (id, at) = first.clone().unwrap_or_default();
                return Err(refuse(format!(
                    "creates the service, but change `{id}` at {} comes before it",
                    ts(at)
                )));
            }
            if state.is_some() {
                return Err(refuse(format!(
                    "adds a {} that is already there",
                    kind.noun
                )));
            }
            Some(
                F::whole(&patch)
                    .ok_or_else(|| refuse("gives only part of the configuration".into()))?,
            )
        } else {
            match (&state, ended) {
                (Some(base), _) => Some(F::apply(&patch, base)),
                // A service stays deleted; a member may be seen again.
                (None, Some(end)) if kind.once => return Err(after_end(end)),
                (None, _) => Some(F::whole(&patch).ok_or_else(|| {
                    refuse(format!(
                        "changes part of a configuration that is not known before it: the first change of a {} is `{}` or gives all of it",
                        kind.noun, kind.begin
                    ))
                })?),
            }
        };
        if let Some(s) = &next {
            F::check(s).map_err(refuse)?;
        }
        let text = next.as_ref().map(json).transpose()?;
        if text != row.state {
            updates.push((row.change_id.clone(), text));
        }
        state = next;
    }
    let sql = format!("UPDATE {} SET state = $1 WHERE change_id = $2", kind.table);
    for (id, text) in updates {
        sqlx::query(&sql)
            .bind(text)
            .bind(id)
            .execute(tx.conn())
            .await?;
    }
    Ok(state)
}

pub async fn refold_services(
    tx: &mut WriteTx,
    services: &Touched,
    paths: &BTreeMap<String, String>,
) -> Result<(), ImportError> {
    for (r, since) in &services.0 {
        refold::<ServiceFold>(tx, &SERVICES, r, *since, paths).await?;
    }
    Ok(())
}

pub async fn refold_members(
    tx: &mut WriteTx,
    now: Timestamp,
    members: &Touched,
    paths: &BTreeMap<String, String>,
) -> Result<(), ImportError> {
    for (r, since) in &members.0 {
        // The membership that grants access follows the history: a member
        // removed is no longer one, a member added (again) is.
        let (org, username) = (&r.keys[0], &r.keys[1]);
        match refold::<MemberFold>(tx, &MEMBERS, r, *since, paths).await? {
            None => {
                sqlx::query("DELETE FROM memberships WHERE organization_id = $1 AND username = $2")
                    .bind(org)
                    .bind(username)
                    .execute(tx.conn())
                    .await?;
            }
            Some(state) => {
                sqlx::query(
                    "INSERT INTO memberships (organization_id, username, role, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (organization_id, username) DO UPDATE SET role = excluded.role",
                )
                .bind(org)
                .bind(username)
                .bind(&state.role)
                .bind(now.unix_seconds())
                .execute(tx.conn())
                .await?;
            }
        }
    }
    Ok(())
}
