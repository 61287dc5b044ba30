//! The offline commands: generate, verify, keys generate/public, frameworks check.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use clap::Args;
use ed25519_dalek::SigningKey;
use vouch_engine::framework::{FrameworkSet, LoadError, NoPlugins, PluginCatalog};
use vouch_engine::keys::{KeysDocument, PublishedKey};
use vouch_engine::records::RecordsDocument;
use vouch_engine::signing::{default_key_id, key_from_pem, key_to_pem, PacketSigner};
use vouch_engine::verify::{verify_body, VerifyError};
use vouch_engine::{assemble_with, Period, Timestamp};

use crate::files::{read_capped, read_private, read_text, write_atomic};
use crate::plugins::{Limits, Plugins};
use crate::Failure;

pub(crate) const MAX_RECORDS: u64 = 256 * 1024 * 1024;
pub(crate) const MAX_PACKET: u64 = 64 * 1024 * 1024;
const MAX_KEYS_DOC: u64 = 1024 * 1024;
const MAX_FRAMEWORK: u64 = 4 * 1024 * 1024;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Records document (JSON) of one organization.
    #[arg(long, value_name = "FILE")]
    records: PathBuf,
    /// Framework identifier: soc2, gdpr_ropa, dora or eu_ai_act.
    #[arg(long, value_name = "ID")]
    framework: String,
    /// Directory of framework YAML files [default: the built-in frameworks]
    #[arg(long, value_name = "DIR", env = "VOUCH_FRAMEWORKS_DIR")]
    frameworks_dir: Option<PathBuf>,
    /// Directory of check plugins (`NAME.wasm`) the frameworks reference.
    #[arg(long, value_name = "DIR", env = "VOUCH_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Ed25519 signing key, PKCS#8 PEM (from `vouch keys generate`); must be mode 0600.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Key id written in the signature [default: the `key_id:` line of the key file]
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
    #[command(flatten)]
    period: PeriodArgs,
    /// Write the body to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// The period a command evaluates, and the time of evaluation.
#[derive(Args, Debug, Clone)]
pub struct PeriodArgs {
    /// Start of the assessment period (RFC 3339) [default: one calendar month before the end]
    #[arg(long, value_name = "T", requires = "period_end")]
    pub period_start: Option<Timestamp>,
    /// End of the assessment period (RFC 3339) [default: generated_at]
    #[arg(long, value_name = "T")]
    pub period_end: Option<Timestamp>,
    /// Time of generation (written in the packet) [default: now]
    #[arg(long, value_name = "T")]
    pub generated_at: Option<Timestamp>,
}

impl PeriodArgs {
    /// The time of generation, and the period when one is given (else the
    /// calendar month ending at the time of generation).
    pub fn resolve(&self) -> Result<(Timestamp, Option<Period>), Failure> {
        let generated_at = self.generated_at.unwrap_or_else(super::now);
        let period = match (self.period_start, self.period_end) {
            (Some(start), Some(end)) => Some(Period::new(start, end)?),
            (None, Some(end)) => Some(Period::month_ending_at(end)),
            _ => None,
        };
        Ok((generated_at, period))
    }
}

