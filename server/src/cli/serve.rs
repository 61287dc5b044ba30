//! `vouch serve`: the HTTP server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::StoreArgs;
use crate::files::read_private;
use crate::http::server::Limits;
use crate::service::{system_clock, App, Config};
use crate::store::{redact_url, sqlite_url};
use crate::zones::Catalogue;
use crate::Failure;

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
    /// The most client connections served at once; more wait to be accepted.
    #[arg(
        long,
        value_name = "N",
        env = "VOUCH_MAX_CONNECTIONS",
        default_value_t = 512
    )]
    max_connections: usize,
    /// How long requests in flight may take to finish after SIGTERM.
    #[arg(
        long,
        value_name = "DURATION",
        env = "VOUCH_SHUTDOWN_DEADLINE",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    shutdown_deadline: std::time::Duration,
    /// Failed logins a minute from one client address before it waits (429).
    #[arg(
        long,
        value_name = "N",
        env = "VOUCH_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = crate::auth::throttle::LoginLimits::DEFAULT.per_address
    )]
    login_failures_per_address: u32,
    /// Failed logins a minute for one username before it waits (429).
    #[arg(
        long,
        value_name = "N",
        env = "VOUCH_LOGIN_FAILURES_PER_USER",
        default_value_t = crate::auth::throttle::LoginLimits::DEFAULT.per_username
    )]
    login_failures_per_user: u32,
    /// PDF render workers on this server; 0 renders only when a PDF is
    /// asked for [default: cores - 1, at least 1]
    #[arg(long, value_name = "N", env = "VOUCH_RENDER_WORKERS")]
    render_workers: Option<usize>,
    /// How long a render job taken by a server is its own; a server that
    /// dies leaves its job to others after this.
    #[arg(
        long,
        value_name = "DURATION",
        env = "VOUCH_RENDER_LEASE",
        default_value = "120s",
        value_parser = humantime::parse_duration
    )]
    render_lease: std::time::Duration,
    /// Attempts at rendering a PDF before its job stays failed.
    #[arg(
        long,
        value_name = "N",
        env = "VOUCH_RENDER_ATTEMPTS",
        default_value_t = crate::service::render::Settings::DEFAULT_MAX_ATTEMPTS,
        value_parser = clap::value_parser!(i64).range(1..=100)
    )]
    render_attempts: i64,
    /// Ed25519 key of the transparency log's checkpoints (PKCS#8 PEM, mode
    /// 0600) [default: a key kept in the database, made on first start]
    #[arg(long, value_name = "FILE", env = "VOUCH_LOG_KEY_FILE")]
    log_key_file: Option<PathBuf>,
    /// The transparency log's origin, the first line of its checkpoints,
    /// e.g. `vouch.example.com/log`; fixed by the first start [default:
    /// vouch-log/<16 hex of the log key's SHA-256>]
    #[arg(long, value_name = "NAME", env = "VOUCH_LOG_ORIGIN")]
    log_origin: Option<String>,
    /// An RFC 3161 time-stamping authority: every packet's signature is
    /// timestamped and the response stored with it [default: none]
    #[arg(long, value_name = "URL", env = "VOUCH_TSA_URL")]
    tsa_url: Option<String>,
    /// Webhook delivery workers on this server (0: this server delivers none).
    #[arg(
        long,
        value_name = "N",
        env = "VOUCH_WEBHOOK_WORKERS",
        default_value_t = 1
    )]
    webhook_workers: usize,
    /// Let webhook endpoints be http:// and loopback, private or link-local
    /// addresses (receivers inside the platform's own network; tests).
    #[arg(long, env = "VOUCH_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
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
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a log file or a pipe gets plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        );
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
    let plugins = super::offline::load_plugins(args.plugins_dir.as_deref()).map_err(|f| f.error)?;
    let frameworks =
        super::offline::load_frameworks_with(args.frameworks_dir.as_deref(), plugins.as_deref())
            .map_err(|f| f.error)?;
    if let Some(p) = &plugins {
        tracing::info!(plugins = ?p.names(), "plugins loaded");
    }
    if args.demo {
        crate::files::private_dir(&args.store.data_dir)?;
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
        Config {
            zones,
            frameworks,
            admin_token,
            keys,
            hmac_key,
            renderer,
            plugins,
            public_url,
            clock,
            login_failures: crate::auth::throttle::FailureLimits {
                per_address: args.login_failures_per_address,
                per_username: args.login_failures_per_user,
            },
            render: crate::service::render::Settings {
                workers: args
                    .render_workers
                    .unwrap_or_else(crate::service::render::Settings::default_workers),
                lease: args.render_lease.max(std::time::Duration::from_secs(1)),
                max_attempts: args.render_attempts,
                poll: crate::service::render::Settings::DEFAULT_POLL,
            },
            log_key_file: args.log_key_file.clone(),
            log_origin: args.log_origin.clone(),
            tsa: args
                .tsa_url
                .as_deref()
                .map(crate::tsa::Tsa::new)
                .transpose()?,
            webhooks: crate::service::webhooks::Settings {
                workers: args.webhook_workers,
                allow_private: args.webhook_allow_private,
                ..Default::default()
            },
        },
    )
    .await?;
    let logged = crate::service::log::catch_up(&app.db, app.now()).await?;
    if logged > 0 {
        tracing::info!(
            entries = logged,
            "transparency log: appended what was stored before it"
        );
    }
    tracing::info!(origin = %app.log.origin(), "transparency log");
    crate::service::render::start_workers(&app);
    // Scheduled packets: every server looks, the database decides who generates.
    crate::service::schedule::start(&app);
    crate::service::webhooks::start_workers(&app);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let backend = match &args.store.database_url {
        Some(u) => redact_url(u),
        None => sqlite_url(&args.store.data_dir),
    };
    tracing::info!(%addr, database = %backend, "vouch is listening");
    if args.demo {
        print_demo_banner(addr, &args.store.data_dir);
    }
    let limits = Limits {
        max_connections: args.max_connections,
        shutdown_deadline: args.shutdown_deadline,
        ..Limits::default()
    };
    crate::http::server::serve(app.clone(), listener, limits, shutdown_signal()).await?;
    // Render workers finish the job in hand (bounded by the same deadline)
    // before the database closes under them; a job cut short is taken again
    // when its lease runs out.
    app.render.stop();
    app.scheduler.stop();
    app.webhooks.stop();
    app.background.close();
    let _ = tokio::time::timeout(limits.shutdown_deadline, app.background.wait()).await;
    db.close().await;
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
         curl -s -X POST -H \"Authorization: Bearer $(cat {d}/dev-admin-token)\" -H 'Content-Type: application/json' --data-binary @examples/import/initech.json {b}/admin/v1/records\n"
    );
}
