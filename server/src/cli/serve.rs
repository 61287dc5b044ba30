//! `vouch serve` and `vouch import`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::app::{system_clock, App};
use crate::db::{redact_url, sqlite_url, Db};
use crate::files::{read_capped, read_private};
use crate::import::{self, Actor};
use crate::zones::Catalogue;
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
        let url = match &self.database_url {
            Some(u) => u.clone(),
            None => {
                std::fs::create_dir_all(&self.data_dir).with_context(|| {
                    format!(
                        "cannot create the data directory {}",
                        self.data_dir.display()
                    )
                })?;
                sqlite_url(&self.data_dir)
            }
        };
        Db::connect(&url).await
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        env = "VOUCH_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// Ed25519 signing key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "FILE", env = "VOUCH_SIGNING_KEY_FILE")]
    signing_key_file: Option<PathBuf>,
    /// HMAC key of the legacy report (text; surrounding whitespace trimmed).
    #[arg(long, value_name = "FILE", env = "VOUCH_HMAC_KEY_FILE")]
    hmac_key_file: Option<PathBuf>,
    /// Bearer token of the admin API (mode 0600); without it the admin API is off.
    #[arg(long, value_name = "FILE", env = "VOUCH_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Framework YAML directory [default: the built-in frameworks]
    #[arg(long, value_name = "DIR", env = "VOUCH_FRAMEWORKS_DIR")]
    frameworks_dir: Option<PathBuf>,
    /// Directory of check plugins (`NAME.wasm`) that frameworks reference.
    #[arg(long, value_name = "DIR", env = "VOUCH_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Directory with a replacement `packet.typ.j2` [default: the built-in template]
    #[arg(long, value_name = "DIR", env = "VOUCH_TEMPLATES_DIR")]
    templates_dir: Option<PathBuf>,
    /// The URL clients reach this server at, printed on PDF covers [default: http://LISTEN]
    #[arg(long, value_name = "URL", env = "VOUCH_PUBLIC_URL")]
    public_url: Option<String>,
    /// Create the demo organizations, users and development keys.
    #[arg(long)]
    demo: bool,
}

fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let text =
        read_private(path).with_context(|| format!("cannot use {what} {}", path.display()))?;
    let trimmed = text.trim().to_owned();
    if trimmed.is_empty() {
        bail!("{what} {} is empty", path.display());
    }
    Ok(trimmed)
}

pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("VOUCH_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("VOUCH_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn serve(args: ServeArgs) -> Result<(), Failure> {
    init_logging();
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Failure::input(anyhow::Error::from(e)))?;
    runtime.block_on(run(args)).map_err(Failure::input)
}