pub fn generate(a: GenerateArgs) -> Result<(), Failure> {
    let plugins = load_plugins(a.plugins_dir.as_deref())?;
    let frameworks = load_frameworks_with(a.frameworks_dir.as_deref(), plugins.as_deref())?;
    let framework = frameworks.get(&a.framework).ok_or_else(|| {
        Failure::input(anyhow!(
            "unknown framework `{}`; known: {}",
            a.framework,
            frameworks.ids().join(", ")
        ))
    })?;
    let records = read_records(&a.records)?;
    let signer = load_signer(&a.key, a.key_id)?;
    let (generated_at, period) = a.period.resolve()?;
    let packet = assemble_with(
        framework,
        &records,
        generated_at,
        period,
        plugin_host(&plugins),
    )?;
    let signed = signer.sign(packet)?;
    let body = signed.body(None);
    match a.out {
        Some(path) => write_atomic(&path, &body, 0o644, false)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&body)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

pub(crate) fn load_signer(path: &Path, key_id: Option<String>) -> Result<PacketSigner, Failure> {
    let text = read_private(path)?;
    let (key, id_in_file) =
        key_from_pem(&text).with_context(|| format!("{} is not a signing key", path.display()))?;
    let key_id = key_id.or(id_in_file).ok_or_else(|| {
        Failure::input(anyhow!(
            "{} names no key_id; pass --key-id (the id published in the keys document)",
            path.display()
        ))
    })?;
    vouch_engine::signing::check_key_id(&key_id)?;
    Ok(PacketSigner::new(key, key_id))
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The packet body (`vouch generate` output or a server download), its
    /// PDF, its in-toto/DSSE envelope or its Sigstore bundle.
    #[arg(value_name = "PACKET_FILE")]
    packet: PathBuf,
    /// Keys document: a file, or the URL of /.well-known/compliance-signing-keys.
    #[arg(long, value_name = "FILE_OR_URL")]
    keys: String,
    /// Require the packet in the transparency log: its inclusion proof (GET
    /// …/compliance-reports/{reportId}/inclusion), checked against the log key
    /// of the keys document. A revoked key's packet logged before the key's
    /// compromise time verifies only this way.
    #[arg(long, value_name = "INCLUSION_FILE")]
    log: Option<PathBuf>,
    /// The packet's RFC 3161 time-stamp response (GET …/timestamp): its
    /// imprint must be this packet's signature, and `openssl ts -verify`
    /// must accept it against --tsa-ca.
    #[arg(long, value_name = "FILE", requires = "tsa_ca")]
    timestamp: Option<PathBuf>,
    /// The CA certificates (PEM) of the time-stamping authorities you trust.
    #[arg(long, value_name = "FILE", requires = "timestamp")]
    tsa_ca: Option<PathBuf>,
    /// Fail a packet whose period ended longer ago than this (e.g. `35d`),
    /// or whose own `valid_until` has passed.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_age: Option<std::time::Duration>,
}

pub fn verify(a: VerifyArgs) -> Result<(), Failure> {
    let mut body = read_capped(&a.packet, MAX_PACKET)?;
    if let Some(kind) = attestation_kind(&body) {
        if a.log.is_some() || a.timestamp.is_some() {
            return Err(Failure {
                code: 2,
                error: anyhow!(
                    "--log and --timestamp check a packet (or its PDF); verify the packet this attestation names"
                ),
            });
        }
        return verify_attestation(kind, &body, &load_keys(&a.keys)?);
    }
    let from_pdf = body.starts_with(b"%PDF-");
    if from_pdf {
        let (canonical, signature) = pdf_parts(&a.packet, &body)?;
        body = vouch_engine::signing::body_from_parts(None, &canonical, &signature);
    }
    let keys = load_keys(&a.keys)?;
    let proof = a
        .log
        .as_deref()
        .map(|p| -> Result<vouch_engine::tlog::InclusionProof, Failure> {
            serde_json::from_slice(&read_capped(p, MAX_KEYS_DOC)?)
                .with_context(|| format!("{} is not an inclusion proof", p.display()))
                .map_err(Failure::input)
        })
        .transpose()?;
    let verified = match &proof {
        None => verify_body(&body, &keys).map(|v| (v, None)),
        Some(proof) => vouch_engine::verify::verify_body_in_log(&body, &keys, proof)
            .map(|l| (l.verified.clone(), Some(l))),
    };
    let stamped = match (&verified, &a.timestamp, &a.tsa_ca) {
        (Ok(_), Some(ts), Some(ca)) => Some(check_timestamp(&body, ts, ca)?),
        _ => None,
    };
    match verified {
        Ok((v, logged)) => {
            let fresh = freshness(&body, a.max_age, super::now())?;
            println!(
                "OK {}{} packet generated_at {} signed by {} (canonical_sha256 {}){}",
                if from_pdf { "PDF attachment: " } else { "" },
                v.framework,
                v.generated_at,
                v.key_id,
                v.canonical_sha256,
                v.report_id
                    .map(|r| format!(", report {r}"))
                    .unwrap_or_default()
            );
            if let Some(t) = stamped {
                println!(
                    "timestamp: the authority signed this packet's signature at {t} (generated_at {}); openssl ts -verify accepts it against {}",
                    v.generated_at,
                    a.tsa_ca.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
                );
            }
            if let Some(l) = logged {
                println!(
                    "logged: entry {} of {} in transparency log {}, logged at {}",
                    l.leaf_index, l.tree_size, l.origin, l.logged_at
                );
                if let Some(c) = l.before_compromise {
                    println!(
                        "NOTE: key {} was revoked, compromised at {c}; this packet stands because the log held it before then",
                        v.key_id
                    );
                }
            }
            // What the signature covers, from the verified bytes: a reader
            // compares this, not a PDF's pages, with what they were told.
            print!("{}", verified_summary(&body));
            if let Some(line) = fresh {
                println!("{line}");
            }
            if from_pdf {
                println!(
                    "NOTE: only the PDF's attached packet is verified, not its pages; a page can say anything. \
                     Rely on the lines above (or the packet itself), and on keys you obtained yourself: \
                     the keys URL printed on a page is not a trust anchor."
                );
            }
            Ok(())
        }
        Err(e @ VerifyError::Malformed(_)) => Err(Failure::input(e)),
        Err(e) => Err(Failure::negative(anyhow!("verification failed: {e}"))),
    }
}

/// An envelope or a bundle, told apart from a packet body by their members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attestation {
    Envelope,
    Bundle,
}

