//! `vouch log verify`: a monitor of a vouch server's transparency log.
//!
//! It checks the checkpoint's signature, then (with the state of its last
//! run) that the log only grew: the new checkpoint's tree extends the one it
//! saw (a consistency proof), and every entry appended since hashes, with
//! the compact range it kept, to the new root. Without state it reads every
//! entry. A log that shrank, forked or whose entries do not make its root is
//! a negative answer (exit 1); the state is then left as it was.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::Args;
use serde::{Deserialize, Serialize};
use vouch_engine::canonical::is_canonical;
use vouch_engine::tlog::entry::{from_hex, hashes_from_hex, hex};
use vouch_engine::tlog::merkle::{leaf_hash, verify_consistency, Frontier};
use vouch_engine::tlog::{Checkpoint, Entry, NoteVerifier};
use vouch_engine::Timestamp;

use super::fetch;
use crate::files::{read_capped, write_atomic};
use crate::service::log::{Consistency, Entries};
use crate::Failure;

#[derive(Args, Debug)]
pub struct LogVerifyArgs {
    /// The server's base URL, e.g. https://vouch.example.com
    #[arg(long, value_name = "URL")]
    url: String,
    /// Where the monitor keeps what it saw (origin, key, size, root, compact
    /// range); read if present, written after a successful run.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// The log's verifier key (`origin+keyid+key`) from a source you trust
    /// [default: the one in the state, else the server's keys document]
    #[arg(long, value_name = "VKEY")]
    log_key: Option<String>,
}

/// What a monitor remembers between runs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    vkey: String,
    tree_size: u64,
    /// Lowercase hex.
    root: String,
    /// The compact range of the tree: one hash per set bit of its size.
    frontier: Vec<String>,
    /// The time of the last entry, so that logged times never go back.
    last_logged_at: Option<Timestamp>,
}

const MAX_DOC: u64 = 16 * 1024 * 1024;

