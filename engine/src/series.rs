//! The series of one organization's packets of one framework.
//!
//! Every packet the server signs names, inside its signed bytes, the
//! `canonical_sha256` of the complete packet stored before it for the same
//! organization and framework ([`crate::packet::SeriesLink`]). Given the
//! packets of a series, [`verify_series`] checks each one against the
//! published keys, that they form one chain (none missing, replaced or
//! regenerated beside the original), and that their periods leave no gap
//! between the first and the last. It names the first break it finds.

use std::collections::HashMap;

use serde::Deserialize;

use crate::keys::KeysDocument;
use crate::packet::SeriesLink;
use crate::time::Timestamp;
use crate::verify::{body_parts, verify_body, VerifyError};

/// One packet of a series as it was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Where the packet came from (a file name, a report id).
    pub name: String,
    pub canonical_sha256: String,
    pub previous: Option<String>,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub generated_at: Timestamp,
    /// Until when the packet says its evidence holds.
    pub valid_until: Option<Timestamp>,
}

/// A verified series, in chain order (each packet names the one before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub links: Vec<Link>,
}

impl Series {
    /// Whether the first packet given is the first of the series (it names
    /// no previous); otherwise the series was given from a later packet on.
    pub fn from_the_start(&self) -> bool {
        self.links.first().is_some_and(|l| l.previous.is_none())
    }
}

/// Why a series does not verify; each names the packets involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    #[error("no packets to verify")]
    Empty,
    #[error("{name}: {error}")]
    Invalid { name: String, error: VerifyError },
    #[error("{name} is a packet of {found}, not of {expected}")]
    Foreign {
        name: String,
        expected: String,
        found: String,
    },
    #[error("{name} is not linked into a series (an offline packet, or one from before series): it carries no `series`")]
    Unlinked { name: String },
    #[error("{first} and {second} are the same packet (canonical_sha256 {canonical_sha256})")]
    Duplicate {
        first: String,
        second: String,
        canonical_sha256: String,
    },
    #[error("fork: {first} and {second} both follow {previous}: one of them was regenerated beside the other")]
    Fork {
        first: String,
        second: String,
        previous: String,
    },
    #[error("missing: the packet before {name} (canonical_sha256 {previous}) is not in the series; nothing covers {from} to {to}")]
    Missing {
        name: String,
        previous: String,
        from: Timestamp,
        to: Timestamp,
    },
    #[error("replaced: {name} follows {previous}, but the packet in its place, {found}, is {found_sha256}: it was regenerated or replaced")]
    Replaced {
        name: String,
        previous: String,
        found: String,
        found_sha256: String,
    },
    #[error("gap: no packet covers {from} to {to} (between {before} and {after})")]
    Gap {
        before: String,
        after: String,
        from: Timestamp,
        to: Timestamp,
    },
}

/// The members of a packet the series needs, read after its signature verified.
#[derive(Deserialize)]
struct Head {
    framework: String,
    organization: Org,
    period_start: Timestamp,
    period_end: Timestamp,
    generated_at: Timestamp,
    #[serde(default)]
    valid_until: Option<Timestamp>,
    #[serde(default)]
    series: Option<SeriesLink>,
}

#[derive(Deserialize)]
struct Org {
    id: String,
}

/// Verifies `packets` (name, body) as the series of `organization`'s
/// packets of `framework`: every body against `keys`, then the links, then
/// the periods. The order given does not matter.
pub fn verify_series(
    packets: &[(String, Vec<u8>)],
    keys: &KeysDocument,
    organization: &str,
    framework: &str,
) -> Result<Series, SeriesError> {
    if packets.is_empty() {
        return Err(SeriesError::Empty);
    }
    let mut links = Vec::with_capacity(packets.len());
    for (name, body) in packets {
        links.push(link(name, body, keys, organization, framework)?);
    }
    let mut by_sha: HashMap<&str, &Link> = HashMap::new();
    for l in &links {
        if let Some(other) = by_sha.insert(&l.canonical_sha256, l) {
            return Err(SeriesError::Duplicate {
                first: other.name.clone(),
                second: l.name.clone(),
                canonical_sha256: l.canonical_sha256.clone(),
            });
        }
    }
    let mut next: HashMap<Option<&str>, &Link> = HashMap::new();
    for l in &links {
        if let Some(other) = next.insert(l.previous.as_deref(), l) {
            let (first, second) = ordered(other, l);
            return Err(SeriesError::Fork {
                first: first.name.clone(),
                second: second.name.clone(),
                previous: l
                    .previous
                    .clone()
                    .unwrap_or_else(|| "nothing (both are first)".into()),
            });
        }
    }
    // Where a chain starts: a packet whose previous is not among those given.
    let mut starts: Vec<&Link> = links
        .iter()
        .filter(|l| {
            l.previous
                .as_deref()
                .is_none_or(|p| !by_sha.contains_key(p))
        })
        .collect();
    starts.sort_by_key(|l| (l.period_start, l.generated_at));
    let chains: Vec<Vec<&Link>> = starts.iter().map(|s| chain(s, &next)).collect();
    if let [first, rest @ ..] = chains.as_slice() {
        if let Some(broken) = rest.first() {
            return Err(broken_link(first, broken));
        }
    }
    let chain = chains.into_iter().next().unwrap_or_default();
    gaps(&chain)?;
    Ok(Series {
        links: chain.into_iter().cloned().collect(),
    })
}