fn attestation_kind(bytes: &[u8]) -> Option<Attestation> {
    #[derive(serde::Deserialize)]
    struct Members {
        #[serde(rename = "payloadType")]
        payload_type: Option<serde::de::IgnoredAny>,
        #[serde(rename = "mediaType")]
        media_type: Option<serde::de::IgnoredAny>,
    }
    let m: Members = serde_json::from_slice(bytes).ok()?;
    match (m.payload_type, m.media_type) {
        (Some(_), _) => Some(Attestation::Envelope),
        (_, Some(_)) => Some(Attestation::Bundle),
        _ => None,
    }
}

fn verify_attestation(kind: Attestation, bytes: &[u8], keys: &KeysDocument) -> Result<(), Failure> {
    use vouch_engine::attest::{verify_bundle, verify_envelope, AttestError, Envelope};
    let verified = match kind {
        Attestation::Bundle => verify_bundle(bytes, keys),
        Attestation::Envelope => serde_json::from_slice::<Envelope>(bytes)
            .map_err(|e| AttestError::Malformed(format!("not a DSSE envelope: {e}")))
            .and_then(|e| verify_envelope(&e, keys)),
    };
    match verified {
        Ok(v) => {
            println!(
                "OK {} of a {} packet of organization {} generated_at {} signed by {}",
                match kind {
                    Attestation::Envelope => "in-toto attestation (DSSE)",
                    Attestation::Bundle => "Sigstore bundle",
                },
                v.framework,
                v.organization_id.escape_debug(),
                v.generated_at,
                v.key_id
            );
            println!(
                "subject: packet.json sha256 {}: the packet it attests is the one whose canonical_sha256 this is",
                v.packet_sha256
            );
            Ok(())
        }
        Err(e @ AttestError::Malformed(_)) => Err(Failure::input(anyhow::Error::from(e))),
        Err(e) => Err(Failure::negative(anyhow!("verification failed: {e}"))),
    }
}

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// The packet body (`vouch generate` output or a server download), or its PDF.
    #[arg(value_name = "PACKET_FILE")]
    packet: PathBuf,
    /// The records document the packet was computed from (for a server
    /// packet: its archived records).
    #[arg(long, value_name = "FILE")]
    records: PathBuf,
    /// Directory of framework YAML files [default: the built-in frameworks]
    #[arg(long, value_name = "DIR", env = "VOUCH_FRAMEWORKS_DIR")]
    frameworks_dir: Option<PathBuf>,
    /// Directory of the check plugins (`NAME.wasm`) the packet names.
    #[arg(long, value_name = "DIR", env = "VOUCH_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
}

