//! Reports: the signed packets (or the record of a failed generation), their
//! Idempotency-Keys, and the rendered PDFs.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sqlx::Row;
use vouch_engine::tlog::Entry;
use vouch_engine::{Period, Timestamp};

use super::{Db, WriteTx};

/// What became of a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Complete,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Status, sqlx::Error> {
        match s {
            "complete" => Ok(Status::Complete),
            "failed" => Ok(Status::Failed),
            other => Err(sqlx::Error::Decode(
                format!("unknown report status `{other}`").into(),
            )),
        }
    }
}

/// The result stored with a new report.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The packet's canonical bytes, its signature (JSON), and the records
    /// document it was evaluated on, compressed ([`Archive::compress`]).
    Complete {
        canonical: &'a str,
        /// The signature's canonical_sha256 (what the log records).
        canonical_sha256: &'a str,
        signature: &'a str,
        records: &'a Archive,
        /// The DSSE envelopes: vouch's predicate, trestle's.
        envelopes: (&'a str, &'a str),
        /// The RFC 3161 response (base64 DER) and the authority's time.
        timestamp: Option<(&'a str, i64)>,
    },
    /// What members are told about the failure (never the internal cause).
    Failed { reason: &'a str },
}

/// A report to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewReport<'a> {
    pub report_id: &'a str,
    pub organization_id: &'a str,
    pub framework: &'a str,
    pub period: &'a Period,
    pub generated_at: i64,
    pub key_id: Option<&'a str>,
    pub outcome: Outcome<'a>,
    /// Only a complete report holds its Idempotency-Key: a failed attempt
    /// never pins the key, so a retry after the fault is fixed succeeds.
    pub idempotency_key: Option<&'a str>,
    pub request_digest: &'a str,
    pub created_by: &'a str,
    /// The canonical_sha256 the packet names as the one before it.
    pub previous: Option<&'a str>,
    /// `on_demand` or `scheduled`.
    pub trigger: &'a str,
    /// The packet's `valid_until`, Unix seconds.
    pub valid_until: Option<i64>,
}

/// Stores a report; a complete one with its attestations, records, render
/// job and transparency-log entry, as the last statement (its caller
/// commits right after).
pub async fn insert(tx: &mut WriteTx, r: &NewReport<'_>) -> Result<(), sqlx::Error> {
    let (status, failure, canonical, signature, key) = match r.outcome {
        Outcome::Complete {
            canonical,
            signature,
            ..
        } => (
            Status::Complete,
            None,
            Some(canonical),
            Some(signature),
            r.idempotency_key,
        ),
        Outcome::Failed { reason } => (Status::Failed, Some(reason), None, None, None),
    };
    sqlx::query(
        "INSERT INTO reports (report_id, organization_id, framework, schema_version, period_start, period_end, generated_at, key_id, \
         status, failure_reason, canonical, signature, idempotency_key, request_digest, pdf_available, created_by, \
         previous_sha256, trigger_kind, valid_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, $15, $16, $17, $18)",
    )
    .bind(r.report_id)
    .bind(r.organization_id)
    .bind(r.framework)
    .bind(vouch_engine::packet::SCHEMA_VERSION)
    .bind(r.period.start.unix_seconds())
    .bind(r.period.end.unix_seconds())
    .bind(r.generated_at)
    .bind(r.key_id)
    .bind(status.as_str())
    .bind(failure)
    .bind(canonical)
    .bind(signature)
    .bind(key)
    .bind(r.request_digest)
    .bind(r.created_by)
    .bind(r.previous)
    .bind(r.trigger)
    .bind(r.valid_until)
    .execute(tx.conn())
    .await?;
    if let Outcome::Complete {
        records,
        envelopes,
        canonical_sha256,
        timestamp,
        ..
    } = r.outcome
    {
        if let Some((response, at)) = timestamp {
            sqlx::query("INSERT INTO report_timestamps (report_id, response, authority_time) VALUES ($1, $2, $3)")
                .bind(r.report_id)
                .bind(response)
                .bind(at)
                .execute(tx.conn())
                .await?;
        }
        sqlx::query(
            "INSERT INTO report_attestations (report_id, envelope, trestle_envelope) VALUES ($1, $2, $3)",
        )
        .bind(r.report_id)
        .bind(envelopes.0)
        .bind(envelopes.1)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "INSERT INTO report_records (report_id, records, encoding) VALUES ($1, $2, $3)",
        )
        .bind(r.report_id)
        .bind(&records.text)
        .bind(records.encoding)
        .execute(tx.conn())
        .await?;
        // Its PDF, rendered by the queue's workers (store::render).
        super::render::enqueue(tx, r.report_id, r.generated_at.saturating_mul(1000)).await?;
        // Last, as the log's sequencer lock is held until the commit.
        let generated_at = Timestamp::from_unix_seconds(r.generated_at)
            .ok_or_else(|| sqlx::Error::Protocol("generated_at out of range".into()))?;
        super::log::append(tx, generated_at, |logged_at| Entry::Packet {
            report_id: r.report_id.to_owned(),
            organization_id: r.organization_id.to_owned(),
            framework: r.framework.to_owned(),
            generated_at,
            key_id: r.key_id.unwrap_or_default().to_owned(),
            canonical_sha256: canonical_sha256.to_owned(),
            logged_at,
        })
        .await?;
    }
    Ok(())
}