async fn run(mut args: ServeArgs) -> Result<()> {
    let clock = system_clock();
    let db = args.store.open().await?;
    let zones = Catalogue::builtin()?;
    let plugins = crate::offline::load_plugins(args.plugins_dir.as_deref()).map_err(|f| f.error)?;
    let frameworks =
        crate::offline::load_frameworks_with(args.frameworks_dir.as_deref(), plugins.as_deref())
            .map_err(|f| f.error)?;
    if let Some(p) = &plugins {
        tracing::info!(plugins = ?p.names(), "plugins loaded");
    }
    if args.demo {
        std::fs::create_dir_all(&args.store.data_dir)?;
        let secrets = crate::demo::dev_secrets(&args.store.data_dir, clock())?;
        crate::demo::seed(&db, &zones, clock()).await?;
        if args.signing_key_file.is_none() {
            tracing::warn!(file = %secrets.signing_key.display(), "DEMO: using a development signing key; never use it for real evidence");
            args.signing_key_file = Some(secrets.signing_key.clone());
        }
        if args.hmac_key_file.is_none() {
            tracing::warn!(file = %secrets.hmac_key.display(), "DEMO: using a development HMAC key");
            args.hmac_key_file = Some(secrets.hmac_key.clone());
        }
        if args.admin_token_file.is_none() {
            tracing::warn!(file = %secrets.admin_token.display(), "DEMO: using a development admin token");
            args.admin_token_file = Some(secrets.admin_token.clone());
        }
    }
    let admin_token = args
        .admin_token_file
        .as_deref()
        .map(|p| read_secret_file(p, "the admin token file"))
        .transpose()?;
    let hmac_key = args
        .hmac_key_file
        .as_deref()
        .map(|p| read_secret_file(p, "the HMAC key file").map(String::into_bytes))
        .transpose()?;
    let keys = crate::keys::KeySource {
        path: args.signing_key_file.clone(),
    };
    match &args.signing_key_file {
        Some(path) => {
            // Fail at start, not at the first request, when the key is unusable.
            let (key, id) = crate::keys::load_key_file(path, clock())?;
            crate::keys::ensure_active(&db, &key, &id, clock()).await?;
            tracing::info!(key_id = %id, "signing with this key");
        }
        None => tracing::warn!(
            "no signing key configured (VOUCH_SIGNING_KEY_FILE): packet generation answers 503"
        ),
    }
    if hmac_key.is_none() {
        tracing::warn!(
            "no HMAC key configured (VOUCH_HMAC_KEY_FILE): the legacy report answers 503"
        );
    }
    let renderer = Arc::new(
        crate::pdf::Renderer::new(args.templates_dir.as_deref())
            .map_err(|e| anyhow::anyhow!("the PDF template is broken: {e}"))?,
    );
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen))
        .trim_end_matches('/')
        .to_owned();
    let app = App::new(
        db.clone(),
        zones,
        frameworks,
        admin_token,
        keys,
        hmac_key,
        renderer,
        plugins,
        crate::ui::csrf_key(&db).await?,
        public_url,
        clock,
    )?;
    let (addr, server) = warp::serve(crate::http::filter(app))
        .try_bind_with_graceful_shutdown(args.listen, shutdown_signal())
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let backend = match &args.store.database_url {
        Some(u) => redact_url(u),
        None => sqlite_url(&args.store.data_dir),
    };
    tracing::info!(%addr, database = %backend, "vouch is listening");
    if args.demo {
        print_demo_banner(addr, &args.store.data_dir);
    }
    server.await;
    db.pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn print_demo_banner(addr: SocketAddr, dir: &Path) {
    let b = format!("http://{addr}");
    let d = dir.display();
    println!(
        "\nvouch demo on {b}\n\
         users (password `demo`): alice (owner of acme), bob (admin of acme), carol (member of acme), dave (owner of globex)\n\
         development keys and admin token in {d}/ (dev-signing-key.pem, dev-hmac.key, dev-admin-token)\n\n\
         try:\n  \
         curl -s {b}/healthz\n  \
         curl -s -u alice:demo -X PUT {b}/organizations/acme/compliance-subscriptions/soc2\n  \
         curl -s -u carol:demo -X POST {b}/organizations/acme/compliance-reports -H 'Content-Type: application/json' -d '{{\"framework\":\"soc2\"}}' -o packet.json\n  \
         curl -s -u carol:demo {b}/organizations/acme/compliance-reports\n  \
         curl -s {b}/.well-known/compliance-signing-keys\n  \
         vouch verify packet.json --keys {b}/.well-known/compliance-signing-keys\n  \
         curl -s -u carol:demo {b}/organizations/acme/compliance-report\n  \
         curl -s -u dave:demo {b}/organizations/acme/compliance-reports     # 404: not dave's organization\n  \
         curl -s -X POST -H \"Authorization: Bearer $(cat {d}/dev-admin-token)\" --data-binary @examples/import/initech.json {b}/admin/v1/records\n"
    );
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A batch of platform records (JSON), the admin API's body.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn import(args: ImportArgs) -> Result<(), Failure> {
    let bytes = read_capped(&args.file, 512 * 1024 * 1024)?;
    let zones = Catalogue::builtin()?;
    let batch = import::parse(&bytes, &zones).map_err(|e| {
        Failure::input(anyhow::anyhow!(
            "{} was refused, nothing was imported: {e}",
            args.file.display()
        ))
    })?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Failure::input(anyhow::Error::from(e)))?;
    let applied = runtime.block_on(async {
        let db = args.store.open().await?;
        let now = vouch_engine::Timestamp::from_datetime(chrono::Utc::now());
        let actor = Actor {
            name: "cli:import".into(),
            remote_addr: None,
        };
        let r = import::apply(&db, batch, &actor, now).await;
        db.pool.close().await;
        r.map_err(|e| {
            anyhow::anyhow!(
                "{} was refused, nothing was imported: {e}",
                args.file.display()
            )
        })
    })?;
    println!(
        "{}",
        serde_json::to_string(&serde_json::json!({ "applied": applied }))?
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The server's signing key file, replaced atomically by the new key.
    #[arg(long, value_name = "FILE", env = "VOUCH_SIGNING_KEY_FILE")]
    key_file: PathBuf,
    /// Id of the new key [default: key-YYYY-MM-<8 hex of its public key>]
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct MarkArgs {
    /// The key to mark, as `vouch keys list` shows it.
    #[arg(value_name = "KEY_ID")]
    key_id: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T, Failure> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Failure::input(anyhow::Error::from(e)))?;
    runtime.block_on(f).map_err(Failure::input)
}

fn now() -> vouch_engine::Timestamp {
    vouch_engine::Timestamp::from_datetime(chrono::Utc::now())
}

pub fn keys_rotate(a: RotateArgs) -> Result<(), Failure> {
    let id = block_on(async {
        let db = a.store.open().await?;
        // The key being replaced is registered first, so that it is retired, not forgotten.
        if a.key_file.exists() {
            let (old, old_id) = crate::keys::load_key_file(&a.key_file, now())?;
            crate::keys::ensure_active(&db, &old, &old_id, now()).await?;
        }
        let id = crate::keys::rotate(&db, &a.key_file, a.key_id.clone(), now()).await?;
        db.pool.close().await;
        Ok(id)
    })?;
    println!("{id}");
    Ok(())
}

pub fn keys_mark(a: MarkArgs, revoke: bool) -> Result<(), Failure> {
    block_on(async {
        let db = a.store.open().await?;
        crate::keys::mark(&db, &a.key_id, revoke, now()).await?;
        db.pool.close().await;
        Ok(())
    })?;
    println!(
        "{} {}",
        a.key_id,
        if revoke { "revoked" } else { "retired" }
    );
    Ok(())
}

pub fn keys_list(a: ListArgs) -> Result<(), Failure> {
    let keys = block_on(async {
        let db = a.store.open().await?;
        let k = crate::keys::history(&db).await?;
        db.pool.close().await;
        Ok(k)
    })?;
    let show = |t: Option<i64>| {
        t.and_then(vouch_engine::Timestamp::from_unix_seconds)
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{:<32} {:<8} {:<21} {:<21} {:<21}",
        "KEY_ID", "STATE", "VALID_FROM", "RETIRED_AT", "REVOKED_AT"
    );
    for k in keys {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.retired_at.is_some() {
            "retired"
        } else {
            "active"
        };
        println!(
            "{:<32} {:<8} {:<21} {:<21} {:<21}",
            k.key_id,
            state,
            show(Some(k.valid_from)),
            show(k.retired_at),
            show(k.revoked_at)
        );
    }
    Ok(())
}