pub fn log_verify(a: LogVerifyArgs) -> Result<(), Failure> {
    let base = a.url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Failure::input(anyhow!(
            "--url must be an http:// or https:// URL"
        )));
    }
    let state = a
        .state
        .as_deref()
        .filter(|p| p.exists())
        .map(read_state)
        .transpose()?;
    let (vkey, trust) = match (&a.log_key, &state) {
        (Some(k), _) => (k.clone(), "pinned with --log-key"),
        (None, Some(s)) => (s.vkey.clone(), "from the state file"),
        (None, None) => {
            let keys =
                super::offline::load_keys(&format!("{base}/.well-known/compliance-signing-keys"))?;
            let log = keys.log.ok_or_else(|| {
                Failure::input(anyhow!("the server's keys document publishes no log key"))
            })?;
            (
                log.vkey,
                "from the server's keys document (trusted on first use: pin it with --log-key)",
            )
        }
    };
    let verifier = NoteVerifier::parse(&vkey).map_err(|e| Failure::input(anyhow!("{e}")))?;
    if let Some(s) = &state {
        if s.vkey != vkey {
            return Err(Failure::negative(anyhow!(
                "the log key is not the one the state file saw ({}); a log never changes its key",
                s.vkey
            )));
        }
    }
    let note = fetch(
        &format!("{base}/.well-known/vouch-log/checkpoint"),
        64 * 1024,
        "the checkpoint",
    )?;
    let note = String::from_utf8(note)
        .map_err(|_| Failure::input(anyhow!("the checkpoint is not UTF-8")))?;
    let checkpoint = Checkpoint::open(&note, &verifier)
        .map_err(|e| Failure::negative(anyhow!("the checkpoint does not verify: {e}")))?;

    let (mut frontier, mut last_at) = match &state {
        None => (Frontier::default(), None),
        Some(s) => {
            let old_root = from_hex(&s.root)
                .ok_or_else(|| Failure::input(anyhow!("the state's root is not hex")))?;
            if checkpoint.size < s.tree_size {
                return Err(Failure::negative(anyhow!(
                    "the log shrank: it had {} entries, its checkpoint now says {}",
                    s.tree_size,
                    checkpoint.size
                )));
            }
            let proof: Consistency = serde_json::from_slice(&fetch(
                &format!(
                    "{base}/.well-known/vouch-log/consistency?first={}&second={}",
                    s.tree_size, checkpoint.size
                ),
                MAX_DOC,
                "a consistency proof",
            )?)
            .context("the consistency proof is malformed")?;
            let hashes = hashes_from_hex(&proof.hashes)
                .map_err(|e| anyhow!("the consistency proof: {e}"))?;
            verify_consistency(s.tree_size, checkpoint.size, &old_root, &checkpoint.root, &hashes).map_err(|e| {
                Failure::negative(anyhow!(
                    "the log forked: its tree of {} entries does not extend the tree of {} you saw ({e})",
                    checkpoint.size,
                    s.tree_size
                ))
            })?;
            let hashes =
                hashes_from_hex(&s.frontier).map_err(|e| anyhow!("the state's frontier: {e}"))?;
            let f = Frontier {
                size: s.tree_size,
                hashes,
            };
            if !f.is_well_formed() || f.root() != old_root {
                return Err(Failure::input(anyhow!(
                    "the state file is inconsistent (its frontier is not its root)"
                )));
            }
            (f, s.last_logged_at)
        }
    };
    let seen = frontier.size;
    while frontier.size < checkpoint.size {
        let page: Entries = serde_json::from_slice(&fetch(
            &format!(
                "{base}/.well-known/vouch-log/entries?start={}&end={}",
                frontier.size, checkpoint.size
            ),
            MAX_DOC,
            "the log's entries",
        )?)
        .context("the log's entries are malformed")?;
        if page.entries.is_empty() {
            return Err(Failure::negative(anyhow!(
                "the log serves no entry {} though its checkpoint has {}",
                frontier.size,
                checkpoint.size
            )));
        }
        for e in page.entries {
            let i = frontier.size;
            if e.leaf_index != i || i >= checkpoint.size {
                return Err(Failure::negative(anyhow!(
                    "the log served entry {} where {i} was due",
                    e.leaf_index
                )));
            }
            let bytes = e.entry.get().as_bytes();
            if !is_canonical(bytes) {
                return Err(Failure::negative(anyhow!(
                    "entry {i} is not canonical JSON"
                )));
            }
            let entry: Entry = serde_json::from_slice(bytes)
                .map_err(|err| Failure::negative(anyhow!("entry {i} is not a log entry: {err}")))?;
            let at = entry.logged_at();
            if last_at.is_some_and(|l| at < l) {
                return Err(Failure::negative(anyhow!(
                    "entry {i} was logged at {at}, before the entry ahead of it"
                )));
            }
            last_at = Some(at);
            frontier.push(leaf_hash(bytes));
        }
    }
    if frontier.root() != checkpoint.root {
        return Err(Failure::negative(anyhow!(
            "the log's entries do not hash to its checkpoint's root: an entry was rewritten, dropped or added outside the tree"
        )));
    }
    if let Some(path) = &a.state {
        let s = State {
            vkey: vkey.clone(),
            tree_size: checkpoint.size,
            root: hex(&checkpoint.root),
            frontier: frontier.hashes.iter().map(hex).collect(),
            last_logged_at: last_at,
        };
        let text = serde_json::to_vec_pretty(&s).map_err(anyhow::Error::from)?;
        write_atomic(path, &text, 0o644, false)?;
    }
    println!(
        "OK log {}: {} entries, root {}",
        checkpoint.origin,
        checkpoint.size,
        B64.encode(checkpoint.root)
    );
    match &state {
        Some(s) => println!(
            "consistent with the {} entries seen before; {} new entries checked",
            s.tree_size,
            checkpoint.size - seen
        ),
        None => println!("every entry checked against the root (no earlier state)"),
    }
    println!("log key {trust}");
    Ok(())
}

fn read_state(path: &Path) -> Result<State, Failure> {
    let bytes = read_capped(path, 1024 * 1024)?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a monitor state file", path.display()))
        .map_err(Failure::input)
}