/// The stored RFC 3161 response (DER) of a report of `org`, if it has one.
pub async fn timestamp(db: &Db, org: &str, report: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let text: Option<(String,)> = sqlx::query_as(
        "SELECT t.response FROM report_timestamps t JOIN reports r ON r.report_id = t.report_id \
         WHERE r.organization_id = $1 AND r.report_id = $2",
    )
    .bind(org)
    .bind(report)
    .fetch_optional(&db.pool)
    .await?;
    text.map(|(t,)| B64.decode(t).map_err(|e| sqlx::Error::Decode(e.into())))
        .transpose()
}

/// The stored DSSE envelope of a report of `org` with `predicate`.
pub async fn envelope(
    db: &Db,
    org: &str,
    report: &str,
    predicate: vouch_engine::attest::Predicate,
) -> Result<Option<String>, sqlx::Error> {
    let column = match predicate {
        vouch_engine::attest::Predicate::Vouch => "envelope",
        vouch_engine::attest::Predicate::Trestle => "trestle_envelope",
    };
    Ok(sqlx::query_as::<_, (String,)>(&format!(
        "SELECT ra.{column} FROM report_attestations ra JOIN reports r ON r.report_id = ra.report_id \
         WHERE r.organization_id = $1 AND r.report_id = $2"
    ))
    .bind(org)
    .bind(report)
    .fetch_optional(&db.pool)
    .await?
    .map(|(text,)| text))
}

/// A records document as `report_records` holds it (migration 0008).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    encoding: &'static str,
    text: String,
}

const GZIP: &str = "gzip";
const IDENTITY: &str = "identity";

impl Archive {
    /// The canonical bytes, gzip-compressed and base64-encoded. The gzip
    /// header carries no name and no time, so equal records compress to
    /// equal text.
    pub fn compress(canonical: &[u8]) -> std::io::Result<Archive> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(canonical)?;
        Ok(Archive {
            encoding: GZIP,
            text: B64.encode(gz.finish()?),
        })
    }

    /// The stored size in bytes.
    pub fn stored_len(&self) -> usize {
        self.text.len()
    }

    /// The canonical bytes back, as they were before [`Archive::compress`].
    pub fn decompress(&self) -> Result<Vec<u8>, sqlx::Error> {
        use std::io::Read;
        let corrupt = |what: String| sqlx::Error::Decode(what.into());
        match self.encoding {
            IDENTITY => Ok(self.text.clone().into_bytes()),
            _ => {
                let gz = B64
                    .decode(&self.text)
                    .map_err(|e| corrupt(format!("archived records are not base64: {e}")))?;
                let mut out = Vec::with_capacity(gz.len() * 8);
                flate2::read::GzDecoder::new(gz.as_slice())
                    .read_to_end(&mut out)
                    .map_err(|e| corrupt(format!("archived records are not gzip: {e}")))?;
                Ok(out)
            }
        }
    }
}

