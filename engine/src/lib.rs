//! # vouch-engine
//!
//! The pure core of vouch: it turns a framework (YAML controls) and a records
//! document (what the platform knows about one organization) into an evidence
//! packet, canonicalizes it as OLPC canonical JSON and signs it with Ed25519.
//! It reads no clock, no disk and no network: the caller passes the time, the
//! framework texts and the key. The one thing it asks the operating system is
//! how many threads it may use ([`std::thread::available_parallelism`]), to
//! judge a large scope's resources in parts at once; the packet is the same
//! on any number of threads.
//!
//! ```
//! use vouch_engine::{framework::FrameworkSet, records::RecordsDocument, packet, signing, keys, verify};
//!
//! let frameworks = FrameworkSet::builtin().unwrap();
//! let soc2 = frameworks.get("soc2").unwrap();
//! let records = RecordsDocument::from_json_slice(include_bytes!("../../examples/records/seed-only.json")).unwrap();
//! let now = "2026-06-22T10:00:00Z".parse().unwrap();
//! let packet = packet::assemble(soc2, &records, now, None).unwrap();
//!
//! let key = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
//! let signer = signing::PacketSigner::new(key, "key-2026-06-example".into());
//! let signed = signer.sign(packet).unwrap();
//!
//! let published = keys::PublishedKey::new(&signer.verifying_key(), signer.key_id(), None, None, None);
//! let ok = verify::verify_body(&signed.body(None), &keys::KeysDocument::new(vec![published])).unwrap();
//! assert_eq!(ok.framework, "soc2");
//! ```

pub mod attest;
pub mod canonical;
pub mod cases;
pub mod compare;
mod contradictions;
mod diff;
pub mod eval;
pub mod explain;
pub mod framework;
pub mod keys;
pub mod oscal;
pub mod packet;
pub mod records;
pub mod reproduce;
pub mod series;
pub mod signing;
pub mod time;
pub mod tlog;
pub mod tsp;
pub mod verify;

pub use eval::{ControlResult, Finding, NoPluginHost, PluginHost, PluginInfo, Status};
pub use framework::{Framework, FrameworkSet};
pub use packet::{assemble, assemble_with, Packet};
pub use records::RecordsDocument;
pub use time::{Period, Timestamp};
