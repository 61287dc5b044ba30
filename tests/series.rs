//! Continuous compliance in process, with a clock moved by hand (no sleeping
//! through months): scheduled packets on SQLite and on two servers sharing
//! PostgreSQL, the hash-linked series and `vouch verify-series` on it, a
//! server that was down catching up, pausing, diffs with regressions,
//! webhooks, auditor grants. PostgreSQL and the `standardwebhooks` receiver
//! are needed where named (reported `ignored` without them, failed under CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use vouch::service::{
    access, generate, grants, reports, schedule, subscriptions, webhooks, App, Caller, Config,
};
use vouch::store::Db;
use vouch_engine::keys::{KeysDocument, PublishedKey};
use vouch_engine::signing::PacketSigner;
use vouch_engine::Timestamp;

const KEY: [u8; 32] = [7u8; 32];

/// Runs a test's body on a runtime of two workers (two servers' tasks
/// really run at once).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
const KEY_ID: &str = "test-key";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Servers sharing one database and one clock.
struct World {
    apps: Vec<Arc<App>>,
    clock: Arc<AtomicI64>,
    dir: tempfile::TempDir,
    url: String,
}

impl World {
    /// One server on an in-memory SQLite database, the demo seeded at `t0`.
    async fn sqlite(t0: &str) -> World {
        World::new("sqlite::memory:", 1, t0).await
    }

    /// `n` servers on one fresh PostgreSQL database.
    async fn postgres(n: usize, t0: &str) -> World {
        let url = tokio::task::spawn_blocking(support::fresh_postgres)
            .await
            .unwrap();
        World::new(&url, n, t0).await
    }

    async fn new(url: &str, n: usize, t0: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let now = ts(t0);
        let clock = Arc::new(AtomicI64::new(now.unix_seconds()));
        let key = ed25519_dalek::SigningKey::from_bytes(&KEY);
        let pem = vouch_engine::signing::key_to_pem(&key, KEY_ID).unwrap();
        vouch::files::write_atomic(&dir.path().join("key.pem"), pem.as_bytes(), 0o600, true)
            .unwrap();
        let mut w = World {
            apps: vec![],
            clock,
            dir,
            url: url.to_owned(),
        };
        for i in 0..n {
            let app = w.boot(i == 0).await;
            w.apps.push(app);
        }
        w
    }

    /// A server on the world's database (the first one seeds the demo).
    async fn boot(&self, seed: bool) -> Arc<App> {
        let db = Db::connect(&self.url).await.unwrap();
        let zones = vouch::zones::Catalogue::builtin().unwrap();
        if seed {
            vouch::demo::seed(&db, &zones, self.now()).await.unwrap();
        }
        let c = self.clock.clone();
        App::new(
            db,
            Config {
                zones,
                frameworks: vouch::cli::offline::load_frameworks_with(None, None).unwrap(),
                admin_token: None,
                keys: vouch::keys::KeySource {
                    path: Some(self.dir.path().join("key.pem")),
                },
                hmac_key: None,
                renderer: Arc::new(vouch::pdf::Renderer::new(None).unwrap()),
                plugins: None,
                public_url: "http://vouch.test".into(),
                clock: Arc::new(move || {
                    Timestamp::from_unix_seconds(c.load(Ordering::SeqCst)).unwrap()
                }),
                login_failures: vouch::auth::throttle::LoginLimits::DEFAULT,
                render: vouch::service::render::Settings {
                    workers: 0,
                    ..Default::default()
                },
                log_key_file: None,
                log_origin: None,
                webhooks: vouch::service::webhooks::Settings {
                    workers: 0,
                    allow_private: true,
                    ..Default::default()
                },
                tsa: None,
            },
        )
        .await
        .unwrap()
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.clock.load(Ordering::SeqCst)).unwrap()
    }

    fn app(&self) -> &App {
        &self.apps[0]
    }

    fn set_clock(&self, t: &str) {
        self.clock.store(ts(t).unix_seconds(), Ordering::SeqCst);
    }

    async fn caller(&self, user: &str) -> Caller {
        let role = vouch::store::users::role(&self.app().db, "acme", user)
            .await
            .unwrap()
            .expect("a member");
        access::authorize(
            self.app(),
            user,
            "acme",
            vouch::auth::Role::parse(&role).unwrap(),
            None,
        )
        .await
        .unwrap()
    }

    async fn subscribe(&self, framework: &str) {
        let alice = self.caller("alice").await;
        subscriptions::set(self.app(), &alice, framework, true)
            .await
            .unwrap();
    }

    /// One scheduling pass on every server at once; what they generated together.
    async fn tick(&self, at: &str) -> usize {
        self.set_clock(at);
        let mut passes = tokio::task::JoinSet::new();
        for app in &self.apps {
            let app = app.clone();
            passes.spawn(async move { schedule::run_due(&app).await.unwrap().generated });
        }
        passes.join_all().await.into_iter().sum()
    }

    /// acme's complete reports of `framework`, oldest first: (listing row, body).
    async fn series(&self, framework: &str) -> Vec<(Value, Vec<u8>)> {
        let carol = self.caller("carol").await;
        let page = reports::list(
            self.app(),
            &carol,
            reports::Listing {
                framework: Some(framework.into()),
                limit: Some(200),
                cursor: None,
            },
        )
        .await
        .unwrap();
        let mut out = vec![];
        for r in page.reports.iter().rev() {
            let row = serde_json::to_value(r).unwrap();
            if row["status"] == "complete" {
                let body = reports::download(self.app(), &carol, &r.report_id)
                    .await
                    .unwrap();
                out.push((row, body));
            }
        }
        out
    }

    /// The keys document with the test key, as a file.
    fn keys_file(&self) -> std::path::PathBuf {
        let key = ed25519_dalek::SigningKey::from_bytes(&KEY);
        let published = PublishedKey::new(&key.verifying_key(), KEY_ID, None, None, None);
        let path = self.dir.path().join("keys.json");
        std::fs::write(
            &path,
            serde_json::to_vec(&KeysDocument::new(vec![published])).unwrap(),
        )
        .unwrap();
        path
    }
}

