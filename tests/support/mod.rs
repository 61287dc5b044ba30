//! Starting the real `vouch` binary for end-to-end tests, on SQLite or on a
//! fresh PostgreSQL database, and talking HTTP to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod harness;
pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary under test: this build's, or `VOUCH_TEST_BIN` (to run the
/// same tests against another build, e.g. an older commit's).
pub fn bin() -> std::ffi::OsString {
    std::env::var_os("VOUCH_TEST_BIN")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_vouch").into())
}

/// Where the example plugin's wasm is: `VOUCH_EXAMPLE_PLUGIN`, or where
/// `cargo build -p backup-cadence --target wasm32-unknown-unknown --profile plugin` puts it.
pub fn example_plugin_path() -> PathBuf {
    std::env::var_os("VOUCH_EXAMPLE_PLUGIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/wasm32-unknown-unknown/plugin/backup_cadence.wasm"))
}

/// A path of the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Where `.ci/run` installs the standards' verifiers (`VOUCH_STANDARDS_TOOLS`,
/// or target/standards-tools).
pub fn standards_tools() -> PathBuf {
    std::env::var_os("VOUCH_STANDARDS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/standards-tools"))
}

/// NIST's OSCAL assessment-results JSON schema, in [`standards_tools`].
pub const OSCAL_AR_SCHEMA: &str = "oscal_assessment-results_schema.json";

/// Waits until the server has read every byte a client sent on `conn`: its
/// end of the connection (in /proc/net/tcp) exists and has nothing left in
/// its receive queue. Until then the request may sit in the kernel, not yet
/// accepted, and a signal would find nothing in flight.
pub fn wait_until_server_read(conn: &std::net::TcpStream) {
    let (server, client) = (conn.peer_addr().unwrap(), conn.local_addr().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let unread = table.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
            (port(f.get(1)?)? == server.port() && port(f.get(2)?)? == client.port())
                .then(|| u64::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok())
                .flatten()
        });
        if unread == Some(0) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not read the request ({unread:?} bytes unread)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The conventional local PostgreSQL server, used when it answers and
/// Generates a SOC 2 packet for acme as carol on the server at `base` (an
/// URL, so that threads can share it); its report id.
pub fn generate_at(base: &str) -> String {
    let r = request(
        "POST",
        &format!("{base}/organizations/acme/compliance-reports"),
        Auth::Basic("carol", "demo"),
        Some(br#"{"framework":"soc2"}"#),
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["report_id"].as_str().unwrap().to_owned()
}

/// Runs `python3 SCRIPT ARGS` (SCRIPT relative to the repository); whether
/// it succeeded, and its stdout and stderr.
pub fn run_python(script: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new("python3")
        .arg(repo_path(script))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// `VOUCH_TEST_POSTGRES_URL` is not set (`.ci/run` uses the same).
pub const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server for tests: `VOUCH_TEST_POSTGRES_URL`, or
/// [`LOCAL_POSTGRES`] when something listens on 127.0.0.1:5432.
pub fn postgres_url() -> Option<String> {
    static URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Some(u) = std::env::var("VOUCH_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            return Some(u);
        }
        let local = std::net::SocketAddr::from(([127, 0, 0, 1], 5432));
        std::net::TcpStream::connect_timeout(&local, Duration::from_millis(500))
            .ok()
            .map(|_| LOCAL_POSTGRES.to_owned())
    })
    .clone()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A new, empty PostgreSQL database; its URL.
pub fn fresh_postgres() -> String {
    let base = postgres_url().expect("VOUCH_TEST_POSTGRES_URL");
    let name = format!("vouch_test_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&base)
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
    });
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("a database URL ends in /DBNAME");
    format!("{prefix}/{name}")
}

/// Where a server keeps its data: a data directory, and a database URL for PostgreSQL.
pub struct Store {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    /// Drop the PostgreSQL database with the store (not for a sharing store).
    owns_database: bool,
}

impl Drop for Store {
    fn drop(&mut self) {
        let (Some(url), true) = (&self.database_url, self.owns_database) else {
            return;
        };
        let Some(base) = postgres_url() else { return };
        let Some((_, name)) = url.rsplit_once('/') else {
            return;
        };
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::Executor::execute(&mut c, sql.as_str()).await;
                }
            });
        }
    }
}

