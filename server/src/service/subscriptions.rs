//! Subscriptions: which frameworks an organization pays for (402 without).

use schemars::JsonSchema;
use serde::Serialize;
use vouch_engine::Timestamp;

use super::{App, Caller, Result, ServiceError};
use crate::store::{audit, subscriptions};

/// A framework and the organization's subscription to it.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Subscription")]
pub struct SubscriptionView {
    pub framework: String,
    pub name: String,
    pub attests: String,
    pub monthly_price_eur: u32,
    pub enabled: bool,
    pub subscribed_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
}

/// Every framework, with the organization's subscription state.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<SubscriptionView>> {
    let rows = subscriptions::of(&app.db, &caller.org_id).await?;
    Ok(app
        .frameworks
        .iter()
        .map(|fw| {
            let row = rows.iter().find(|(f, _, _)| *f == fw.framework);
            let subscribed_at = row.and_then(|r| Timestamp::from_unix_seconds(r.1));
            let cancelled_at = row.and_then(|r| r.2).and_then(Timestamp::from_unix_seconds);
            SubscriptionView {
                framework: fw.framework.clone(),
                name: fw.name.clone(),
                attests: fw.attests.clone(),
                monthly_price_eur: fw.monthly_price_eur,
                enabled: subscribed_at.is_some() && cancelled_at.is_none(),
                subscribed_at,
                cancelled_at,
            }
        })
        .collect())
}

/// Subscribes (idempotent; a cancelled subscription is reinstated) or
/// cancels; an actual change is audited in the same transaction. Answers the
/// subscription as it now stands.
pub async fn set(
    app: &App,
    caller: &Caller,
    framework: &str,
    subscribe: bool,
) -> Result<SubscriptionView> {
    app.framework(framework)?;
    let now = app.now();
    let mut tx = app.db.write().await?;
    let (changed, action) = if subscribe {
        (
            subscriptions::subscribe(&mut tx, &caller.org_id, framework, now.unix_seconds())
                .await?,
            "subscription.subscribe",
        )
    } else {
        (
            subscriptions::cancel(&mut tx, &caller.org_id, framework, now.unix_seconds()).await?,
            "subscription.cancel",
        )
    };
    if changed {
        audit::append_tx(&mut tx, &caller.entry(now, action, framework)).await?;
    }
    tx.commit().await?;
    list(app, caller)
        .await?
        .into_iter()
        .find(|s| s.framework == framework)
        .ok_or(ServiceError::NotFound)
}
