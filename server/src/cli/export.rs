//! `vouch export`: a signed packet in the standards' forms, offline. The
//! in-toto/DSSE envelope and the Sigstore bundle are signed with the key that
//! signed the packet (checked); OSCAL needs no key.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use vouch_engine::attest::{bundle, envelope, statement, Predicate};
use vouch_engine::signing::SignedPacket;

use super::offline::{digested_parts, load_signer};
use crate::files::write_atomic;
use crate::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// in-toto Statement v1 in a DSSE envelope (application/vnd.in-toto+json).
    Intoto,
    /// Sigstore bundle v0.3 carrying that envelope.
    Bundle,
    /// NIST OSCAL assessment-results.
    Oscal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PredicateArg {
    /// vouch's predicate: framework, period, organization, per-control status.
    Vouch,
    /// compliance-trestle's JSON-signing predicate, for `trestle verify`.
    Trestle,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long, value_enum)]
    format: Format,
    /// The packet body (`vouch generate` output or a server download), or its PDF.
    #[arg(value_name = "PACKET_FILE")]
    packet: PathBuf,
    /// The key that signed the packet (for intoto and bundle), PKCS#8 PEM, mode 0600.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The Statement's predicate (intoto only; a bundle carries vouch's).
    #[arg(long, value_enum, default_value = "vouch")]
    predicate: PredicateArg,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn export(a: ExportArgs) -> Result<(), Failure> {
    let (canonical, signature, _) = digested_parts(&a.packet, "not exported")?;
    let bytes = match a.format {
        Format::Oscal => {
            let doc = vouch_engine::oscal::assessment_results(&canonical, None, "packet.json")
                .map_err(|e| {
                    Failure::input(anyhow!("{}: not a packet: {e}", a.packet.display()))
                })?;
            serde_json::to_vec_pretty(&doc).map_err(|e| Failure::input(anyhow::Error::from(e)))?
        }
        Format::Intoto | Format::Bundle => {
            let key = a.key.as_deref().ok_or_else(|| {
                Failure::input(anyhow!("--key is required for --format intoto and bundle"))
            })?;
            let signer = load_signer(key, Some(signature.key_id.clone()))?;
            // The envelope says the packet's key signed it: only that key may.
            if signer.sign_bytes(&canonical) != signature {
                return Err(Failure::negative(anyhow!(
                    "{} is not the key that signed the packet (key_id {})",
                    key.display(),
                    signature.key_id
                )));
            }
            let predicate = match (a.format, a.predicate) {
                (Format::Intoto, PredicateArg::Trestle) => Predicate::Trestle,
                (Format::Bundle, PredicateArg::Trestle) => {
                    return Err(Failure::input(anyhow!(
                        "a bundle carries vouch's predicate; --predicate trestle is for --format intoto"
                    )))
                }
                _ => Predicate::Vouch,
            };
            let packet = serde_json::from_slice(&canonical).map_err(|e| {
                Failure::input(anyhow!("{}: not a packet: {e}", a.packet.display()))
            })?;
            let signed = SignedPacket {
                packet,
                canonical,
                signature,
            };
            let st = statement(&signed, predicate)
                .map_err(|e| Failure::input(anyhow::Error::from(e)))?;
            let env = envelope(&signer, &st);
            let value = match a.format {
                Format::Bundle => bundle(&env),
                _ => serde_json::to_value(&env)
                    .map_err(|e| Failure::input(anyhow::Error::from(e)))?,
            };
            serde_json::to_vec_pretty(&value).map_err(|e| Failure::input(anyhow::Error::from(e)))?
        }
    };
    match &a.out {
        Some(path) => write_atomic(path, &bytes, 0o644, false)
            .map_err(|e| Failure::input(anyhow!("cannot write {}: {e}", path.display())))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| Failure::input(anyhow::Error::from(e)))?;
        }
    }
    Ok(())
}