/// The canonical packet bytes and the signature of a body or a PDF.
/// A PDF rendition carries the signed packet and its signature as attachments.
fn pdf_parts(
    path: &Path,
    pdf: &[u8],
) -> Result<(Vec<u8>, vouch_engine::signing::Signature), Failure> {
    let (canonical, signature) = crate::pdf::attachments(pdf)
        .with_context(|| format!("{} is a PDF without the packet attachments", path.display()))?;
    let signature = serde_json::from_slice(&signature)
        .with_context(|| format!("{}: signature.json is not a signature", path.display()))?;
    Ok((canonical, signature))
}

pub(crate) fn signed_parts(
    path: &Path,
) -> Result<(Vec<u8>, vouch_engine::signing::Signature), Failure> {
    let bytes = read_capped(path, MAX_PACKET)?;
    if bytes.starts_with(b"%PDF-") {
        return pdf_parts(path, &bytes);
    }
    let (packet, signature) = vouch_engine::verify::body_parts(&bytes)
        .map_err(|e| Failure::input(anyhow!("{}: {e}", path.display())))?;
    Ok((packet.to_vec(), signature))
}

/// [`signed_parts`], refused (exit 1, the message led by `failed`) when the
/// packet bytes are not the ones the signature names; with their SHA-256.
pub(crate) fn digested_parts(
    path: &Path,
    failed: &str,
) -> Result<(Vec<u8>, vouch_engine::signing::Signature, String), Failure> {
    let (canonical, signature) = signed_parts(path)?;
    let digest = vouch_engine::signing::sha256_hex(&canonical);
    if digest != signature.canonical_sha256 {
        return Err(Failure::negative(anyhow!(
            "{failed}: the packet bytes have SHA-256 {digest}, the signature names {}",
            signature.canonical_sha256
        )));
    }
    Ok((canonical, signature, digest))
}

/// Re-performs a packet's evaluation from its inputs and compares the
/// result with the signed bytes. It does not check the signature: that is
/// `vouch verify`'s part.
pub fn reproduce(a: ReproduceArgs) -> Result<(), Failure> {
    let (canonical, _, digest) = digested_parts(&a.packet, "reproduction failed")?;
    use vouch_engine::reproduce::{check_plugins, named_inputs, reproduce, ReproduceError};
    let refused = |e: ReproduceError| match e {
        ReproduceError::Malformed(_) | ReproduceError::Records(_) => {
            Failure::input(anyhow!("reproduction failed: {e}"))
        }
        e => Failure::negative(anyhow!("reproduction failed: {e}")),
    };
    let (_, inputs) = named_inputs(&canonical).map_err(refused)?;
    let plugins = load_plugins(a.plugins_dir.as_deref())?;
    let host = plugin_host(&plugins);
    // Before the frameworks load: they pin their plugins' digests, and a
    // changed plugin is this reason, not a framework that does not load.
    check_plugins(&inputs, host).map_err(refused)?;
    let frameworks = load_frameworks_with(a.frameworks_dir.as_deref(), plugins.as_deref())?;
    let records = read_capped(&a.records, MAX_RECORDS)?;
    match reproduce(&canonical, &records, &frameworks, host) {
        Ok(r) => {
            println!(
                "OK reproduced: {} packet (canonical_sha256 {digest}), {} controls recomputed byte for byte from records {}",
                r.framework, r.controls, r.records_sha256
            );
            println!(
                "NOTE: the signature is not checked here: `vouch verify` checks who signed it."
            );
            Ok(())
        }
        Err(e) => Err(refused(e)),
    }
}

