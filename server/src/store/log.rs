//! The transparency log's tables (migration 0012): leaves, the hashes of
//! complete subtrees, and the log's identity.
//!
//! Appends are serialized: on SQLite by the write turn every write holds, on
//! PostgreSQL by a transaction-scoped advisory lock taken by the append,
//! which is the last statement of its transaction so the lock is held for as
//! short a time as the commit. Leaf indexes are the primary key and subjects
//! are unique, so a bug that let two appends race would fail a transaction,
//! never fork the tree or log a thing twice.

use std::collections::BTreeSet;

use sqlx::Row;
use vouch_engine::tlog::entry::{from_hex, hex};
use vouch_engine::tlog::merkle::{self, Frontier, Map, NodeId, Nodes, Recorder};
use vouch_engine::tlog::{Entry, Hash};
use vouch_engine::Timestamp;

use super::{Backend, Db, WriteTx};

/// The advisory lock of the sequencer on PostgreSQL ("vouchlog").
const SEQUENCER_LOCK: i64 = 0x766f_7563_686c_6f67;

/// Where an appended entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub leaf_index: u64,
    pub root: Hash,
}

fn decode_err(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("the log's {what} is not a hex SHA-256").into())
}

fn hash(row: &sqlx::any::AnyRow, col: &str) -> Result<Hash, sqlx::Error> {
    let text: String = row.try_get(col)?;
    from_hex(&text).ok_or_else(|| decode_err(col))
}

/// The end of the tree as this process last appended to it: its size, the
/// time of its last entry, its compact range and root. It saves the two
/// reads an append would otherwise start with; an append uses it only if
/// the database's last leaf still has this root (another server may have
/// appended since, or the transaction that appended may have rolled back).
#[derive(Debug, Clone)]
pub struct Head {
    logged_at: i64,
    frontier: Frontier,
    root: Hash,
}

/// What one append writes.
struct Step {
    index: u64,
    entry: Entry,
    text: String,
    leaf_hash: Hash,
    nodes: Vec<(NodeId, Hash)>,
    next: Head,
}

impl Step {
    fn new(
        head: &Head,
        now: Timestamp,
        build: &impl Fn(Timestamp) -> Entry,
    ) -> Result<Step, sqlx::Error> {
        let logged_at = if head.logged_at > now.unix_seconds() {
            Timestamp::from_unix_seconds(head.logged_at).unwrap_or(now)
        } else {
            now
        };
        let entry = build(logged_at);
        let leaf = entry
            .leaf()
            .map_err(|e| sqlx::Error::Protocol(format!("a log entry is not canonical: {e}")))?;
        let leaf_hash = merkle::leaf_hash(&leaf);
        let index = head.frontier.size;
        // The left siblings are the compact range's lowest hashes, last first.
        let mut left = head.frontier.hashes.clone();
        let nodes = merkle::appended_nodes(index, leaf_hash, |_| left.pop().unwrap_or_default());
        let mut frontier = head.frontier.clone();
        frontier.push(leaf_hash);
        let root = frontier.root();
        Ok(Step {
            index,
            text: String::from_utf8(leaf).map_err(|e| sqlx::Error::Protocol(e.to_string()))?,
            entry,
            leaf_hash,
            nodes,
            next: Head {
                logged_at: logged_at.unix_seconds(),
                frontier,
                root,
            },
        })
    }

