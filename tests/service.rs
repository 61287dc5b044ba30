//! The service layer in process: an in-memory SQLite database, the demo
//! records, a fixed clock moved by hand. No server, no sockets, no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use vouch::service::{
    access, generate, render, reports, subscriptions, App, Caller, Config, ServiceError,
};
use vouch::store::Db;
use vouch_engine::Timestamp;

const T0: &str = "2026-06-22T10:00:00Z";

struct World {
    app: Arc<App>,
    clock: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn world() -> World {
    world_with(
        vouch::pdf::Renderer::new(None).unwrap(),
        // No workers: the tests run the queue themselves (render::run_ready).
        render::Settings {
            workers: 0,
            ..Default::default()
        },
    )
    .await
}

async fn world_with(renderer: vouch::pdf::Renderer, render: render::Settings) -> World {
    let dir = tempfile::tempdir().unwrap();
    let now = ts(T0);
    let clock = Arc::new(AtomicI64::new(now.unix_seconds()));
    let db = Db::connect("sqlite::memory:").await.unwrap();
    let zones = vouch::zones::Catalogue::builtin().unwrap();
    vouch::demo::seed(&db, &zones, now).await.unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let pem = vouch_engine::signing::key_to_pem(&key, "test-key").unwrap();
    let key_file = dir.path().join("key.pem");
    vouch::files::write_atomic(&key_file, pem.as_bytes(), 0o600, true).unwrap();
    let c = clock.clone();
    let app = App::new(
        db,
        Config {
            zones,
            frameworks: vouch::cli::offline::load_frameworks_with(None, None).unwrap(),
            admin_token: None,
            keys: vouch::keys::KeySource {
                path: Some(key_file),
            },
            hmac_key: None,
            renderer: Arc::new(renderer),
            plugins: None,
            public_url: "http://vouch.test".into(),
            clock: Arc::new(move || {
                Timestamp::from_unix_seconds(c.load(Ordering::SeqCst)).unwrap()
            }),
            login_failures: vouch::auth::throttle::LoginLimits::DEFAULT,
            render,
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
    .unwrap();
    World {
        app,
        clock,
        _dir: dir,
    }
}

impl World {
    async fn caller(&self, user: &str, org: &str) -> Caller {
        let role = vouch::store::users::role(&self.app.db, org, user)
            .await
            .unwrap()
            .expect("a member");
        access::authorize(
            &self.app,
            user,
            org,
            vouch::auth::Role::parse(&role).unwrap(),
            None,
        )
        .await
        .unwrap()
    }

    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    async fn subscribe(&self, framework: &str) {
        let alice = self.caller("alice", "acme").await;
        subscriptions::set(&self.app, &alice, framework, true)
            .await
            .unwrap();
    }

    /// Carol's packet of `framework`, subscribed to first.
    async fn carols_packet(&self, framework: &str) -> (Caller, generate::Generated) {
        self.subscribe(framework).await;
        let carol = self.caller("carol", "acme").await;
        let done = generate::generate(&self.app, &carol, asked(framework, None))
            .await
            .unwrap();
        (carol, done)
    }
}

fn asked(framework: &str, key: Option<&str>) -> generate::Request {
    generate::Request {
        framework: framework.into(),
        period_start: None,
        period_end: None,
        idempotency_key: key.map(str::to_owned),
    }
}

#[tokio::test]
async fn generation_needs_a_subscription() {
    let w = world().await;
    let carol = w.caller("carol", "acme").await;
    let err = generate::generate(&w.app, &carol, asked("soc2", None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::SubscriptionRequired { ref framework, .. } if framework == "soc2"),
        "{err:?}"
    );
    w.subscribe("soc2").await;
    let done = generate::generate(&w.app, &carol, asked("soc2", None))
        .await
        .unwrap();
    assert!(done.report_id.starts_with("r-") && !done.replayed);
}

#[tokio::test]
async fn an_idempotency_key_replays_its_body_and_refuses_another() {
    let w = world().await;
    w.subscribe("soc2").await;
    w.subscribe("dora").await;
    let carol = w.caller("carol", "acme").await;
    let first = generate::generate(&w.app, &carol, asked("soc2", Some("k-1")))
        .await
        .unwrap();
    // An hour later the clock differs; the same body under the same key is
    // the same report, byte for byte.
    w.advance(3600);
    let again = generate::generate(&w.app, &carol, asked("soc2", Some("k-1")))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (&again.report_id, &again.body),
        (&first.report_id, &first.body)
    );
    let other = generate::generate(&w.app, &carol, asked("dora", Some("k-1")))
        .await
        .unwrap_err();
    assert!(
        matches!(other, ServiceError::IdempotencyKeyReused),
        "{other:?}"
    );
    for bad in ["", "caf\u{e9}", "a b"] {
        let e = generate::generate(&w.app, &carol, asked("soc2", Some(bad)))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ServiceError::BadInput {
                    code: "bad_idempotency_key",
                    ..
                }
            ),
            "{bad:?}: {e:?}"
        );
    }
    let page = reports::list(&w.app, &carol, reports::Listing::default())
        .await
        .unwrap();
    assert_eq!(page.reports.len(), 1, "a replay stores nothing new");
}

