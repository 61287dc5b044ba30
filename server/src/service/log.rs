//! The transparency log, as the server runs it: its key and identity, the
//! entries appended for packets and key events, and the checkpoints and
//! proofs it serves (see `store::log` for the tables).
//!
//! Checkpoints are signed when asked for, from the root the database holds
//! for that size; Ed25519 is deterministic, so every server on the database
//! serves the same bytes for the same size.

use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use vouch_engine::keys::LogKey;
use vouch_engine::tlog::entry::{hex, key_subject};
use vouch_engine::tlog::merkle;
use vouch_engine::tlog::{Checkpoint, Entry, InclusionProof, KeyEvent, NoteSigner, NoteVerifier};
use vouch_engine::Timestamp;

use super::{Result, ServiceError};
use crate::store::{self, Db};

/// Entries served by one `entries` request at most.
pub const MAX_ENTRIES: u64 = 1000;

/// The log of this database, with the key that signs its checkpoints.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    signer: NoteSigner,
}

impl TransparencyLog {
    /// The log of `origin` (default `vouch-log/<16 hex of the key's
    /// SHA-256>`), with the log key from `key_file`, or (without one) the key kept in the
    /// database, created on first start and shared by every server on it.
    /// The first server registers the log's origin and public key; a server
    /// with another key or another origin refuses to start.
    pub async fn open(
        db: &Db,
        key_file: Option<&Path>,
        origin: Option<&str>,
        now: Timestamp,
    ) -> anyhow::Result<TransparencyLog> {
        let key = match key_file {
            Some(path) => {
                crate::keys::load_key_file(path, now)
                    .with_context(|| format!("cannot use the log key file {}", path.display()))?
                    .0
            }
            None => {
                let fresh = SigningKey::generate(&mut rand_core::OsRng);
                let seed =
                    store::users::setting_or_insert(db, "log_key", &B64.encode(fresh.to_bytes()))
                        .await?;
                let raw: [u8; 32] = B64
                    .decode(seed)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .context("the log key kept in the database is not a 32-byte Ed25519 seed")?;
                SigningKey::from_bytes(&raw)
            }
        };
        let public = B64.encode(key.verifying_key().as_bytes());
        // Unique to the key unless the operator names the log (its host).
        let default_origin = format!(
            "vouch-log/{}",
            &vouch_engine::signing::sha256_hex(key.verifying_key().as_bytes())[..16]
        );
        let wanted = origin.unwrap_or(&default_origin);
        let (stored_origin, stored_key) = match store::log::identity(db).await? {
            Some(id) => id,
            None => store::log::register_identity(db, wanted, &public, now.unix_seconds()).await?,
        };
        if stored_key != public {
            bail!(
                "this database's transparency log is signed by another key ({stored_key}); \
                 give every server the same VOUCH_LOG_KEY_FILE, or none (the key kept in the database)"
            );
        }
        if origin.is_some_and(|o| o != stored_origin) {
            bail!("this database's transparency log has the origin `{stored_origin}`, not `{wanted}`; a log's origin never changes");
        }
        let signer = NoteSigner::new(&stored_origin, key).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(TransparencyLog { signer })
    }

    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    /// The log key as the keys document publishes it.
    pub fn published(&self) -> LogKey {
        let v = self.verifier();
        LogKey {
            origin: self.origin().to_owned(),
            vkey: v.to_vkey(),
            public_key: B64.encode(v.key().as_bytes()),
        }
    }

    fn sign(&self, size: u64, root: merkle::Hash) -> String {
        Checkpoint {
            origin: self.origin().to_owned(),
            size,
            root,
        }
        .sign(&self.signer)
    }

    /// The signed checkpoint of the log now.
    pub async fn checkpoint(&self, db: &Db) -> Result<String> {
        let (size, root) = store::log::head(db).await?;
        Ok(self.sign(size, root))
    }

