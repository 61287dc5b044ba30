//! The command line: one file per command group. `main.rs` parses the
//! arguments and calls one function here.

pub mod authoring;
pub mod export;
pub mod import;
pub mod keys;
pub mod log;
pub mod offline;
pub mod series;
pub mod serve;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::files::private_dir;
use crate::store::{sqlite_url, Db};
use crate::Failure;

/// Where the data lives: shared by `serve`, `import` and the key commands.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Data directory: the SQLite database and development keys.
    #[arg(
        long,
        value_name = "DIR",
        env = "VOUCH_DATA_DIR",
        default_value = "./vouch-data"
    )]
    pub data_dir: PathBuf,
    /// Database URL [default: a SQLite file in the data directory; postgres://... for PostgreSQL]
    #[arg(
        long,
        value_name = "URL",
        env = "VOUCH_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

impl StoreArgs {
    pub async fn open(&self) -> Result<Db> {
        if let Some(url) = &self.database_url {
            return Db::connect(url).await;
        }
        // The database and development keys live here: 0700, and the
        // database files 0600 (SQLite creates them with the umask).
        private_dir(&self.data_dir).with_context(|| {
            format!(
                "cannot prepare the data directory {}",
                self.data_dir.display()
            )
        })?;
        let db = Db::connect(&sqlite_url(&self.data_dir)).await?;
        private_files(&self.data_dir)?;
        Ok(db)
    }
}

/// Narrows the SQLite files of a data directory to 0600.
fn private_files(dir: &std::path::Path) -> Result<()> {
    #[cfg(unix)]
    for name in ["vouch.db", "vouch.db-wal", "vouch.db-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private (0600)", p.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Runs a future on a new runtime, mapping its error to exit code 3.
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T, Failure> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Failure::input(anyhow::Error::from(e)))?;
    runtime.block_on(f).map_err(Failure::input)
}

/// The wall clock, for commands (the server takes its clock injected).
pub fn now() -> vouch_engine::Timestamp {
    vouch_engine::Timestamp::from_datetime(chrono::Utc::now())
}

/// The `Authorization` header of `user`, whose password is in `VOUCH_PASSWORD`
/// (never a command-line argument, where other users of the machine see it).
pub fn basic_auth(user: &str) -> Result<String, crate::Failure> {
    use base64::Engine as _;
    let password = std::env::var("VOUCH_PASSWORD").map_err(|_| {
        crate::Failure::input(anyhow::anyhow!(
            "set VOUCH_PASSWORD to the password of {}",
            user.escape_debug()
        ))
    })?;
    Ok(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    ))
}

/// GETs `url` (15 s at most, at most `limit` bytes): for documents a command
/// reads from a server (the keys document, the log's checkpoint and proofs).
pub fn fetch(url: &str, limit: u64, what: &str) -> Result<Vec<u8>> {
    fetch_as(url, limit, what, None)
}

/// [`fetch`] with an `Authorization` header (a member's listing and packets).
pub fn fetch_as(url: &str, limit: u64, what: &str, authorization: Option<&str>) -> Result<Vec<u8>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(15)))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let mut resp = req
        .call()
        .with_context(|| format!("cannot fetch {what} from {url}"))?;
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .with_context(|| format!("cannot read {what} from {url}"))
}