    /// Inserts the leaf, only if the tree still ends with `after` when
    /// given; whether it was inserted.
    async fn insert_leaf(
        &self,
        tx: &mut WriteTx,
        after: Option<&Head>,
    ) -> Result<bool, sqlx::Error> {
        let values = "SELECT $1, $2, $3, $4, $5, $6";
        let sql = match after {
            None => format!("INSERT INTO log_leaves (leaf_index, subject, entry, leaf_hash, root_hash, logged_at) {values}"),
            Some(_) => format!(
                "INSERT INTO log_leaves (leaf_index, subject, entry, leaf_hash, root_hash, logged_at) {values} \
                 WHERE (SELECT MAX(leaf_index) FROM log_leaves) = $7 AND (SELECT root_hash FROM log_leaves WHERE leaf_index = $7) = $8"
            ),
        };
        let mut q = sqlx::query(&sql)
            .bind(self.index as i64)
            .bind(self.entry.subject())
            .bind(&self.text)
            .bind(hex(&self.leaf_hash))
            .bind(hex(&self.next.root))
            .bind(self.next.logged_at);
        if let Some(h) = after {
            q = q.bind(h.frontier.size as i64 - 1).bind(hex(&h.root));
        }
        Ok(q.execute(tx.conn()).await?.rows_affected() == 1)
    }

    async fn insert_nodes(&self, tx: &mut WriteTx) -> Result<(), sqlx::Error> {
        let mut sql = String::from("INSERT INTO log_nodes (level, node_index, hash) VALUES ");
        for i in 0..self.nodes.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
        }
        let mut q = sqlx::query(&sql);
        for ((level, node), h) in &self.nodes {
            q = q.bind(i64::from(*level)).bind(*node as i64).bind(hex(h));
        }
        q.execute(tx.conn()).await.map(drop)
    }
}

/// Appends the entry `build` makes from the time the log assigns (`now`, or
/// the previous entry's time if that is later, so logged times never go
/// back). Runs in `tx`, as its last statement. With this process's last
/// [`Head`] still the tree's end, that is two statements (the leaf, guarded
/// by the root it extends, and its nodes); otherwise the head is read first.
pub async fn append(
    tx: &mut WriteTx,
    now: Timestamp,
    build: impl Fn(Timestamp) -> Entry,
) -> Result<Appended, sqlx::Error> {
    if tx.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEQUENCER_LOCK)
            .execute(tx.conn())
            .await?;
    }
    let cached = tx.log_head().lock().ok().and_then(|h| h.clone());
    let mut done = None;
    if let Some(head) = cached.filter(|h| h.frontier.size > 0) {
        let step = Step::new(&head, now, &build)?;
        if step.insert_leaf(tx, Some(&head)).await? {
            done = Some(step);
        }
    }
    let step = match done {
        Some(step) => step,
        None => {
            let head = read_head(tx).await?;
            let step = Step::new(&head, now, &build)?;
            step.insert_leaf(tx, None).await?;
            step
        }
    };
    step.insert_nodes(tx).await?;
    if let Ok(mut h) = tx.log_head().lock() {
        *h = Some(step.next.clone());
    }
    Ok(Appended {
        leaf_index: step.index,
        root: step.next.root,
    })
}

/// The tree's end as the database holds it.
async fn read_head(tx: &mut WriteTx) -> Result<Head, sqlx::Error> {
    let last = sqlx::query(
        "SELECT leaf_index, logged_at, root_hash FROM log_leaves ORDER BY leaf_index DESC LIMIT 1",
    )
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = last else {
        return Ok(Head {
            logged_at: i64::MIN,
            frontier: Frontier::default(),
            root: merkle::empty_root(),
        });
    };
    let size = r.try_get::<i64, _>("leaf_index")? as u64 + 1;
    let ids = Frontier::nodes_of(size);
    let mut known = fetch_nodes(tx.conn(), &ids.iter().copied().collect()).await?;
    let hashes: Vec<Hash> = ids.iter().map(|id| Nodes::node(&mut known, *id)).collect();
    if !known.missing.is_empty() {
        return Err(sqlx::Error::Protocol(format!(
            "the log is missing the nodes {:?} of its tree of {size} leaves",
            known.missing
        )));
    }
    let frontier = Frontier { size, hashes };
    let root = hash(&r, "root_hash")?;
    if frontier.root() != root {
        return Err(sqlx::Error::Protocol(format!(
            "the log's nodes do not make the root it holds for {size} leaves"
        )));
    }
    Ok(Head {
        logged_at: r.try_get("logged_at")?,
        frontier,
        root,
    })
}