    /// The inclusion proof of the entry recording `subject`, against the
    /// log now; `None` when the log holds no such entry.
    pub async fn inclusion(&self, db: &Db, subject: &str) -> Result<Option<InclusionProof>> {
        let Some(leaf) = store::log::leaf_of(db, subject).await? else {
            return Ok(None);
        };
        let (size, root) = store::log::head(db).await?;
        let hashes = store::log::with_nodes(db, |src| {
            merkle::inclusion_proof(src, leaf.leaf_index, size)
        })
        .await?
        .flatten()
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!(
                "the log's nodes for leaf {} are missing",
                leaf.leaf_index
            ))
        })?;
        let entry =
            serde_json::value::RawValue::from_string(leaf.entry).map_err(ServiceError::internal)?;
        Ok(Some(InclusionProof {
            entry,
            leaf_index: leaf.leaf_index,
            tree_size: size,
            leaf_hash: hex(&leaf.leaf_hash),
            hashes: hashes.iter().map(hex).collect(),
            checkpoint: self.sign(size, root),
        }))
    }

    /// The consistency proof between sizes `first` and `second` (default:
    /// the log's size now).
    pub async fn consistency(
        &self,
        db: &Db,
        first: u64,
        second: Option<u64>,
    ) -> Result<Consistency> {
        let (size, _) = store::log::head(db).await?;
        let second = second.unwrap_or(size);
        if first > second || second > size {
            return Err(ServiceError::NoSuchTreeSize(format!(
                "no consistency proof from {first} to {second} entries: it needs first <= second <= {size} (the log's size)"
            )));
        }
        let hashes = if first == 0 {
            vec![]
        } else {
            store::log::with_nodes(db, |src| merkle::consistency_proof(src, first, second))
                .await?
                .flatten()
                .ok_or_else(|| {
                    ServiceError::internal(anyhow::anyhow!(
                        "the log's nodes up to {second} are missing"
                    ))
                })?
        };
        Ok(Consistency {
            first,
            second,
            hashes: hashes.iter().map(hex).collect(),
        })
    }

    /// Entries `start..end` (at most [`MAX_ENTRIES`]) of the log.
    pub async fn entries(&self, db: &Db, start: u64, end: Option<u64>) -> Result<Entries> {
        let (size, _) = store::log::head(db).await?;
        // A page beyond the log is empty: a monitor polling ahead gets nothing.
        let end = end
            .unwrap_or(size)
            .min(size)
            .min(start.saturating_add(MAX_ENTRIES));
        let mut entries = vec![];
        for leaf in store::log::leaves(db, start, end).await? {
            entries.push(LeafEntry {
                leaf_index: leaf.leaf_index,
                entry: serde_json::value::RawValue::from_string(leaf.entry)
                    .map_err(ServiceError::internal)?,
            });
        }
        Ok(Entries {
            tree_size: size,
            entries,
        })
    }
}

/// A consistency proof: the tree of `first` leaves is a prefix of the tree
/// of `second` leaves (RFC 6962 §2.1.2).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Consistency {
    pub first: u64,
    pub second: u64,
    /// Lowercase hex.
    pub hashes: Vec<String>,
}

/// A page of the log's entries.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entries {
    /// The log's size when the page was read.
    pub tree_size: u64,
    pub entries: Vec<LeafEntry>,
}

/// One entry and its index; the leaf is the entry's bytes as served.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeafEntry {
    pub leaf_index: u64,
    #[schemars(with = "serde_json::Value")]
    pub entry: Box<serde_json::value::RawValue>,
}

/// Appends what a database migrated from before the log holds and the log
/// does not: complete packets (oldest first) and the key history. Their
/// entries are logged now, so they carry no earlier time than this. Returns
/// how many entries were appended. Safe with several servers starting at
/// once: a subject is logged once (the other server's append wins).
pub async fn catch_up(db: &Db, now: Timestamp) -> anyhow::Result<usize> {
    let mut appended = 0;
    for r in store::log::unlogged_packets(db).await? {
        let Some(generated_at) = Timestamp::from_unix_seconds(r.generated_at) else {
            continue;
        };
        let signature: vouch_engine::signing::Signature = serde_json::from_str(&r.signature)?;
        let mut tx = db.write().await?;
        let done = store::log::append(&mut tx, now, |logged_at| Entry::Packet {
            report_id: r.report_id.clone(),
            organization_id: r.organization_id.clone(),
            framework: r.framework.clone(),
            generated_at,
            key_id: signature.key_id.clone(),
            canonical_sha256: signature.canonical_sha256.clone(),
            logged_at,
        })
        .await;
        appended += commit_unless_logged(tx, done).await?;
    }
    for k in store::keys::history(db).await? {
        let mut events = vec![(KeyEvent::Registered, k.valid_from, None, None)];
        if let Some(r) = k.retired_at.filter(|r| Some(*r) != k.revoked_at) {
            events.push((KeyEvent::Retired, r, None, None));
        }
        if let Some(r) = k.revoked_at {
            events.push((
                KeyEvent::Revoked,
                r,
                k.compromised_at,
                k.revocation_reason.clone(),
            ));
        }
        for (event, at, compromised, reason) in events {
            // A key's registration is logged as `registered` or `rotated`.
            let logged_as: &[KeyEvent] = match event {
                KeyEvent::Registered => &[KeyEvent::Registered, KeyEvent::Rotated],
                _ => &[event],
            };
            let mut known = false;
            for e in logged_as {
                known |= store::log::leaf_of(db, &key_subject(&k.key_id, *e))
                    .await?
                    .is_some();
            }
            if known {
                continue;
            }
            let (Some(at), compromised) = (
                Timestamp::from_unix_seconds(at),
                compromised.and_then(Timestamp::from_unix_seconds),
            ) else {
                continue;
            };
            let mut tx = db.write().await?;
            let done = store::log::append(&mut tx, now, |logged_at| Entry::Key {
                event,
                key_id: k.key_id.clone(),
                public_key: k.public_key.clone(),
                at,
                compromised_at: compromised,
                reason: reason.clone(),
                logged_at,
            })
            .await;
            appended += commit_unless_logged(tx, done).await?;
        }
    }
    Ok(appended)
}

/// Commits an append; 0 when another server logged the same subject first.
async fn commit_unless_logged(
    tx: store::WriteTx,
    done: Result<store::log::Appended, sqlx::Error>,
) -> anyhow::Result<usize> {
    match done {
        Ok(_) => {
            tx.commit().await?;
            Ok(1)
        }
        Err(e) if store::is_unique_violation(&e) => Ok(0),
        Err(e) => Err(e.into()),
    }
}