fn keys() -> KeysDocument {
    let key = ed25519_dalek::SigningKey::from_bytes(&KEY);
    KeysDocument::new(vec![PublishedKey::new(
        &key.verifying_key(),
        KEY_ID,
        None,
        None,
        None,
    )])
}

/// The month ends of 2026 (and January 2027), an hour after each: when the
/// packet of the month before is due.
fn month_ends() -> Vec<String> {
    (2..=13)
        .map(|m| {
            let (y, m) = if m == 13 { (2027, 1) } else { (2026, m) };
            format!("{y}-{m:02}-01T01:00:00Z")
        })
        .collect()
}

fn packet(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).unwrap()["packet"].clone()
}

/// Twelve scheduled packets, one per month of 2026, each naming the one
/// before it inside its signed bytes, and a series that verifies whole.
fn assert_a_linked_year(series: &[(Value, Vec<u8>)]) {
    assert_eq!(series.len(), 12, "twelve packets");
    let mut previous = Value::Null;
    for (i, (row, body)) in series.iter().enumerate() {
        let p = packet(body);
        assert_eq!(row["trigger"], "scheduled");
        assert_eq!(
            p["period_start"],
            json!(format!("2026-{:02}-01T00:00:00Z", i + 1)),
            "month {i}"
        );
        assert_eq!(
            p["series"]["previous_canonical_sha256"], previous,
            "link {i}"
        );
        assert_eq!(row["previous_canonical_sha256"], previous);
        assert!(
            p["valid_until"].is_string(),
            "SOC 2 packets state a validity"
        );
        let sig: Value = serde_json::from_slice::<Value>(body).unwrap()["signature"].clone();
        previous = sig["canonical_sha256"].clone();
    }
    let named: Vec<(String, Vec<u8>)> = series
        .iter()
        .map(|(row, body)| (row["report_id"].as_str().unwrap().to_owned(), body.clone()))
        .collect();
    let verified = vouch_engine::series::verify_series(&named, &keys(), "acme", "soc2").unwrap();
    assert_eq!(verified.links.len(), 12);
    assert!(verified.from_the_start());
}

fn a_year_of_monthly_schedules_on_sqlite_is_twelve_linked_packets() {
    block_on(async {
        let w = World::sqlite("2026-01-01T00:00:00Z").await;
        w.subscribe("soc2").await;
        w.subscribe("gdpr_ropa").await;
        // Nothing is due before the first month ends and its delay has passed.
        assert_eq!(w.tick("2026-02-01T00:59:59Z").await, 0);
        for at in month_ends() {
            assert_eq!(w.tick(&at).await, 2, "one packet per subscription at {at}");
            assert_eq!(w.tick(&at).await, 0, "nothing twice at {at}");
        }
        assert_a_linked_year(&w.series("soc2").await);
        assert_eq!(w.series("gdpr_ropa").await.len(), 12);
    })
}

fn two_servers_on_postgres_generate_each_scheduled_packet_once() {
    block_on(async {
        let w = World::postgres(2, "2026-01-01T00:00:00Z").await;
        w.subscribe("soc2").await;
        w.subscribe("dora").await;
        for at in month_ends() {
            assert_eq!(
                w.tick(&at).await,
                2,
                "two servers, one packet per subscription at {at}"
            );
        }
        assert_eq!(w.tick("2027-01-01T02:00:00Z").await, 0);
        assert_a_linked_year(&w.series("soc2").await);
        assert_eq!(w.series("dora").await.len(), 12);
        // Both servers found work: the claim decided who took each.
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM scheduled_runs WHERE state = 'done'")
                .fetch_one(&w.app().db.pool)
                .await
                .unwrap();
        assert_eq!(n, 24);
    })
}

