//! Storage: one sqlx `Any` pool over SQLite (the embedded default) or
//! PostgreSQL, one schema and one set of queries for both. Migrations are
//! embedded and applied on start.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tokio::sync::{Mutex, MutexGuard};

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
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The default database URL for a data directory: `DIR/vouch.db`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("vouch.db").display())
}

/// Hides the password of a database URL for logs and messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
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
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .with_context(|| format!("cannot open the database {}", redact_url(url)))?;
        if backend == Backend::Sqlite {
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
        })
    }

    /// Held for the duration of a write transaction (a no-op on PostgreSQL).
    pub async fn write_turn(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_turn {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
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
}