#[tokio::test]
async fn bad_periods_are_refused() {
    let w = world().await;
    w.subscribe("soc2").await;
    let carol = w.caller("carol", "acme").await;
    let cases = [
        (
            Some("2026-06-01T00:00:00Z"),
            Some("2026-05-01T00:00:00Z"),
            "inverted",
        ),
        (None, Some("2026-07-01T00:00:00Z"), "future end"),
        (None, Some("1970-01-15T00:00:00Z"), "month before 1970"),
    ];
    for (start, end, why) in cases {
        let req = generate::Request {
            framework: "soc2".into(),
            period_start: start.map(ts),
            period_end: end.map(ts),
            idempotency_key: None,
        };
        let e = generate::generate(&w.app, &carol, req).await.unwrap_err();
        assert!(
            matches!(
                e,
                ServiceError::BadInput {
                    code: "bad_period",
                    ..
                }
            ),
            "{why}: {e:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_generation_names_no_internal_detail_and_frees_its_key() {
    let w = world().await;
    w.subscribe("soc2").await;
    let carol = w.caller("carol", "acme").await;
    // Break the snapshot: a table it reads is gone.
    sqlx::query("ALTER TABLE restore_tests RENAME TO restore_tests_gone")
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let e = generate::generate(&w.app, &carol, asked("soc2", Some("k-2")))
        .await
        .unwrap_err();
    let ServiceError::GenerationFailed { ref cause, .. } = e else {
        panic!("{e:?}")
    };
    assert!(
        format!("{cause:#}").contains("restore_tests"),
        "the log gets the cause"
    );
    assert!(
        !e.to_string().contains("restore_tests"),
        "the member does not: {e}"
    );
    let page = reports::list(&w.app, &carol, reports::Listing::default())
        .await
        .unwrap();
    let failed = &page.reports[0];
    assert_eq!(failed.status, "failed");
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some(generate::FAILURE_REASON)
    );
    // Fixed, the same key generates the packet.
    sqlx::query("ALTER TABLE restore_tests_gone RENAME TO restore_tests")
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let done = generate::generate(&w.app, &carol, asked("soc2", Some("k-2")))
        .await
        .unwrap();
    assert!(!done.replayed);
}

/// The listing's `pdf_status` of report `id`, and its `pdf_error`.
async fn pdf_state(w: &World, caller: &Caller, id: &str) -> (Option<&'static str>, Option<String>) {
    let page = reports::list(&w.app, caller, reports::Listing::default())
        .await
        .unwrap();
    let r = page
        .reports
        .into_iter()
        .find(|r| r.report_id == id)
        .unwrap();
    (r.pdf_status, r.pdf_error)
}

async fn job(w: &World, id: &str) -> (String, i64) {
    sqlx::query_as("SELECT state, attempts FROM render_jobs WHERE report_id = $1")
        .bind(id)
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_pdf_is_rendered_by_the_queue_or_on_demand() {
    let w = world().await;
    let (carol, done) = w.carols_packet("soc2").await;
    // Generation queued the job in its own transaction.
    assert_eq!(
        pdf_state(&w, &carol, &done.report_id).await,
        (Some("queued"), None)
    );
    assert_eq!(render::run_ready(&w.app).await.unwrap(), 1);
    assert_eq!(
        render::run_ready(&w.app).await.unwrap(),
        0,
        "one job, run once"
    );
    assert_eq!(
        pdf_state(&w, &carol, &done.report_id).await,
        (Some("ready"), None)
    );
    assert_eq!(job(&w, &done.report_id).await, ("done".into(), 1));
    let (pdf, how) = reports::pdf(&w.app, &carol, &done.report_id).await.unwrap();
    assert_eq!(how, reports::Rendition::Stored);
    assert!(pdf.starts_with(b"%PDF"));
    // A report whose rendering is missing is rendered for the request.
    sqlx::query("DELETE FROM report_pdfs")
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    let (again, how) = reports::pdf(&w.app, &carol, &done.report_id).await.unwrap();
    assert_eq!(how, reports::Rendition::RenderedNow);
    assert_eq!(again, pdf, "renderings of one packet are identical");
    // So is one whose job has not run yet.
    let (_, second) = w.carols_packet("soc2").await;
    let (_, how) = reports::pdf(&w.app, &carol, &second.report_id)
        .await
        .unwrap();
    assert_eq!(how, reports::Rendition::RenderedNow);
    assert_eq!(job(&w, &second.report_id).await, ("done".into(), 1));
    assert_eq!(
        render::run_ready(&w.app).await.unwrap(),
        0,
        "nothing left to render"
    );
}

/// A request for a PDF that another worker (here: another server) is
/// rendering waits for that rendering instead of running a second one.
#[tokio::test]
async fn a_pdf_being_rendered_elsewhere_is_waited_for_not_rendered_twice() {
    let w = world().await;
    let (carol, done) = w.carols_packet("soc2").await;
    let other = vouch::store::render::take_next(&w.app.db, "other-server", now_ms(), 60_000, 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.report_id, done.report_id);
    assert_eq!(
        pdf_state(&w, &carol, &done.report_id).await.0,
        Some("rendering")
    );
    let asked = {
        let (app, carol, id) = (w.app.clone(), carol.clone(), done.report_id.clone());
        tokio::spawn(async move { reports::pdf(&app, &carol, &id).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !asked.is_finished(),
        "the request waits for the other rendering"
    );
    let theirs = b"%PDF-1.7 the other server's rendering";
    let stored = vouch::store::render::finish(
        &w.app.db,
        &done.report_id,
        "other-server",
        &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, theirs),
        0,
    )
    .await
    .unwrap();
    assert!(stored, "the job was still the other server's");
    let (pdf, how) = asked.await.unwrap().unwrap();
    assert_eq!(
        (pdf.as_slice(), how),
        (&theirs[..], reports::Rendition::Stored)
    );
    assert_eq!(renders(&w.app), 0, "this server rendered nothing");
    assert_eq!(job(&w, &done.report_id).await, ("done".into(), 1));
}

/// A job whose server died (kill -9: it never finished nor failed) is taken
/// again once its lease ran out, and rendered once more.
#[tokio::test]
async fn a_job_left_by_a_dead_server_is_taken_again_when_its_lease_runs_out() {
    let w = world().await;
    let (carol, done) = w.carols_packet("soc2").await;
    let live = vouch::store::render::take_next(&w.app.db, "dead-server", now_ms(), 60_000, 5)
        .await
        .unwrap();
    assert!(live.is_some());
    assert_eq!(
        render::run_ready(&w.app).await.unwrap(),
        0,
        "its lease is live"
    );
    sqlx::query("UPDATE render_jobs SET lease_until = $1")
        .bind(now_ms() - 1)
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    assert_eq!(render::run_ready(&w.app).await.unwrap(), 1);
    assert_eq!(job(&w, &done.report_id).await, ("done".into(), 2));
    assert_eq!(
        pdf_state(&w, &carol, &done.report_id).await,
        (Some("ready"), None)
    );
    // On its last attempt, the job fails instead, saying why.
    let (_, second) = w.carols_packet("soc2").await;
    vouch::store::render::take_next(&w.app.db, "dead-server", now_ms(), 0, 1)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(
        vouch::store::render::take_next(&w.app.db, "w", now_ms(), 60_000, 1)
            .await
            .unwrap()
            .is_none()
    );
    let (status, error) = pdf_state(&w, &carol, &second.report_id).await;
    assert_eq!(status, Some("failed"));
    assert!(error.unwrap().contains("stopped before it finished"));
}

/// A rendering that keeps failing is tried again after a back-off, then
/// stops after its attempts with the renderer's reason in the listing; a
/// request for the PDF still tries once more, and says it failed.
#[tokio::test]
async fn a_rendering_that_keeps_failing_stops_with_its_reason_listed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("packet.typ.j2"),
        "#panic(\"no cover for {{ report_id }}\")\n",
    )
    .unwrap();
    let w = world_with(
        vouch::pdf::Renderer::new(Some(dir.path())).unwrap(),
        render::Settings {
            workers: 0,
            max_attempts: 2,
            ..Default::default()
        },
    )
    .await;
    let (carol, done) = w.carols_packet("soc2").await;
    assert_eq!(render::run_ready(&w.app).await.unwrap(), 1);
    let (status, error) = pdf_state(&w, &carol, &done.report_id).await;
    assert_eq!(status, Some("queued"), "tried again after a back-off");
    assert!(
        error.as_deref().unwrap().contains("no cover for"),
        "{error:?}"
    );
    assert_eq!(
        render::run_ready(&w.app).await.unwrap(),
        0,
        "not before the back-off ends"
    );
    sqlx::query("UPDATE render_jobs SET lease_until = 0")
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    assert_eq!(render::run_ready(&w.app).await.unwrap(), 1);
    assert_eq!(job(&w, &done.report_id).await, ("failed".into(), 2));
    assert_eq!(
        render::run_ready(&w.app).await.unwrap(),
        0,
        "out of attempts"
    );
    let (status, error) = pdf_state(&w, &carol, &done.report_id).await;
    assert_eq!(status, Some("failed"));
    assert!(error.unwrap().contains("no cover for"));
    let asked = reports::pdf(&w.app, &carol, &done.report_id).await;
    assert!(matches!(asked, Err(ServiceError::Internal(_))), "{asked:?}");
    assert_eq!(job(&w, &done.report_id).await, ("failed".into(), 3));
    // The packet itself is untouched.
    assert!(reports::download(&w.app, &carol, &done.report_id)
        .await
        .is_ok());
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// PDF renderings this app ran.
fn renders(app: &App) -> u64 {
    let text = String::from_utf8(app.metrics.render()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("vouch_pdf_renders_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The records are archived compressed and served as the exact bytes the
/// packet names; rows written before compression (migration 0007, the text
/// itself) are served as they are; a damaged archive is an error, never
/// another document.
#[tokio::test]
async fn the_records_archive_is_compressed_and_served_only_when_its_digest_holds() {
    let w = world().await;
    let (carol, done) = w.carols_packet("soc2").await;
    let served = reports::records(&w.app, &carol, &done.report_id)
        .await
        .unwrap();
    let packet: serde_json::Value = serde_json::from_slice(&done.body).unwrap();
    assert_eq!(
        packet["packet"]["inputs"]["records_sha256"],
        vouch_engine::signing::sha256_hex(&served)
    );
    let (stored, encoding): (String, String) =
        sqlx::query_as("SELECT records, encoding FROM report_records WHERE report_id = $1")
            .bind(&done.report_id)
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap();
    assert_eq!(encoding, "gzip");
    assert!(
        stored.len() * 4 < served.len(),
        "{} stored bytes for {} bytes of records",
        stored.len(),
        served.len()
    );
    let set = |records: String, encoding: &'static str| {
        let db = w.app.db.pool.clone();
        let id = done.report_id.clone();
        async move {
            sqlx::query(
                "UPDATE report_records SET records = $1, encoding = $2 WHERE report_id = $3",
            )
            .bind(records)
            .bind(encoding)
            .bind(id)
            .execute(&db)
            .await
            .unwrap();
        }
    };
    set(String::from_utf8(served.clone()).unwrap(), "identity").await;
    assert_eq!(
        reports::records(&w.app, &carol, &done.report_id)
            .await
            .unwrap(),
        served
    );
    // The same length, one value changed: the digest no longer holds.
    let other = String::from_utf8(served.clone())
        .unwrap()
        .replacen("Acme", "Acmf", 1);
    set(other, "identity").await;
    let e = reports::records(&w.app, &carol, &done.report_id)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::Internal(_)), "{e:?}");
    set("not base64 at all".into(), "gzip").await;
    let e = reports::records(&w.app, &carol, &done.report_id)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::Internal(_)), "{e:?}");
}