impl Store {
    pub fn new(backend: Backend) -> Store {
        Store {
            dir: tempfile::tempdir().unwrap(),
            database_url: (backend == Backend::Postgres).then(fresh_postgres),
            owns_database: backend == Backend::Postgres,
        }
    }

    /// Another store on the same database (a second server sharing it).
    pub fn sharing(&self) -> Store {
        Store {
            dir: tempfile::tempdir().unwrap(),
            database_url: self.database_url.clone(),
            owns_database: false,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a private (0600) file in the data directory.
    pub fn secret(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        p
    }

    /// A `vouch` command with this store's data directory and database.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).arg("--data-dir").arg(self.dir.path());
        c.env_remove("VOUCH_DATABASE_URL");
        if let Some(url) = &self.database_url {
            c.env("VOUCH_DATABASE_URL", url);
        }
        c
    }
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running `vouch serve`.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub log: mpsc::Receiver<String>,
}

pub struct Options<'a> {
    pub demo: bool,
    pub admin: bool,
    pub env: Vec<(&'a str, String)>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            demo: true,
            admin: true,
            env: vec![],
        }
    }
}

impl Server {
    pub fn start(store: &Store) -> Server {
        Self::start_with(store, Options::default())
    }

    pub fn start_with(store: &Store, opts: Options<'_>) -> Server {
        let mut cmd = store.command(&["serve", "--listen", "127.0.0.1:0"]);
        if opts.demo {
            cmd.arg("--demo");
        }
        if opts.admin {
            let token = store.secret("admin-token", ADMIN_TOKEN);
            cmd.env("VOUCH_ADMIN_TOKEN_FILE", token);
        } else {
            cmd.env_remove("VOUCH_ADMIN_TOKEN_FILE");
        }
        for (k, v) in opts.env {
            cmd.env(k, v);
        }
        cmd.env("VOUCH_LOG_FORMAT", "json").env("VOUCH_LOG", "info");
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = listening_addr(&line) {
                        return Server {
                            child,
                            addr,
                            log: rx,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("vouch serve did not start: {:?}", child.wait());
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
        }
        #[cfg(not(unix))]
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    /// Everything logged so far.
    pub fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_addr(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v["fields"]["message"] == "vouch is listening" {
        v["fields"]["addr"].as_str().map(str::to_owned)
    } else {
        None
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The JSON error code.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub fn request(
    method: &str,
    url: &str,
    auth: Auth<'_>,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Reply {
    use base64::Engine as _;
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    match auth {
        Auth::None => {}
        Auth::Basic(u, p) => {
            let v = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.header("authorization", format!("Basic {v}"));
        }
        Auth::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map(<[u8]>::to_vec).unwrap_or_default())
        .unwrap();
    let resp = agent()
        .run(req)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = resp
        .into_body()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_vec()
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

impl Server {
    pub fn get(&self, path: &str, auth: Auth<'_>) -> Reply {
        request("GET", &self.url(path), auth, None, &[])
    }
    pub fn send(&self, method: &str, path: &str, auth: Auth<'_>, body: &[u8]) -> Reply {
        request(
            method,
            &self.url(path),
            auth,
            Some(body),
            &[("content-type", "application/json")],
        )
    }
    /// `user` (password `demo`) subscribes `org` to `framework` and
    /// generates its packet; the 201 answer.
    pub fn packet(&self, org: &str, user: &str, framework: &str) -> Reply {
        let r = self.send(
            "PUT",
            &format!("/organizations/{org}/compliance-subscriptions/{framework}"),
            Auth::Basic(user, "demo"),
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = self.send(
            "POST",
            &format!("/organizations/{org}/compliance-reports"),
            Auth::Basic(user, "demo"),
            format!(r#"{{"framework":"{framework}"}}"#).as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r
    }
    pub fn admin(&self, batch: &serde_json::Value) -> Reply {
        self.send(
            "POST",
            "/admin/v1/records",
            Auth::Bearer(ADMIN_TOKEN),
            &serde_json::to_vec(batch).unwrap(),
        )
    }
}