/// Whether a verified packet is fresh at `now`: it says how long it is good
/// for (`valid_until`), and `--max-age` bounds the time since its period
/// ended (its evidence is no newer than that). A stale packet fails only
/// with `--max-age`; without, it is named. The line to print, if any.
fn freshness(
    body: &[u8],
    max_age: Option<std::time::Duration>,
    now: Timestamp,
) -> Result<Option<String>, Failure> {
    #[derive(serde::Deserialize)]
    struct Fresh {
        period_end: Timestamp,
        #[serde(default)]
        valid_until: Option<Timestamp>,
    }
    let (packet, _) = vouch_engine::verify::body_parts(body).map_err(Failure::input)?;
    let p: Fresh = serde_json::from_slice(packet).map_err(Failure::input)?;
    let age = now
        .unix_seconds()
        .saturating_sub(p.period_end.unix_seconds())
        .max(0);
    let age_text = humantime::format_duration(std::time::Duration::from_secs(age as u64));
    let expired = p.valid_until.filter(|v| *v < now);
    match max_age {
        Some(max) if age as u128 > max.as_secs() as u128 => Err(Failure::negative(anyhow!(
            "stale: the packet's period ended {age_text} ago ({}), more than --max-age {}",
            p.period_end,
            humantime::format_duration(max)
        ))),
        Some(_) if expired.is_some() => Err(Failure::negative(anyhow!(
            "stale: the packet is valid until {}, which has passed",
            expired.unwrap_or(now)
        ))),
        _ => Ok(match (p.valid_until, expired) {
            (_, Some(v)) => Some(format!(
                "STALE: valid until {v}, which has passed (its period ended {age_text} ago)"
            )),
            (Some(v), None) => Some(format!("valid until: {v}")),
            (None, None) => None,
        }),
    }
}

/// The organization, period and status counts of a verified body.
fn verified_summary(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let p = &v["packet"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    let mut counts = std::collections::BTreeMap::new();
    for c in p["controls"].as_array().into_iter().flatten() {
        *counts.entry(text(&c["status"])).or_insert(0usize) += 1;
    }
    let statuses = ["attested", "exception", "not_applicable", "inconclusive"]
        .iter()
        .map(|s| format!("{} {s}", counts.get(*s).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "organization: {} ({})\nperiod: {} to {}\ncontrols: {statuses}\n",
        text(&p["organization"]["id"]).escape_debug(),
        text(&p["organization"]["name"]).escape_debug(),
        text(&p["period_start"]),
        text(&p["period_end"]),
    )
}

/// Checks an RFC 3161 response for the signature of `body`: its imprint,
/// then its CMS signature and certificate chain with `openssl ts -verify`
/// against `ca`. The authority's time.
fn check_timestamp(body: &[u8], ts: &Path, ca: &Path) -> Result<Timestamp, Failure> {
    use base64::Engine as _;
    let resp = read_capped(ts, vouch_engine::tsp::MAX_RESPONSE as u64)?;
    let info = vouch_engine::tsp::read_response(&resp).map_err(Failure::input)?;
    let (_, signature) = vouch_engine::verify::body_parts(body).map_err(Failure::input)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&signature.value)
        .map_err(|_| Failure::negative(anyhow!("the packet's signature is not base64")))?;
    let imprint = crate::tsa::imprint(&raw);
    if info.digest != imprint {
        return Err(Failure::negative(anyhow!(
            "the timestamp is not of this packet's signature (its imprint is another digest)"
        )));
    }
    let out = std::process::Command::new("openssl")
        .args([
            "ts",
            "-verify",
            "-digest",
            &vouch_engine::signing::hex(&imprint),
            "-in",
        ])
        .arg(ts)
        .arg("-CAfile")
        .arg(ca)
        .output()
        .map_err(|e| Failure::input(anyhow!("cannot run openssl (needed for --tsa-ca): {e}")))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why
            .lines()
            .find(|l| !l.starts_with("Using configuration"))
            .unwrap_or("no reason given");
        return Err(Failure::negative(anyhow!(
            "the timestamp does not verify against {}: {}",
            ca.display(),
            why.escape_debug()
        )));
    }
    Ok(info.gen_time)
}

