//! The end of each organization's series of packets of a framework
//! (migration 0013): what the next packet names as its previous.

use super::{Db, WriteTx};

/// Where a series ends, as read before signing the next packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// The last complete packet's canonical_sha256; `None`: no packet yet.
    pub canonical_sha256: Option<String>,
    /// Its report.
    pub report_id: Option<String>,
    /// Whether `series_heads` has the row (else the end was read from the
    /// reports stored before the table, and the first advance inserts it).
    stored: bool,
}

/// The end of `org`'s series of `framework`.
pub async fn end(db: &Db, org: &str, framework: &str) -> Result<End, sqlx::Error> {
    let head: Option<(String, String)> = sqlx::query_as(
        "SELECT canonical_sha256, report_id FROM series_heads WHERE organization_id = $1 AND framework = $2",
    )
    .bind(org)
    .bind(framework)
    .fetch_optional(&db.pool)
    .await?;
    if let Some((sha, report_id)) = head {
        return Ok(End {
            canonical_sha256: Some(sha),
            report_id: Some(report_id),
            stored: true,
        });
    }
    // Reports from before series: the latest complete one is the end.
    let latest: Option<(String, String)> = sqlx::query_as(
        "SELECT signature, report_id FROM reports WHERE organization_id = $1 AND framework = $2 AND status = 'complete' \
         ORDER BY generated_at DESC, report_id DESC LIMIT 1",
    )
    .bind(org)
    .bind(framework)
    .fetch_optional(&db.pool)
    .await?;
    let canonical_sha256 = latest
        .as_ref()
        .map(|(sig, _)| {
            serde_json::from_str::<vouch_engine::signing::Signature>(sig)
                .map(|s| s.canonical_sha256)
                .map_err(|e| sqlx::Error::Decode(e.into()))
        })
        .transpose()?;
    Ok(End {
        canonical_sha256,
        report_id: latest.map(|(_, id)| id),
        stored: false,
    })
}

/// Moves the end of the series from `from` to the packet `canonical_sha256`
/// of report `report_id`; `false` (and nothing written) when the end is no
/// longer `from`: another packet was stored since it was read.
pub async fn advance(
    tx: &mut WriteTx,
    org: &str,
    framework: &str,
    from: &End,
    canonical_sha256: &str,
    report_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = if from.stored {
        sqlx::query(
            "UPDATE series_heads SET canonical_sha256 = $3, report_id = $4 \
             WHERE organization_id = $1 AND framework = $2 AND canonical_sha256 = $5",
        )
        .bind(org)
        .bind(framework)
        .bind(canonical_sha256)
        .bind(report_id)
        .bind(from.canonical_sha256.as_deref())
        .execute(tx.conn())
        .await?
    } else {
        sqlx::query(
            "INSERT INTO series_heads (organization_id, framework, canonical_sha256, report_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (organization_id, framework) DO NOTHING",
        )
        .bind(org)
        .bind(framework)
        .bind(canonical_sha256)
        .bind(report_id)
        .execute(tx.conn())
        .await?
    };
    Ok(done.rows_affected() == 1)
}