/// The nodes `ids` (those present; the rest are left for [`Map::missing`]).
async fn fetch_nodes(
    conn: &mut sqlx::AnyConnection,
    ids: &BTreeSet<NodeId>,
) -> Result<Map, sqlx::Error> {
    let mut map = Map::default();
    let ids: Vec<NodeId> = ids.iter().copied().collect();
    for chunk in ids.chunks(100) {
        let mut sql = String::from("SELECT level, node_index, hash FROM log_nodes WHERE ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!(
                "(level = ${} AND node_index = ${})",
                2 * i + 1,
                2 * i + 2
            ));
        }
        let mut q = sqlx::query(&sql);
        for (level, node) in chunk {
            q = q.bind(i64::from(*level)).bind(*node as i64);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let level: i64 = r.try_get("level")?;
            let node: i64 = r.try_get("node_index")?;
            map.nodes
                .insert((level as u8, node as u64), hash(&r, "hash")?);
        }
    }
    Ok(map)
}

/// Builds something from the tree of `size` leaves that reads nodes through
/// `f` (a proof, a root): `f` runs once to learn which nodes, they are read
/// in one or a few queries, and `f` runs again on them. `None` when a node is
/// missing (the tree is not that large).
pub async fn with_nodes<T>(
    db: &Db,
    mut f: impl FnMut(&mut dyn Nodes) -> T,
) -> Result<Option<T>, sqlx::Error> {
    let mut wanted = Recorder::default();
    f(&mut wanted);
    let mut conn = db.pool.acquire().await?;
    let mut map = fetch_nodes(&mut conn, &wanted.0).await?;
    let out = f(&mut map);
    Ok(map.missing.is_empty().then_some(out))
}

/// The log's size and root now.
pub async fn head(db: &Db) -> Result<(u64, Hash), sqlx::Error> {
    let r = sqlx::query(
        "SELECT leaf_index, root_hash FROM log_leaves ORDER BY leaf_index DESC LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?;
    match r {
        None => Ok((0, merkle::empty_root())),
        Some(r) => Ok((
            r.try_get::<i64, _>("leaf_index")? as u64 + 1,
            hash(&r, "root_hash")?,
        )),
    }
}

/// A stored leaf.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub leaf_index: u64,
    /// The entry's canonical JSON: the leaf bytes.
    pub entry: String,
    pub leaf_hash: Hash,
}

fn leaf(r: &sqlx::any::AnyRow) -> Result<Leaf, sqlx::Error> {
    Ok(Leaf {
        leaf_index: r.try_get::<i64, _>("leaf_index")? as u64,
        entry: r.try_get("entry")?,
        leaf_hash: hash(r, "leaf_hash")?,
    })
}

/// The leaf recording `subject` (`packet:REPORT`, `key:KEY:EVENT`).
pub async fn leaf_of(db: &Db, subject: &str) -> Result<Option<Leaf>, sqlx::Error> {
    sqlx::query("SELECT leaf_index, entry, leaf_hash FROM log_leaves WHERE subject = $1")
        .bind(subject)
        .fetch_optional(&db.pool)
        .await?
        .as_ref()
        .map(leaf)
        .transpose()
}

/// Leaves `start..end`, in order.
pub async fn leaves(db: &Db, start: u64, end: u64) -> Result<Vec<Leaf>, sqlx::Error> {
    sqlx::query("SELECT leaf_index, entry, leaf_hash FROM log_leaves WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index")
        .bind(i64::try_from(start).unwrap_or(i64::MAX))
        .bind(i64::try_from(end).unwrap_or(i64::MAX))
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(leaf)
        .collect()
}

/// The log's origin and public key (base64, raw 32 bytes), once registered.
pub async fn identity(db: &Db) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT origin, public_key FROM log_identity WHERE id = 1")
        .fetch_optional(&db.pool)
        .await
}