#[tokio::test]
async fn members_cannot_subscribe_and_strangers_see_nothing() {
    let w = world().await;
    let e = access::authorize(&w.app, "carol", "acme", vouch::auth::Role::Admin, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::Forbidden { .. }), "{e:?}");
    let e = access::authorize(&w.app, "dave", "acme", vouch::auth::Role::Member, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::NotFound), "{e:?}");
}

/// Applies a batch through the same path as the admin API.
async fn import(w: &World, batch: serde_json::Value) -> Result<vouch::import::Applied, String> {
    let bytes = serde_json::to_vec(&batch).unwrap();
    vouch::service::records::import(&w.app, bytes.into(), None)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_batch_cannot_rewrite_another_services_evidence_and_counts_only_writes() {
    let w = world().await;
    let run = |service: &str, status: &str| {
        serde_json::json!({"backup_runs": [{
            "run_id": "run-shared", "service_id": service, "started_at": "2026-06-01T00:00:00Z",
            "completed_at": "2026-06-01T01:00:00Z", "status": status, "backup_type": "full"}]})
    };
    let acme_service = "svc-acme-orders";
    import(&w, run(acme_service, "succeeded")).await.unwrap();
    // globex's service under acme's run id: refused with its path, nothing changed.
    let err = import(&w, run("svc-globex-crm", "failed"))
        .await
        .unwrap_err();
    assert!(
        err.contains("$.backup_runs[0].run_id") && err.contains(acme_service),
        "{err}"
    );
    // The same service may update its own run.
    import(&w, run(acme_service, "failed")).await.unwrap();

    let event = |org: &str, action: &str| {
        serde_json::json!({"audit_events": [{
            "event_id": "ev-1", "organization_id": org, "at": "2026-06-01T00:00:00Z",
            "actor": "ops", "action": action, "target": "db"}]})
    };
    let first = import(&w, event("acme", "login")).await.unwrap();
    assert_eq!(first.audit_events, 1);
    let replay = import(&w, event("acme", "login")).await.unwrap();
    assert_eq!(
        replay.audit_events, 0,
        "a replayed event is not counted as written"
    );
    let err = import(&w, event("globex", "login")).await.unwrap_err();
    assert!(err.contains("$.audit_events[0].event_id"), "{err}");
    let err = import(&w, event("acme", "logout")).await.unwrap_err();
    assert!(err.contains("other content"), "{err}");
}

/// `vouch keys rotate` registers the new key (retiring the old one as of the
/// next second) before it replaces the key file; a generation that reads the
/// old file in between still signs with it. It failed with 503 before
/// (`rotation_keeps_old_packets_verifiable_and_revocation_ends_them` on
/// PostgreSQL, now and then).
#[tokio::test]
async fn the_old_key_signs_until_its_retirement_takes_effect() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    let old = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
    let new = ed25519_dalek::SigningKey::from_bytes(&[2u8; 32]);
    let t = ts(T0);
    vouch::keys::ensure_active(&db, &old, "key-old", t)
        .await
        .unwrap();
    // The rotation, at t: the new key is active, the old one retired at t + 1.
    vouch::keys::ensure_active(&db, &new, "key-new", t)
        .await
        .unwrap();
    vouch::keys::ensure_active(&db, &old, "key-old", t)
        .await
        .expect("within the second of the rotation the old key still signs");
    let later = Timestamp::from_unix_seconds(t.unix_seconds() + 1).unwrap();
    let e = vouch::keys::ensure_active(&db, &old, "key-old", later)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("was retired"), "{e}");
}