/// The archived records document of a report of `org`.
pub async fn records(db: &Db, org: &str, report: &str) -> Result<Option<Archive>, sqlx::Error> {
    let row = sqlx::query_as::<_, (String, String)>(
        "SELECT rr.records, rr.encoding FROM report_records rr JOIN reports r ON r.report_id = rr.report_id \
         WHERE r.organization_id = $1 AND r.report_id = $2",
    )
    .bind(org)
    .bind(report)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|(text, encoding)| {
        let encoding = match encoding.as_str() {
            GZIP => GZIP,
            IDENTITY => IDENTITY,
            other => {
                return Err(sqlx::Error::Decode(
                    format!("unknown records encoding `{other}`").into(),
                ))
            }
        };
        Ok(Archive { encoding, text })
    })
    .transpose()
}

/// A stored report as generation and download need it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub report_id: String,
    pub framework: String,
    pub period_start: i64,
    pub period_end: i64,
    pub status: Status,
    pub canonical: Option<String>,
    pub signature: Option<String>,
    pub request_digest: Option<String>,
}

const STORED: &str = "SELECT report_id, framework, period_start, period_end, status, canonical, signature, request_digest FROM reports";

fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        report_id: row.try_get("report_id")?,
        framework: row.try_get("framework")?,
        period_start: row.try_get("period_start")?,
        period_end: row.try_get("period_end")?,
        status: Status::parse(&row.try_get::<String, _>("status")?)?,
        canonical: row.try_get("canonical")?,
        signature: row.try_get("signature")?,
        request_digest: row.try_get("request_digest")?,
    })
}

/// The complete report an Idempotency-Key produced in `org`, if any.
pub async fn by_idempotency_key(
    db: &Db,
    org: &str,
    key: &str,
) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query(&format!(
        "{STORED} WHERE organization_id = $1 AND idempotency_key = $2"
    ))
    .bind(org)
    .bind(key)
    .fetch_optional(&db.pool)
    .await?
    .as_ref()
    .map(stored)
    .transpose()
}

/// Report `report` of `org` (`None` also when it is another organization's).
pub async fn get(db: &Db, org: &str, report: &str) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query(&format!(
        "{STORED} WHERE organization_id = $1 AND report_id = $2"
    ))
    .bind(org)
    .bind(report)
    .fetch_optional(&db.pool)
    .await?
    .as_ref()
    .map(stored)
    .transpose()
}

/// Report `report` and its organization, for the render workers (which
/// act for no caller).
pub async fn with_org(db: &Db, report: &str) -> Result<Option<(String, Stored)>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT organization_id, {} WHERE report_id = $1",
        STORED.trim_start_matches("SELECT ")
    ))
    .bind(report)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| Ok((r.try_get("organization_id")?, stored(&r)?)))
        .transpose()
}

/// One line of the report listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub report_id: String,
    pub framework: String,
    pub schema_version: String,
    pub period_start: i64,
    pub period_end: i64,
    pub generated_at: i64,
    pub key_id: Option<String>,
    pub status: Status,
    pub failure_reason: Option<String>,
    pub pdf_available: bool,
    /// The state of its render job (`store::render`), if it has one.
    pub render_state: Option<String>,
    pub render_error: Option<String>,
    /// `on_demand` or `scheduled`.
    pub trigger: String,
    pub valid_until: Option<i64>,
    /// The canonical_sha256 the packet names as the one before it.
    pub previous_sha256: Option<String>,
}