pub(crate) fn load_keys(source: &str) -> Result<KeysDocument, Failure> {
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        super::fetch(source, MAX_KEYS_DOC, "the keys document")?
    } else {
        read_capped(Path::new(source), MAX_KEYS_DOC)?
    };
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{source} is not a keys document"))
        .map_err(Failure::input)
}

#[derive(Args, Debug)]
pub struct KeysGenerateArgs {
    /// Where to write the private key (created with mode 0600; never overwritten).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Key id [default: key-YYYY-MM-<first 8 hex of SHA-256 of the public key>]
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
}

pub fn keys_generate(a: KeysGenerateArgs) -> Result<(), Failure> {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let key_id = a
        .key_id
        .unwrap_or_else(|| default_key_id(&key.verifying_key(), now));
    let pem = key_to_pem(&key, &key_id)?;
    write_atomic(&a.out, pem.as_bytes(), 0o600, true)?;
    println!("{key_id}");
    Ok(())
}

#[derive(Args, Debug)]
pub struct KeysPublicArgs {
    /// The private key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Key id [default: the `key_id:` line of the key file]
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
}

pub fn keys_public(a: KeysPublicArgs) -> Result<(), Failure> {
    let signer = load_signer(&a.key, a.key_id)?;
    let doc = KeysDocument::new(vec![PublishedKey::new(
        &signer.verifying_key(),
        signer.key_id(),
        None,
        None,
        None,
    )]);
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

pub fn frameworks_check(
    dir: Option<PathBuf>,
    plugins_dir: Option<PathBuf>,
    records: Option<PathBuf>,
) -> Result<(), Failure> {
    let dir = frameworks_dir(dir);
    let plugins = load_plugins(plugins_dir.as_deref())?;
    let set = match load_frameworks_result(dir.as_deref(), plugins.as_deref())? {
        Ok(set) => set,
        Err(e) => {
            let n = e.diagnostics.len();
            eprintln!("{e}");
            return Err(Failure::negative(anyhow!(
                "{n} problem{} found",
                if n == 1 { "" } else { "s" }
            )));
        }
    };
    let warnings = super::authoring::warnings(&set, dir.as_deref(), records.as_deref())?;
    let source = dir
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "built-in frameworks".into());
    for fw in set.iter() {
        println!(
            "ok {:<10} {} controls  {}",
            fw.framework,
            fw.controls.len(),
            fw.name
        );
    }
    for w in &warnings {
        println!("warning: {}", vouch_engine::explain::escaped(w));
    }
    match warnings.len() {
        0 => println!("{} frameworks in {source}: no problems", set.len()),
        n => println!(
            "{} frameworks in {source}: no problems, {n} warning{}",
            set.len(),
            if n == 1 { "" } else { "s" }
        ),
    }
    Ok(())
}

/// A records document (JSON) of one organization, from a file.
pub(crate) fn read_records(path: &Path) -> Result<RecordsDocument, Failure> {
    let bytes = read_capped(path, MAX_RECORDS)?;
    RecordsDocument::from_json_slice(&bytes)
        .with_context(|| format!("{} is not a valid records document", path.display()))
        .map_err(Failure::input)
}