/// A snapshot's statements see one state of PostgreSQL, read only and
/// without JIT (its `BEGIN` sets all three in one round trip), and none of
/// that outlives its transaction.
fn a_snapshot_on_postgres_sees_one_state_read_only_without_jit() {
    block_on(async {
        let w = World::postgres(1, "2026-01-01T00:00:00Z").await;
        let db = &w.app().db;
        let jit = "SELECT current_setting('jit')";
        let (server_jit,): (String,) = sqlx::query_as(jit).fetch_one(&db.pool).await.unwrap();
        let count = "SELECT COUNT(*) FROM organizations";
        let mut tx = db.read().await.unwrap();
        let (before,): (i64,) = sqlx::query_as(count).fetch_one(tx.conn()).await.unwrap();
        sqlx::query(
            "INSERT INTO organizations (id, name, billing_email, created_at, updated_at) \
             VALUES ('late', 'Late', 'late@example.com', 0, 0)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let (during,): (i64,) = sqlx::query_as(count).fetch_one(tx.conn()).await.unwrap();
        assert_eq!(
            during, before,
            "an organization written meanwhile is not seen"
        );
        let settings: (String, String, String) = sqlx::query_as(
            "SELECT current_setting('transaction_isolation'), \
             current_setting('transaction_read_only'), current_setting('jit')",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(
            settings,
            ("repeatable read".into(), "on".into(), "off".into())
        );
        let write = sqlx::query("DELETE FROM organizations")
            .execute(tx.conn())
            .await
            .unwrap_err();
        assert!(
            write.to_string().contains("read-only transaction"),
            "{write}"
        );
        drop(tx);
        // Both connections the pool opened, the snapshot's among them.
        let mut held = vec![];
        for _ in 0..2 {
            let mut c = db.pool.acquire().await.unwrap();
            let (after,): (String,) = sqlx::query_as(jit).fetch_one(&mut *c).await.unwrap();
            assert_eq!(after, server_jit, "JIT is off only inside a snapshot");
            let (n,): (i64,) = sqlx::query_as(count).fetch_one(&mut *c).await.unwrap();
            assert_eq!(n, before + 1);
            held.push(c);
        }
    })
}

/// A generation wakes this server's webhook workers only when it made a
/// delivery for them: with no endpoint receiving its events they sleep on
/// (each wake costs a worker a look for due deliveries).
fn a_generation_wakes_the_webhook_workers_only_for_a_delivery() {
    block_on(async {
        let w = World::sqlite("2026-06-22T10:00:00Z").await;
        w.subscribe("soc2").await;
        let alice = w.caller("alice").await;
        let signals = &w.app().webhooks.signals;
        // A wake with no worker waiting is kept: `idle` then returns at once.
        let woken = || async {
            let idle = signals.idle(std::time::Duration::from_secs(3600));
            tokio::time::timeout(std::time::Duration::ZERO, idle)
                .await
                .is_ok()
        };
        let asked = generate::Request {
            framework: "soc2".into(),
            period_start: None,
            period_end: None,
            idempotency_key: None,
        };
        generate::generate(w.app(), &alice, asked.clone())
            .await
            .unwrap();
        assert!(!woken().await, "no endpoint, no delivery, no wake");
        webhooks::register(
            w.app(),
            &alice,
            webhooks::NewWebhook {
                url: "http://127.0.0.1:9/hook".into(),
                event_types: vec![webhooks::EventType::PacketGenerated],
            },
        )
        .await
        .unwrap();
        assert!(!woken().await, "registering delivers nothing");
        generate::generate(w.app(), &alice, asked).await.unwrap();
        assert!(woken().await, "a delivery wakes a worker");
        assert!(!woken().await, "once");
    })
}

fn a_server_down_for_two_months_catches_up_in_order() {
    block_on(async {
        let w = World::sqlite("2026-01-01T00:00:00Z").await;
        w.subscribe("soc2").await;
        let ends = month_ends();
        for at in &ends[..4] {
            assert_eq!(w.tick(at).await, 1);
        }
        // Down at the ends of May and June; back on July 2nd.
        assert_eq!(w.tick("2026-07-02T09:00:00Z").await, 2, "May and June");
        for at in &ends[6..] {
            assert_eq!(w.tick(at).await, 1);
        }
        assert_a_linked_year(&w.series("soc2").await);
    })
}

fn a_paused_subscription_generates_nothing_and_the_series_shows_the_gap() {
    block_on(async {
        let w = World::sqlite("2026-01-01T00:00:00Z").await;
        w.subscribe("soc2").await;
        let ends = month_ends();
        for at in &ends[..3] {
            assert_eq!(w.tick(at).await, 1);
        }
        let alice = w.caller("alice").await;
        w.set_clock("2026-04-10T00:00:00Z");
        let view = schedule::set_paused(w.app(), &alice, "soc2", true)
            .await
            .unwrap();
        assert!(view.subscriptions[0].paused);
        for at in &ends[3..6] {
            assert_eq!(w.tick(at).await, 0, "paused at {at}");
        }
        // Resumed mid-June: June's packet and the later ones come, April and May never.
        w.set_clock("2026-06-15T00:00:00Z");
        schedule::set_paused(w.app(), &alice, "soc2", false)
            .await
            .unwrap();
        assert_eq!(w.tick(&ends[5]).await, 1, "June");
        let series = w.series("soc2").await;
        let periods: Vec<Value> = series
            .iter()
            .map(|(_, b)| packet(b)["period_start"].clone())
            .collect();
        assert_eq!(
            periods,
            ["2026-01-01", "2026-02-01", "2026-03-01", "2026-06-01"]
                .map(|d| json!(format!("{d}T00:00:00Z")))
        );
        let named: Vec<(String, Vec<u8>)> = series
            .iter()
            .map(|(r, b)| (r["report_id"].as_str().unwrap().to_owned(), b.clone()))
            .collect();
        let e = vouch_engine::series::verify_series(&named, &keys(), "acme", "soc2").unwrap_err();
        assert!(
            matches!(e, vouch_engine::series::SeriesError::Gap { from, to, .. }
                if from == ts("2026-04-01T00:00:00Z") && to == ts("2026-06-01T00:00:00Z")),
            "{e}"
        );
        // A member cannot pause; an unsubscribed framework is 402.
        let carol = w.caller("carol").await;
        assert!(schedule::view(w.app(), &carol).await.is_ok());
        let e = schedule::set_paused(w.app(), &alice, "dora", true)
            .await
            .unwrap_err();
        assert!(
            matches!(e, vouch::service::ServiceError::SubscriptionRequired { .. }),
            "{e:?}"
        );
    })
}

fn a_weekly_cadence_schedules_weeks_from_monday() {
    block_on(async {
        let w = World::sqlite("2026-03-04T12:00:00Z").await; // a Wednesday
        w.subscribe("soc2").await;
        let alice = w.caller("alice").await;
        schedule::set_cadence(w.app(), &alice, schedule::Cadence::Weekly)
            .await
            .unwrap();
        // The week of March 2nd (Monday) to 9th, and the next.
        assert_eq!(w.tick("2026-03-16T01:00:00Z").await, 2);
        let series = w.series("soc2").await;
        let p = packet(&series[0].1);
        assert_eq!(p["period_start"], "2026-03-02T00:00:00Z");
        assert_eq!(p["period_end"], "2026-03-09T00:00:00Z");
        assert_eq!(packet(&series[1].1)["period_start"], "2026-03-09T00:00:00Z");
    })
}

/// On-demand packets join the same series, and concurrent generations
/// never fork it: each names the one stored before it.
fn concurrent_generations_stay_one_chain() {
    block_on(async {
        let w = World::postgres(2, "2026-06-22T10:00:00Z").await;
        w.subscribe("soc2").await;
        let carol = w.caller("carol").await;
        let asked = || generate::Request {
            framework: "soc2".into(),
            period_start: None,
            period_end: None,
            idempotency_key: None,
        };
        let mut runs = tokio::task::JoinSet::new();
        for i in 0..8 {
            let app = w.apps[i % 2].clone();
            let carol = carol.clone();
            let asked = asked();
            runs.spawn(async move { generate::generate(&app, &carol, asked).await.unwrap() });
        }
        runs.join_all().await;
        let series = w.series("soc2").await;
        let named: Vec<(String, Vec<u8>)> = series
            .iter()
            .map(|(r, b)| (r["report_id"].as_str().unwrap().to_owned(), b.clone()))
            .collect();
        let verified =
            vouch_engine::series::verify_series(&named, &keys(), "acme", "soc2").unwrap();
        assert_eq!(verified.links.len(), 8);
        assert!(series.iter().all(|(r, _)| r["trigger"] == "on_demand"));
    })
}

fn vouch(args: &[&str]) -> (i32, String) {
    let out = Command::new(support::bin()).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn verify_series_cli(dir: &Path, keys: &Path) -> (i32, String) {
    vouch(&[
        "verify-series",
        dir.to_str().unwrap(),
        "--org",
        "acme",
        "--framework",
        "soc2",
        "--keys",
        keys.to_str().unwrap(),
    ])
}

/// `vouch verify-series` passes on a year and names what is wrong when a
/// packet is deleted, regenerated with another body, or its link altered.
fn verify_series_names_a_deleted_a_regenerated_and_an_altered_packet() {
    block_on(async {
        let w = World::sqlite("2026-01-01T00:00:00Z").await;
        w.subscribe("soc2").await;
        for at in month_ends() {
            w.tick(&at).await;
        }
        let series = w.series("soc2").await;
        let keys = w.keys_file();
        let dir = w.dir.path().join("year");
        let write_all = || {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, (_, body)) in series.iter().enumerate() {
                std::fs::write(dir.join(format!("2026-{:02}.json", i + 1)), body).unwrap();
            }
        };
        write_all();
        let (code, out) = verify_series_cli(&dir, &keys);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.starts_with(
                "OK series of 12 soc2 packets of acme: 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z"
            ),
            "{out}"
        );

        // Deleted: May's packet is gone.
        std::fs::remove_file(dir.join("2026-05.json")).unwrap();
        let (code, out) = verify_series_cli(&dir, &keys);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("missing: the packet before 2026-06.json")
                && out.contains("nothing covers 2026-05-01T00:00:00Z to 2026-06-01T00:00:00Z"),
            "{out}"
        );

        // Regenerated: May's packet signed again with another body (a control
        // made to look attested), linked to April like the original.
        write_all();
        let mut may = packet(&series[4].1);
        may["controls"][0]["status"] = json!("attested");
        may["controls"][0]["findings"] = json!([]);
        may["generated_at"] = json!("2026-06-03T00:00:00Z");
        let forged: vouch_engine::Packet = serde_json::from_value(may).unwrap();
        let signer = PacketSigner::new(ed25519_dalek::SigningKey::from_bytes(&KEY), KEY_ID.into());
        std::fs::write(
            dir.join("2026-05.json"),
            signer.sign(forged).unwrap().body(None),
        )
        .unwrap();
        let (code, out) = verify_series_cli(&dir, &keys);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("replaced: 2026-06.json follows")
                && out.contains("in its place, 2026-05.json"),
            "{out}"
        );

        // Altered: June's link rewritten to skip May, without the key.
        write_all();
        let june = String::from_utf8(series[5].1.clone()).unwrap();
        let may_sha = serde_json::from_slice::<Value>(&series[4].1).unwrap()["signature"]
            ["canonical_sha256"]
            .as_str()
            .unwrap()
            .to_owned();
        let april_sha = serde_json::from_slice::<Value>(&series[3].1).unwrap()["signature"]
            ["canonical_sha256"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(june.contains(&may_sha));
        std::fs::write(dir.join("2026-06.json"), june.replace(&may_sha, &april_sha)).unwrap();
        let (code, out) = verify_series_cli(&dir, &keys);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("2026-06.json: "), "{out}");
        assert!(out.contains("digest") || out.contains("signature"), "{out}");
    })
}

