//! The transparency log at 1,000,000 leaves, on SQLite and (with
//! VOUCH_TEST_POSTGRES_URL) on PostgreSQL:
//!   - the cost of appending one packet entry in its own write transaction,
//!     against a floor measured in the same run (the same transaction
//!     inserting one row of the same size into a table of its own), and as a
//!     share of one generation's in-process work (evaluate, canonicalize,
//!     archive, sign: `benches/generate.rs`, measured here too);
//!   - an inclusion and a consistency proof: how long they take to build
//!     from the database, and their size.
//!
//!   cargo bench -p vouch --bench tlog [-- LEAVES [APPENDS]]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use vouch::store::Db;
use vouch_engine::tlog::entry::hex;
use vouch_engine::tlog::merkle::{self, Frontier};
use vouch_engine::tlog::Entry;
use vouch_engine::Timestamp;

fn entry(i: u64, at: Timestamp) -> Entry {
    Entry::Packet {
        report_id: format!("r-{:032x}", i),
        organization_id: "acme".into(),
        framework: "soc2".into(),
        generated_at: at,
        key_id: "key-2026-06-0123abcd".into(),
        canonical_sha256: vouch_engine::signing::sha256_hex(&i.to_le_bytes()),
        logged_at: at,
    }
}

async fn insert_rows(db: &Db, table: &str, rows: &[String]) {
    let mut tx = db.pool.begin().await.unwrap();
    for chunk in rows.chunks(500) {
        sqlx::query(&format!("INSERT INTO {table} VALUES {}", chunk.join(",")))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Writes a log of `n` leaves straight into the tables (what `n` appends
/// would leave there), in batches.
async fn fill(db: &Db, n: u64, at: Timestamp) {
    let mut frontier = Frontier::default();
    let mut leaves = vec![];
    let mut nodes = vec![];
    for i in 0..n {
        let e = entry(i, at);
        let bytes = e.leaf().unwrap();
        let h = merkle::leaf_hash(&bytes);
        // The nodes this leaf completes, from the frontier before it.
        let mut left = frontier.hashes.clone();
        for ((level, idx), hash) in merkle::appended_nodes(i, h, |_| left.pop().unwrap()) {
            nodes.push(format!("({level}, {idx}, '{}')", hex(&hash)));
        }
        frontier.push(h);
        let text = String::from_utf8(bytes).unwrap().replace('\'', "''");
        leaves.push(format!(
            "({i}, '{}', '{text}', '{}', '{}', {})",
            e.subject(),
            hex(&h),
            hex(&frontier.root()),
            at.unix_seconds()
        ));
        if leaves.len() >= 20_000 || i + 1 == n {
            insert_rows(
                db,
                "log_leaves (leaf_index, subject, entry, leaf_hash, root_hash, logged_at)",
                &leaves,
            )
            .await;
            insert_rows(db, "log_nodes (level, node_index, hash)", &nodes).await;
            leaves.clear();
            nodes.clear();
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run(label: &str, db: &Db, leaves: u64, appends: u64, generation_us: f64) {
    let at = Timestamp::from_datetime(chrono::Utc::now());
    let t = Instant::now();
    fill(db, leaves, at).await;
    println!(
        "{label}: {leaves} leaves written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    sqlx::query("CREATE TABLE bench_floor (id BIGINT PRIMARY KEY, entry TEXT NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let mut append = vec![];
    let mut floor = vec![];
    for i in 0..appends {
        let e = entry(leaves + i, at);
        let text = String::from_utf8(e.leaf().unwrap()).unwrap();
        let t = Instant::now();
        let mut tx = db.write().await.unwrap();
        sqlx::query("INSERT INTO bench_floor (id, entry) VALUES ($1, $2)")
            .bind(i as i64)
            .bind(&text)
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        floor.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let mut tx = db.write().await.unwrap();
        vouch::store::log::append(&mut tx, at, |_| e.clone())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        append.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (a, f) = (median(append), median(floor));
    println!(
        "{label}: append at {leaves} leaves: {a:.0} µs per packet (median of {appends}); floor (a one-row write transaction) {f:.0} µs; ratio {:.1}; {:.1}% of a generation's in-process work ({generation_us:.0} µs)",
        a / f,
        100.0 * (a - f) / generation_us
    );
    let size = leaves + appends;
    let mut build = vec![];
    let mut proof = vec![];
    for k in 0..21u64 {
        let index = (k * 7_919_993) % size;
        let t = Instant::now();
        proof = vouch::store::log::with_nodes(db, |src| merkle::inclusion_proof(src, index, size))
            .await
            .unwrap()
            .flatten()
            .unwrap();
        build.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let json: usize = proof.iter().map(|h| hex(h).len() + 3).sum();
    println!(
        "{label}: inclusion proof at {size} leaves: {} hashes (~{json} bytes of JSON), built in {:.0} µs (median of 21)",
        proof.len(),
        median(build)
    );
    let t = Instant::now();
    let c =
        vouch::store::log::with_nodes(db, |src| merkle::consistency_proof(src, size / 2 + 1, size))
            .await
            .unwrap()
            .flatten()
            .unwrap();
    println!(
        "{label}: consistency proof {} -> {size}: {} hashes, built in {:.0} µs",
        size / 2 + 1,
        c.len(),
        t.elapsed().as_secs_f64() * 1e6
    );
}

/// One generation's in-process work on the demo organization, in µs.
async fn generation_us() -> f64 {
    use vouch_engine::packet::assemble_archived;
    use vouch_engine::{attest, FrameworkSet, NoPluginHost, Period};
    let zones = vouch::zones::Catalogue::builtin().unwrap();
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let period = Period::month_ending_at(now);
    let db = Db::connect("sqlite::memory:").await.unwrap();
    vouch::demo::seed(&db, &zones, now).await.unwrap();
    let records = vouch::store::snapshot::snapshot(&db, &zones, "acme", &period)
        .await
        .unwrap()
        .unwrap();
    let frameworks = FrameworkSet::builtin().unwrap();
    let soc2 = frameworks.get("soc2").unwrap();
    let signer = vouch_engine::signing::PacketSigner::new(
        ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]),
        "bench".into(),
    );
    let mut times = vec![];
    for _ in 0..201 {
        let t = Instant::now();
        let (packet, archived) =
            assemble_archived(soc2, &records, now, Some(period), &NoPluginHost).unwrap();
        std::hint::black_box(vouch::store::reports::Archive::compress(&archived).unwrap());
        let signed = signer.sign(packet).unwrap();
        for p in [attest::Predicate::Vouch, attest::Predicate::Trestle] {
            let st = attest::statement(&signed, p).unwrap();
            std::hint::black_box(attest::envelope(&signer, &st));
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    median(times)
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let leaves: u64 = args.next().map_or(1_000_000, |s| s.parse().unwrap());
    let appends: u64 = args.next().map_or(1_000, |s| s.parse().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let generation = generation_us().await;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&vouch::store::sqlite_url(dir.path()))
            .await
            .unwrap();
        run("SQLite", &db, leaves, appends, generation).await;
        db.close().await;
        if let Ok(base) = std::env::var("VOUCH_TEST_POSTGRES_URL") {
            let name = format!("vouch_bench_{}", uuid::Uuid::new_v4().simple());
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
            let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
            let db = Db::connect(&url).await.unwrap();
            run("PostgreSQL", &db, leaves, appends, generation).await;
            db.close().await;
            let _ = sqlx::Executor::execute(
                &mut c,
                format!("DROP DATABASE {name} WITH (FORCE)").as_str(),
            )
            .await;
        }
    });
}