/// Registers the log's identity unless one is registered; returns the
/// registered one (this, or the one another server registered first).
pub async fn register_identity(
    db: &Db,
    origin: &str,
    public_key: &str,
    now: i64,
) -> Result<(String, String), sqlx::Error> {
    let mut tx = db.write().await?;
    sqlx::query("INSERT INTO log_identity (id, origin, public_key, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING")
        .bind(origin)
        .bind(public_key)
        .bind(now)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    identity(db)
        .await?
        .ok_or_else(|| sqlx::Error::Protocol("the log identity vanished".into()))
}

/// A complete report the log does not hold.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Unlogged {
    pub report_id: String,
    pub organization_id: String,
    pub framework: String,
    pub generated_at: i64,
    pub signature: String,
}

/// Complete reports without a log entry, oldest first (`'packet:' ||
/// report_id` is `tlog::entry::packet_subject`).
pub async fn unlogged_packets(db: &Db) -> Result<Vec<Unlogged>, sqlx::Error> {
    sqlx::query_as(
        "SELECT report_id, organization_id, framework, generated_at, signature FROM reports r \
         WHERE status = 'complete' AND NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.subject = 'packet:' || r.report_id) \
         ORDER BY generated_at, report_id",
    )
    .fetch_all(&db.pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root the log had at `size` leaves, if it ever had that many.
    async fn root_at(db: &Db, size: u64) -> Result<Option<Hash>, sqlx::Error> {
        if size == 0 {
            return Ok(Some(merkle::empty_root()));
        }
        let Ok(index) = i64::try_from(size - 1) else {
            return Ok(None);
        };
        sqlx::query("SELECT root_hash FROM log_leaves WHERE leaf_index = $1")
            .bind(index)
            .fetch_optional(&db.pool)
            .await?
            .map(|r| hash(&r, "root_hash"))
            .transpose()
    }

    fn entry(i: u32, at: Timestamp) -> Entry {
        Entry::Packet {
            report_id: format!("r-{i}"),
            organization_id: "acme".into(),
            framework: "soc2".into(),
            generated_at: at,
            key_id: "k".into(),
            canonical_sha256: vouch_engine::signing::sha256_hex(&i.to_le_bytes()),
            logged_at: at,
        }
    }

    async fn append_one(db: &Db, i: u32, commit: bool) -> Appended {
        let at = Timestamp::from_unix_seconds(1_800_000_000).unwrap();
        let mut tx = db.write().await.unwrap();
        let done = append(&mut tx, at, |t| entry(i, t)).await.unwrap();
        if commit {
            tx.commit().await.unwrap();
        }
        done
    }

    /// Two processes on one database, and a transaction rolled back after
    /// its append: each append extends the tree the database holds, never
    /// the one a process remembers.
    #[tokio::test]
    async fn a_remembered_head_is_used_only_while_it_is_the_tree_s_end() {
        let dir = tempfile::tempdir().unwrap();
        let url = super::super::sqlite_url(dir.path());
        let (one, two) = (
            Db::connect(&url).await.unwrap(),
            Db::connect(&url).await.unwrap(),
        );
        let mut roots = vec![];
        for (i, (db, commit)) in [
            (&one, true),
            (&one, true),
            (&two, true),
            (&one, false),
            (&two, true),
            (&one, true),
            (&one, true),
        ]
        .into_iter()
        .enumerate()
        {
            let done = append_one(db, i as u32, commit).await;
            if commit {
                roots.push((done.leaf_index, done.root));
            }
        }
        let indexes: Vec<u64> = roots.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            indexes,
            vec![0, 1, 2, 3, 4, 5],
            "no gap, nothing appended twice"
        );
        // Every root the appends returned is the root of the stored tree of that size.
        for (index, root) in roots {
            let size = index + 1;
            let stored = root_at(&one, size).await.unwrap().unwrap();
            let from_nodes = with_nodes(&one, |src| merkle::root(src, size))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((stored, from_nodes), (root, root), "size {size}");
        }
    }
}