/// A records change that turns one control into an exception is exactly
/// one regression, in the server's diff and in `vouch diff`.
fn a_records_change_is_one_regression_in_the_diff() {
    block_on(async {
        let w = World::sqlite("2026-06-22T10:00:00Z").await;
        w.subscribe("soc2").await;
        let carol = w.caller("carol").await;
        let period = generate::Request {
            framework: "soc2".into(),
            period_start: Some(ts("2026-06-14T00:00:00Z")),
            period_end: Some(ts("2026-06-21T00:00:00Z")),
            idempotency_key: None,
        };
        let before = generate::generate(w.app(), &carol, period.clone())
            .await
            .unwrap();
        let change = json!({"service_changes": [{
            "change_id": "sessions-open", "service_id": "svc-acme-sessions",
            "at": "2026-06-18T00:00:00Z", "event": "updated", "set": {"auth_required": false}}]});
        vouch::service::records::import(w.app(), serde_json::to_vec(&change).unwrap().into(), None)
            .await
            .unwrap();
        let after = generate::generate(w.app(), &carol, period).await.unwrap();

        let diff = reports::diff(w.app(), &carol, &after.report_id, Some(&before.report_id))
            .await
            .unwrap();
        let d = serde_json::to_value(&diff).unwrap();
        assert_eq!(d["regressions"], 1, "{d:#}");
        assert_eq!(d["improvements"], 0, "{d:#}");
        let regressed: Vec<&Value> = d["controls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["change"] != "unchanged")
            .collect();
        assert_eq!(regressed.len(), 1, "{d:#}");
        let c = regressed[0];
        assert_eq!(c["control_id"], "CC6.1-authentication");
        assert_eq!(c["change"], "regression");
        assert_eq!(
            (&c["before"], &c["after"]),
            (&json!("attested"), &json!("exception"))
        );
        assert_eq!(
            c["findings_added"],
            json!([{"resource": "svc-acme-sessions", "field": "auth_required", "expected": "true"}])
        );
        // Without `against`, and against itself.
        let e = reports::diff(w.app(), &carol, &after.report_id, None)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            vouch::service::ServiceError::BadInput {
                code: "bad_against",
                ..
            }
        ));
        let same = reports::diff(w.app(), &carol, &after.report_id, Some(&after.report_id))
            .await
            .unwrap();
        assert_eq!(same.comparison.regressions, 0);

        // Offline, for a CI pipeline.
        let keys = w.keys_file();
        let (a, b) = (w.dir.path().join("a.json"), w.dir.path().join("b.json"));
        std::fs::write(&a, &before.body).unwrap();
        std::fs::write(&b, &after.body).unwrap();
        let args = |fail: bool| {
            let mut v = vec![
                "diff",
                a.to_str().unwrap(),
                b.to_str().unwrap(),
                "--keys",
                keys.to_str().unwrap(),
            ];
            if fail {
                v.extend(["--fail-on", "regression"]);
            }
            v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let run = |v: Vec<String>| vouch(&v.iter().map(String::as_str).collect::<Vec<_>>());
        let (code, out) = run(args(false));
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("regression   CC6.1-authentication attested -> exception"),
            "{out}"
        );
        assert!(
            out.contains("+ svc-acme-sessions auth_required: expected true"),
            "{out}"
        );
        let (code, out) = run(args(true));
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("1 regression: CC6.1-authentication"), "{out}");
        // Reversed, the same change is an improvement, and nothing fails.
        let (code, out) = run(vec![
            "diff".into(),
            b.to_str().unwrap().into(),
            a.to_str().unwrap().into(),
            "--keys".into(),
            keys.to_str().unwrap().into(),
            "--fail-on".into(),
            "regression".into(),
        ]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("improvement  CC6.1-authentication exception -> attested"),
            "{out}"
        );
    })
}