/// Reports of `org`, newest first, strictly after the `(generated_at,
/// report_id)` position `after`; at most `limit`.
pub async fn list(
    db: &Db,
    org: &str,
    framework: Option<&str>,
    after: Option<(i64, &str)>,
    limit: i64,
    scopes: Option<&[crate::service::access::Scope]>,
) -> Result<Vec<Listed>, sqlx::Error> {
    let (after_t, after_id) = after.unwrap_or((i64::MAX, ""));
    // An auditor's listing: only the reports of its grants (an empty list: none).
    let scoped = scopes.map(|list| {
        let clauses: Vec<String> = (0..list.len())
            .map(|i| {
                let n = 6 + 3 * i;
                format!(
                    "(r.framework = ${n} AND r.period_start >= ${} AND r.period_end <= ${})",
                    n + 1,
                    n + 2
                )
            })
            .collect();
        if clauses.is_empty() {
            " AND 1 = 0".to_owned()
        } else {
            format!(" AND ({})", clauses.join(" OR "))
        }
    });
    let sql = format!(
        "SELECT r.report_id, r.framework, r.schema_version, r.period_start, r.period_end, r.generated_at, r.key_id, r.status, r.failure_reason, r.pdf_available, \
         j.state AS render_state, j.last_error AS render_error, r.trigger_kind, r.valid_until, r.previous_sha256 \
         FROM reports r LEFT JOIN render_jobs j ON j.report_id = r.report_id \
         WHERE r.organization_id = $1 AND ($2 = '' OR r.framework = $2) \
         AND (r.generated_at < $3 OR (r.generated_at = $3 AND ($4 = '' OR r.report_id < $4))){} \
         ORDER BY r.generated_at DESC, r.report_id DESC LIMIT $5",
        scoped.unwrap_or_default()
    );
    let mut q = sqlx::query(&sql)
        .bind(org)
        .bind(framework.unwrap_or_default())
        .bind(after_t)
        .bind(after_id)
        .bind(limit);
    for s in scopes.unwrap_or_default() {
        q = q
            .bind(s.framework.as_str())
            .bind(s.period_start.unwrap_or(i64::MIN))
            .bind(s.period_end.unwrap_or(i64::MAX));
    }
    let rows = q.fetch_all(&db.pool).await?;
    rows.iter()
        .map(|r| {
            Ok(Listed {
                report_id: r.try_get("report_id")?,
                framework: r.try_get("framework")?,
                schema_version: r.try_get("schema_version")?,
                period_start: r.try_get("period_start")?,
                period_end: r.try_get("period_end")?,
                generated_at: r.try_get("generated_at")?,
                key_id: r.try_get("key_id")?,
                status: Status::parse(&r.try_get::<String, _>("status")?)?,
                failure_reason: r.try_get("failure_reason")?,
                pdf_available: r.try_get::<i64, _>("pdf_available")? != 0,
                render_state: r.try_get("render_state")?,
                render_error: r.try_get("render_error")?,
                trigger: r.try_get("trigger_kind")?,
                valid_until: r.try_get("valid_until")?,
                previous_sha256: r.try_get("previous_sha256")?,
            })
        })
        .collect()
}

/// The stored PDF of a report (base64), if it was rendered.
pub async fn pdf(db: &Db, report: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT pdf_base64 FROM report_pdfs WHERE report_id = $1")
            .bind(report)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|r| r.0))
}

/// Stores a rendered PDF in `tx` (the first one stored wins) and marks it available.
pub async fn store_pdf_in(
    tx: &mut WriteTx,
    report: &str,
    pdf_base64: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO report_pdfs (report_id, pdf_base64, rendered_at) VALUES ($1, $2, $3) ON CONFLICT (report_id) DO NOTHING")
        .bind(report)
        .bind(pdf_base64)
        .bind(at)
        .execute(tx.conn())
        .await?;
    sqlx::query("UPDATE reports SET pdf_available = 1 WHERE report_id = $1")
        .bind(report)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Frees an Idempotency-Key held by a failed report (stored by an older
/// version, which pinned keys to failures).
pub async fn release_failed_key(tx: &mut WriteTx, org: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reports SET idempotency_key = NULL WHERE organization_id = $1 AND idempotency_key = $2 AND status = 'failed'",
    )
    .bind(org)
    .bind(key)
    .execute(tx.conn())
    .await?;
    Ok(())
}
