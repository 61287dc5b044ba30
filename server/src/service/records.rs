//! Platform records: the document packets are evaluated on, and batches in.

use std::net::IpAddr;

use vouch_engine::records::RecordsDocument;
use vouch_engine::Period;

use super::{App, Caller, Result, ServiceError};
use crate::import::{self, Actor, Applied, ImportError};
use crate::store::{self, Db};

/// The records document of the caller's organization for `period`.
pub async fn read(app: &App, caller: &Caller, period: &Period) -> Result<RecordsDocument> {
    let doc = store::snapshot::snapshot(&app.db, &app.zones, &caller.org_id, period)
        .await?
        .ok_or(ServiceError::NotFound)?;
    caller.audit(app, "records.read", &caller.org_id).await?;
    Ok(doc)
}

/// A batch of platform records (the admin API's body), all or nothing.
/// Parsing and password hashing run off the async workers.
pub async fn import(app: &App, body: bytes::Bytes, remote: Option<IpAddr>) -> Result<Applied> {
    let zones = app.zones.clone();
    let batch = tokio::task::spawn_blocking(move || import::parse(&body, &zones))
        .await
        .map_err(ServiceError::internal)?
        .map_err(import_error)?;
    let actor = Actor {
        name: "admin-api".into(),
        remote_addr: remote.map(|ip| ip.to_string()),
    };
    apply(&app.db, batch, &actor, app.now())
        .await
        .map_err(import_error)
}

/// Hashes the batch's passwords off the async workers, then writes it in one
/// transaction ([`store::records::apply`]). The admin API, `vouch import` and
/// the demo all come here.
pub async fn apply(
    db: &Db,
    batch: import::Batch,
    actor: &Actor,
    now: vouch_engine::Timestamp,
) -> Result<Applied, ImportError> {
    let (batch, hashes) = tokio::task::spawn_blocking(move || {
        let hashes = import::password_hashes(&batch);
        (batch, hashes)
    })
    .await
    .map_err(|e| ImportError::Internal(e.into()))?;
    store::records::apply(db, &batch, hashes?, actor, now).await
}

/// The display name of the caller's organization.
pub async fn organization_name(app: &App, caller: &Caller) -> Result<String> {
    store::users::organization_name(&app.db, &caller.org_id)
        .await?
        .ok_or(ServiceError::NotFound)
}

fn import_error(e: ImportError) -> ServiceError {
    match e {
        ImportError::Input(_) | ImportError::Invalid { .. } => {
            ServiceError::InvalidRecords(e.to_string())
        }
        ImportError::Database(e) => e.into(),
        ImportError::Internal(e) => ServiceError::Internal(e),
    }
}