/// `vouch verify --max-age` fails a packet whose period ended too long ago,
/// and one whose own `valid_until` has passed.
fn verify_max_age_fails_stale_packets() {
    block_on(async {
        let w = World::sqlite("2026-06-22T10:00:00Z").await;
        w.subscribe("soc2").await;
        let carol = w.caller("carol").await;
        let old = generate::generate(
            w.app(),
            &carol,
            generate::Request {
                framework: "soc2".into(),
                period_start: Some(ts("2026-01-01T00:00:00Z")),
                period_end: Some(ts("2026-02-01T00:00:00Z")),
                idempotency_key: None,
            },
        )
        .await
        .unwrap();
        let p = packet(&old.body);
        assert_eq!(
            p["valid_until"], "2026-03-18T00:00:00Z",
            "period end + 45 days"
        );
        let keys = w.keys_file();
        let file = w.dir.path().join("old.json");
        std::fs::write(&file, &old.body).unwrap();
        let path = file.to_str().unwrap();
        let k = keys.to_str().unwrap();
        let (code, out) = vouch(&["verify", path, "--keys", k]);
        assert_eq!(code, 0, "without --max-age a stale packet verifies: {out}");
        assert!(
            out.contains("STALE: valid until 2026-03-18T00:00:00Z, which has passed"),
            "{out}"
        );
        let (code, out) = vouch(&["verify", path, "--keys", k, "--max-age", "30d"]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("stale: the packet's period ended")
                && out.contains("more than --max-age 30days"),
            "{out}"
        );
        assert!(
            !out.contains("OK "),
            "nothing is called OK that fails: {out}"
        );
        // Young enough by --max-age, but past its own valid_until.
        let (code, out) = vouch(&["verify", path, "--keys", k, "--max-age", "100000d"]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("valid until 2026-03-18T00:00:00Z, which has passed"),
            "{out}"
        );
        let (code, out) = vouch(&["verify", path, "--keys", k, "--max-age", "soon"]);
        assert_eq!(code, 2, "a bad duration is a usage error: {out}");
    })
}

