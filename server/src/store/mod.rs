//! Storage: every SQL statement of the server lives under this module.
//!
//! One sqlx `Any` pool over SQLite (the embedded default) or PostgreSQL, one
//! schema and one set of queries for both. Migrations are embedded and applied
//! on start. Writes go through [`WriteTx`], which carries SQLite's write turn,
//! so no caller has to remember to take it; reads that must agree with each
//! other (the records snapshot) go through [`ReadTx`].

pub mod audit;
pub mod grants;
pub mod history;
pub mod keys;
pub mod log;
pub mod records;
pub mod render;
pub mod reports;
pub mod schedule;
pub mod series;
pub mod snapshot;
pub mod subscriptions;
pub mod users;
pub mod webhooks;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle shared by the server and the CLI.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// SQLite allows one writer at a time; in-process writers take turns here
    /// instead of failing with `database is locked`.
    write_turn: Option<Arc<Mutex<()>>>,
    /// The transparency log's end as this process last appended to it.
    log_head: Arc<std::sync::Mutex<Option<log::Head>>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The default database URL for a data directory: `DIR/vouch.db`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("vouch.db").display())
}

/// Hides the secrets of a database URL for logs and messages: the password
/// in the authority and any `password`/`sslpassword` query parameter.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &base[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &base[..scheme + 3],
                    &creds[..colon],
                    &base[at..]
                ),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Whether an error is a unique-constraint violation (a concurrent insert won).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// A write transaction holding the write turn: commit it, or drop it to roll back.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    log_head: Arc<std::sync::Mutex<Option<log::Head>>>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTx")
    }
}

impl WriteTx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The log's end as this process last appended to it ([`log::Head`]).
    pub fn log_head(&self) -> &std::sync::Mutex<Option<log::Head>> {
        &self.log_head
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// A read-only transaction whose statements see one state of the database.
pub struct ReadTx {
    tx: Transaction<'static, Any>,
}

impl std::fmt::Debug for ReadTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadTx")
    }
}

impl ReadTx {
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Db {
    /// Connects, enables WAL on SQLite, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            bail!(
                "unsupported database URL `{}`: use sqlite://FILE or postgres://...",
                redact_url(url)
            );
        };
        // An in-memory SQLite database lives and dies with its one connection.
        let in_memory = backend == Backend::Sqlite && url.contains(":memory:");
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite if in_memory => 1,
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .min_connections(u32::from(in_memory))
            .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
            .max_lifetime((!in_memory).then_some(Duration::from_secs(1800)))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .with_context(|| format!("cannot open the database {}", redact_url(url)))?;
        if backend == Backend::Sqlite && !in_memory {
            // WAL: readers never block the writer; it is a property of the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        MIGRATOR
            .run(&pool)
            .await
            .with_context(|| format!("cannot apply migrations to {}", redact_url(url)))?;
        Ok(Db {
            pool,
            backend,
            write_turn: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
            log_head: Arc::default(),
        })
    }

    /// Begins a write transaction, waiting for the write turn on SQLite.
    pub async fn write(&self) -> Result<WriteTx, sqlx::Error> {
        let turn = match &self.write_turn {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx {
            tx,
            backend: self.backend,
            log_head: Arc::clone(&self.log_head),
            _turn: turn,
        })
    }

    /// Begins a read transaction: on PostgreSQL REPEATABLE READ without JIT,
    /// on SQLite a deferred transaction, which in WAL mode reads one snapshot from its
    /// first statement on.
    pub async fn read(&self) -> Result<ReadTx, sqlx::Error> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            // One round trip: sqlx sends a custom `BEGIN` as a simple query,
            // which may hold several statements. JIT off: the snapshot's
            // statements are index lookups whose estimated cost over a large
            // organization passes PostgreSQL's JIT threshold; compiling them
            // cost more than running them (the services-with-history query:
            // 367 ms with JIT, 172 ms without, on 10,000 services).
            Backend::Postgres => {
                self.pool
                    .begin_with(
                        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off",
                    )
                    .await?
            }
        };
        Ok(ReadTx { tx })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A flag as stored: 0 or 1 in a BIGINT column (see the migration's header).
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// Reads a flag column.
pub fn get_flag(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

/// Reads an optional flag column.
pub fn opt_bool(row: &AnyRow, col: &str) -> Result<Option<bool>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v != 0))
}

/// A JSON array of strings stored as TEXT.
pub fn opt_list(row: &AnyRow, col: &str) -> Result<Option<Vec<String>>, sqlx::Error> {
    let text: Option<String> = row.try_get(col)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn redacts_passwords_in_the_query_string() {
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=hunter2&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://u:p@h/db?sslpassword=x"),
            "postgres://u:***@h/db?sslpassword=***"
        );
    }

    #[tokio::test]
    async fn a_write_transaction_holds_the_turn_until_it_ends() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let first = db.write().await.unwrap();
        let second = tokio::time::timeout(Duration::from_millis(50), db.write()).await;
        assert!(second.is_err(), "a second writer waits for the first");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), db.write()).await;
        assert!(second.is_ok(), "the turn passes when the first ends");
    }
}