fn link(
    name: &str,
    body: &[u8],
    keys: &KeysDocument,
    organization: &str,
    framework: &str,
) -> Result<Link, SeriesError> {
    let invalid = |error| SeriesError::Invalid {
        name: name.to_owned(),
        error,
    };
    let verified = verify_body(body, keys).map_err(invalid)?;
    let (packet, _) = body_parts(body).map_err(invalid)?;
    let head: Head = serde_json::from_slice(packet)
        .map_err(|e| invalid(VerifyError::Malformed(format!("not a packet: {e}"))))?;
    let foreign = |expected: &str, found: &str| SeriesError::Foreign {
        name: name.to_owned(),
        expected: expected.to_owned(),
        found: found.to_owned(),
    };
    if head.organization.id != organization {
        return Err(foreign(
            &format!("organization {organization}"),
            &format!("organization {}", head.organization.id),
        ));
    }
    if head.framework != framework {
        return Err(foreign(
            &format!("framework {framework}"),
            &format!("framework {}", head.framework),
        ));
    }
    let series = head.series.ok_or_else(|| SeriesError::Unlinked {
        name: name.to_owned(),
    })?;
    Ok(Link {
        name: name.to_owned(),
        canonical_sha256: verified.canonical_sha256,
        previous: series.previous_canonical_sha256,
        period_start: head.period_start,
        period_end: head.period_end,
        generated_at: head.generated_at,
        valid_until: head.valid_until,
    })
}

fn ordered<'l>(a: &'l Link, b: &'l Link) -> (&'l Link, &'l Link) {
    if (a.generated_at, &a.name) <= (b.generated_at, &b.name) {
        (a, b)
    } else {
        (b, a)
    }
}

fn chain<'l>(start: &'l Link, next: &HashMap<Option<&str>, &'l Link>) -> Vec<&'l Link> {
    let mut out = vec![start];
    let mut at = start;
    while let Some(n) = next.get(&Some(at.canonical_sha256.as_str())) {
        out.push(n);
        at = n;
    }
    out
}

/// The series splits where `broken` starts: its previous is not given. The
/// packet in that place was replaced when the chain before ends right where
/// `broken` begins; otherwise it is missing.
fn broken_link(before: &[&Link], broken: &[&Link]) -> SeriesError {
    let (Some(end), Some(start)) = (before.last(), broken.first()) else {
        return SeriesError::Empty;
    };
    let previous = start.previous.clone().unwrap_or_default();
    if end.period_end >= start.period_start {
        SeriesError::Replaced {
            name: start.name.clone(),
            previous,
            found: end.name.clone(),
            found_sha256: end.canonical_sha256.clone(),
        }
    } else {
        SeriesError::Missing {
            name: start.name.clone(),
            previous,
            from: end.period_end,
            to: start.period_start,
        }
    }
}

/// The periods, in chain order, must leave nothing uncovered between the
/// first start and the furthest end.
fn gaps(chain: &[&Link]) -> Result<(), SeriesError> {
    let Some(first) = chain.first() else {
        return Ok(());
    };
    let (mut covered, mut last) = (first.period_end, *first);
    for l in &chain[1..] {
        if l.period_start > covered {
            return Err(SeriesError::Gap {
                before: last.name.clone(),
                after: l.name.clone(),
                from: covered,
                to: l.period_start,
            });
        }
        if l.period_end >= covered {
            covered = l.period_end;
            last = l;
        }
    }
    Ok(())
}