/// The receiver of tests/webhook_receiver.py: its process and port.
struct Receiver {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Receiver {
    fn start(dir: &Path, failures: u32) -> Receiver {
        let log = dir.join("deliveries.jsonl");
        let mut child = Command::new("python3")
            .arg(support::repo_path("tests/webhook_receiver.py"))
            .arg(dir.join("secret"))
            .arg(&log)
            .arg(failures.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with standardwebhooks (pip install standardwebhooks)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line
            .trim()
            .parse()
            .expect("the receiver's port (is standardwebhooks installed?)");
        Receiver { child, port, log }
    }

    /// Every request it got: (webhook-id, verified, status, type).
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Webhook deliveries verify with the `standardwebhooks` library; a
/// receiver that fails three times, with a restart of the server in
/// between, gets the event once, and nothing is sent after it answered.
fn a_webhook_is_delivered_once_through_failures_and_a_restart() {
    block_on(async {
        let data = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", data.path().join("v.db").display());
        let mut w = World::new(&url, 1, "2026-06-22T10:00:00Z").await;
        w.subscribe("soc2").await;
        let alice = w.caller("alice").await;
        let receiver = Receiver::start(w.dir.path(), 3);

        // Refused: http:// and private addresses unless allowed, credentials,
        // unknown event types.
        for (url, allowed) in [
            ("http://127.0.0.1:9/hook", false),
            ("https://127.0.0.1/hook", false),
            ("https://10.1.2.3/hook", false),
            ("https://169.254.169.254/latest", false),
            ("https://[::1]/hook", false),
            ("https://[::ffff:10.0.0.1]/hook", false),
            ("https://LOCALHOST/hook", false),
            ("https://user:pw@example.com/", true),
            ("ftp://example.com/", true),
            ("/relative", true),
        ] {
            assert!(
                webhooks::check_url(url, allowed).is_err(),
                "{url} is refused"
            );
        }
        assert!(webhooks::check_url("https://93.184.215.14/hook", false).is_ok());
        assert!(webhooks::check_destination("https://10.1.2.3/hook", false)
            .await
            .is_err());
        let hook = |types: &[webhooks::EventType]| webhooks::NewWebhook {
            url: format!("http://127.0.0.1:{}/hook", receiver.port),
            event_types: types.to_vec(),
        };
        let bad = webhooks::register(w.app(), &alice, hook(&[]))
            .await
            .unwrap_err();
        assert!(bad.to_string().contains("at least one event type"), "{bad}");

        let created = webhooks::register(
            w.app(),
            &alice,
            hook(&[
                webhooks::EventType::PacketGenerated,
                webhooks::EventType::ControlRegressed,
            ]),
        )
        .await
        .unwrap();
        assert!(created.secret.starts_with("whsec_"));
        std::fs::write(w.dir.path().join("secret"), &created.secret).unwrap();
        let listed = webhooks::list(w.app(), &alice).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            !serde_json::to_string(&listed).unwrap().contains("whsec_"),
            "the secret is shown once"
        );

        let carol = w.caller("carol").await;
        let asked = generate::Request {
            framework: "soc2".into(),
            period_start: None,
            period_end: None,
            idempotency_key: None,
        };
        let packet = generate::generate(w.app(), &carol, asked).await.unwrap();
        // Attempts 1 and 2 fail (500); the second waits for its backoff.
        assert_eq!(webhooks::deliver_due(w.app()).await.unwrap(), 1);
        assert_eq!(
            webhooks::deliver_due(w.app()).await.unwrap(),
            0,
            "not before its backoff"
        );
        w.clock.fetch_add(webhooks::BACKOFF[0], Ordering::SeqCst);
        assert_eq!(webhooks::deliver_due(w.app()).await.unwrap(), 1);
        // A restart: the queue is the table.
        w.apps.clear();
        let app = w.boot(false).await;
        w.apps.push(app);
        w.clock.fetch_add(webhooks::BACKOFF[1], Ordering::SeqCst);
        assert_eq!(
            webhooks::deliver_due(w.app()).await.unwrap(),
            1,
            "the third attempt, after the restart"
        );
        w.clock.fetch_add(webhooks::BACKOFF[2], Ordering::SeqCst);
        assert_eq!(
            webhooks::deliver_due(w.app()).await.unwrap(),
            1,
            "the fourth succeeds"
        );
        w.clock.fetch_add(86_400, Ordering::SeqCst);
        assert_eq!(
            webhooks::deliver_due(w.app()).await.unwrap(),
            0,
            "nothing after it was delivered"
        );

        let got = receiver.requests();
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            got.iter().all(|r| r["verified"] == true),
            "standardwebhooks verifies every attempt: {got:?}"
        );
        let id = &got[0]["webhook_id"];
        assert!(
            got.iter().all(|r| &r["webhook_id"] == id),
            "one event id through the retries: {got:?}"
        );
        let statuses: Vec<&Value> = got.iter().map(|r| &r["status"]).collect();
        assert_eq!(
            statuses,
            [&json!(500), &json!(500), &json!(500), &json!(204)]
        );
        assert_eq!(got[3]["type"], "packet.generated");
        let listed = webhooks::list(w.app(), &alice).await.unwrap();
        assert_eq!(
            (listed[0].pending, listed[0].delivered, listed[0].failed),
            (0, 1, 0)
        );
        let _ = packet;

        // A regression is its own event, after the packet's.
        let change = json!({"service_changes": [{
            "change_id": "sessions-open", "service_id": "svc-acme-sessions",
            "at": "2026-06-23T00:00:00Z", "event": "updated", "set": {"auth_required": false}}]});
        w.set_clock("2026-06-24T10:00:00Z");
        vouch::service::records::import(w.app(), serde_json::to_vec(&change).unwrap().into(), None)
            .await
            .unwrap();
        let asked = generate::Request {
            framework: "soc2".into(),
            period_start: None,
            period_end: None,
            idempotency_key: None,
        };
        generate::generate(w.app(), &carol, asked).await.unwrap();
        assert_eq!(webhooks::deliver_due(w.app()).await.unwrap(), 2);
        let got = receiver.requests();
        let types: Vec<&Value> = got[4..].iter().map(|r| &r["type"]).collect();
        assert!(
            types.contains(&&json!("control.regressed"))
                && types.contains(&&json!("packet.generated")),
            "{got:?}"
        );
    })
}

/// An outside auditor's grant, in process with the clock moved by hand:
/// the granted framework and period only, every read audited under the
/// auditor's name, and nothing at all once it expired or was revoked.
fn an_auditor_grant_shows_one_framework_and_period_until_it_ends() {
    block_on(async {
        let w = World::sqlite("2026-06-22T10:00:00Z").await;
        w.subscribe("soc2").await;
        w.subscribe("dora").await;
        let carol = w.caller("carol").await;
        let alice = w.caller("alice").await;
        let ask = |framework: &str, start: &str, end: &str| generate::Request {
            framework: framework.into(),
            period_start: Some(ts(start)),
            period_end: Some(ts(end)),
            idempotency_key: None,
        };
        let june = generate::generate(
            w.app(),
            &carol,
            ask("soc2", "2026-06-01T00:00:00Z", "2026-06-22T00:00:00Z"),
        )
        .await
        .unwrap();
        let may = generate::generate(
            w.app(),
            &carol,
            ask("soc2", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"),
        )
        .await
        .unwrap();
        let dora = generate::generate(
            w.app(),
            &carol,
            ask("dora", "2026-06-01T00:00:00Z", "2026-06-22T00:00:00Z"),
        )
        .await
        .unwrap();
        let grant = grants::grant(
            w.app(),
            &alice,
            grants::NewGrant {
                username: "erin".into(),
                framework: "soc2".into(),
                expires_at: ts("2026-07-01T00:00:00Z"),
                period_start: Some(ts("2026-06-01T00:00:00Z")),
                period_end: None,
            },
        )
        .await
        .unwrap();
        let erin = || access::authorize_reader(w.app(), "erin", "acme", None);
        let auditor = erin().await.unwrap();
        assert_eq!(auditor.role, vouch::auth::Role::Auditor);
        assert_eq!(
            reports::download(w.app(), &auditor, &june.report_id)
                .await
                .unwrap(),
            june.body
        );
        for hidden in [&may.report_id, &dora.report_id] {
            let e = reports::download(w.app(), &auditor, hidden)
                .await
                .unwrap_err();
            assert!(matches!(e, vouch::service::ServiceError::NotFound), "{e:?}");
        }
        let page = reports::list(w.app(), &auditor, reports::Listing::default())
            .await
            .unwrap();
        let ids: Vec<&str> = page.reports.iter().map(|r| r.report_id.as_str()).collect();
        assert_eq!(ids, [june.report_id.as_str()]);
        // Not a member: nothing else of the organization.
        assert!(
            access::authorize(w.app(), "erin", "acme", vouch::auth::Role::Member, None)
                .await
                .is_err()
        );
        let (actions,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_entries WHERE actor = 'erin' AND action IN ('report.download', 'report.list')",
        )
        .fetch_one(&w.app().db.pool)
        .await
        .unwrap();
        assert_eq!(actions, 2, "the auditor's download and listing are audited");
        // Expired: as if erin had never been granted anything.
        w.set_clock("2026-07-01T00:00:00Z");
        assert!(matches!(
            erin().await.unwrap_err(),
            vouch::service::ServiceError::NotFound
        ));
        // Revoked: the same, and a second revocation finds nothing.
        w.set_clock("2026-06-23T00:00:00Z");
        assert!(erin().await.is_ok());
        grants::revoke(w.app(), &alice, &grant.grant_id)
            .await
            .unwrap();
        assert!(matches!(
            erin().await.unwrap_err(),
            vouch::service::ServiceError::NotFound
        ));
        assert!(grants::revoke(w.app(), &alice, &grant.grant_id)
            .await
            .is_err());
    })
}

/// `vouch verify-series URL`: the listing of a live server, read with a
/// member's credentials, verified against its published keys.
fn verify_series_reads_a_live_server() {
    let store = support::Store::new(support::Backend::Sqlite);
    let s = support::Server::start(&store);
    let base = format!("http://{}", s.addr);
    let r = support::request(
        "PUT",
        &format!("{base}/organizations/acme/compliance-subscriptions/soc2"),
        support::Auth::Basic("alice", "demo"),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    for _ in 0..3 {
        support::generate_at(&base);
    }
    let keys = format!("{base}/.well-known/compliance-signing-keys");
    let run = |password: &str| {
        let out = Command::new(support::bin())
            .args([
                "verify-series",
                &base,
                "--user",
                "carol",
                "--org",
                "acme",
                "--framework",
                "soc2",
                "--keys",
                &keys,
            ])
            .env("VOUCH_PASSWORD", password)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, out) = run("demo");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("OK series of 3 soc2 packets of acme"),
        "{out}"
    );
    let (code, out) = run("wrong");
    assert_eq!(
        code, 3,
        "a refused login is unreadable input, not a broken series: {out}"
    );
    assert!(out.contains("401"), "{out}");
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    run(&[
        case!(a_year_of_monthly_schedules_on_sqlite_is_twelve_linked_packets),
        case!(two_servers_on_postgres_generate_each_scheduled_packet_once).needs(&[Tool::Postgres]),
        case!(a_snapshot_on_postgres_sees_one_state_read_only_without_jit).needs(&[Tool::Postgres]),
        case!(a_generation_wakes_the_webhook_workers_only_for_a_delivery),
        case!(a_server_down_for_two_months_catches_up_in_order),
        case!(a_paused_subscription_generates_nothing_and_the_series_shows_the_gap),
        case!(a_weekly_cadence_schedules_weeks_from_monday),
        case!(concurrent_generations_stay_one_chain).needs(&[Tool::Postgres]),
        case!(verify_series_names_a_deleted_a_regenerated_and_an_altered_packet),
        case!(a_records_change_is_one_regression_in_the_diff),
        case!(verify_max_age_fails_stale_packets),
        case!(a_webhook_is_delivered_once_through_failures_and_a_restart).needs(&[Tool::Webhooks]),
        case!(an_auditor_grant_shows_one_framework_and_period_until_it_ends),
        case!(verify_series_reads_a_live_server),
    ])
}
