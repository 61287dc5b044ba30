//! Subscriptions: which frameworks an organization pays for.

use super::{Db, WriteTx};

/// One stored subscription: framework, subscribed_at, cancelled_at (unix seconds).
pub type Row = (String, i64, Option<i64>);

pub async fn of(db: &Db, org: &str) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(
        "SELECT framework, subscribed_at, cancelled_at FROM subscriptions WHERE organization_id = $1",
    )
    .bind(org)
    .fetch_all(&db.pool)
    .await
}

/// Subscribes (a cancelled subscription is reinstated); whether anything changed.
pub async fn subscribe(
    tx: &mut WriteTx,
    org: &str,
    framework: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO subscriptions (organization_id, framework, subscribed_at, cancelled_at) VALUES ($1, $2, $3, NULL) \
         ON CONFLICT (organization_id, framework) DO UPDATE SET subscribed_at = excluded.subscribed_at, cancelled_at = NULL \
         WHERE subscriptions.cancelled_at IS NOT NULL",
    )
    .bind(org)
    .bind(framework)
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Cancels an active subscription; whether anything changed.
pub async fn cancel(
    tx: &mut WriteTx,
    org: &str,
    framework: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE subscriptions SET cancelled_at = $3 WHERE organization_id = $1 AND framework = $2 AND cancelled_at IS NULL",
    )
    .bind(org)
    .bind(framework)
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn is_active(db: &Db, org: &str, framework: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "SELECT 1 FROM subscriptions WHERE organization_id = $1 AND framework = $2 AND cancelled_at IS NULL",
    )
    .bind(org)
    .bind(framework)
    .fetch_optional(&db.pool)
    .await?
    .is_some())
}