/// The frameworks directory a command was given, else `$VOUCH_FRAMEWORKS_DIR`
/// (for commands that take it as an argument rather than an option).
pub(crate) fn frameworks_dir(dir: Option<PathBuf>) -> Option<PathBuf> {
    dir.or_else(|| std::env::var_os("VOUCH_FRAMEWORKS_DIR").map(PathBuf::from))
}

/// The plugins' host, or none: a `plugin:` check is then inconclusive.
pub(crate) fn plugin_host(
    plugins: &Option<std::sync::Arc<Plugins>>,
) -> &dyn vouch_engine::PluginHost {
    match plugins {
        Some(p) => p.as_ref(),
        None => &vouch_engine::NoPluginHost,
    }
}

/// Loads the plugins of `dir` (every `*.wasm`), if a directory is given.
pub fn load_plugins(dir: Option<&Path>) -> Result<Option<std::sync::Arc<Plugins>>, Failure> {
    let Some(dir) = dir else { return Ok(None) };
    let plugins = Plugins::load_dir(dir, Limits::default())
        .map_err(|e| Failure::input(anyhow!("the plugins have problems:\n{e}")))?;
    Ok(Some(std::sync::Arc::new(plugins)))
}

/// Loads the frameworks of `dir` (every `*.yaml`/`*.yml`), or the built-in ones.
pub fn load_frameworks(dir: Option<&Path>) -> Result<FrameworkSet, Failure> {
    load_frameworks_with(dir, None)
}

/// Loads frameworks, checking their `plugin:` references against `plugins`.
pub fn load_frameworks_with(
    dir: Option<&Path>,
    plugins: Option<&Plugins>,
) -> Result<FrameworkSet, Failure> {
    load_frameworks_result(dir, plugins)?
        .map_err(|e| Failure::input(anyhow!("the framework files have problems:\n{e}")))
}

fn load_frameworks_result(
    dir: Option<&Path>,
    plugins: Option<&Plugins>,
) -> Result<Result<FrameworkSet, LoadError>, Failure> {
    let catalog: &dyn PluginCatalog = match plugins {
        Some(p) => p,
        None => &NoPlugins,
    };
    let Some(dir) = dir else {
        return Ok(FrameworkSet::builtin());
    };
    let paths = yaml_files(dir, "framework")?;
    let mut texts = Vec::new();
    for p in &paths {
        texts.push((p.display().to_string(), read_text(p, MAX_FRAMEWORK)?));
    }
    Ok(FrameworkSet::from_sources_with(
        texts.iter().map(|(f, t)| (f.as_str(), t.as_str())),
        catalog,
    ))
}

/// The `*.yaml` and `*.yml` files of `dir`, in name order; none is an error
/// naming `what` they should have been (framework, cases).
pub(crate) fn yaml_files(dir: &Path, what: &str) -> Result<Vec<PathBuf>, Failure> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the {what} directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Failure::input(anyhow!(
            "{} holds no {what} files (*.yaml)",
            dir.display()
        )));
    }
    Ok(paths)
}

#[derive(Args, Debug)]
pub struct PluginsCheckArgs {
    /// A plugin module (`NAME.wasm`).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// `vouch plugins check FILE`: validates a plugin and prints what to pin.
pub fn plugins_check(a: PluginsCheckArgs) -> Result<(), Failure> {
    let bytes = read_capped(&a.file, 64 * 1024 * 1024)?;
    let name = a
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut plugins = Plugins::new(Limits::default()).map_err(Failure::input)?;
    let info = plugins.add(&name, &bytes).map_err(|e| {
        Failure::negative(anyhow!("{} is not a usable plugin: {e}", a.file.display()))
    })?;
    println!(
        "ok {} {} (ABI v{})",
        info.name,
        info.version,
        crate::plugins::ABI_VERSION
    );
    println!("sha256: {}", info.sha256);
    println!("\nreference it from a framework check as:\n  - plugin: {{ name: {}, sha256: \"{}\", config: {{}} }}", info.name, info.sha256);
    Ok(())
}
