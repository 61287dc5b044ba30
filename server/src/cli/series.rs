//! `vouch verify-series` and `vouch diff`: a series of packets checked
//! whole, and what changed between two packets.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use clap::{Args, ValueEnum};
use vouch_engine::compare::{compare, Change, Comparison};
use vouch_engine::series::verify_series as check_series;
use vouch_engine::verify::{body_parts, verify_body};

use super::fetch_as;
use super::offline::{load_keys, MAX_PACKET};
use crate::files::read_capped;
use crate::Failure;

/// Packets in one series at most: ten years of weekly packets, and more.
const MAX_PACKETS: usize = 10_000;
/// A page of the server's listing.
const MAX_PAGE: u64 = 4 * 1024 * 1024;

#[derive(Args, Debug)]
pub struct VerifySeriesArgs {
    /// A directory of packet bodies (`*.json`, as downloaded), or a server's
    /// base URL (its listing is read with --user and VOUCH_PASSWORD).
    #[arg(value_name = "DIR_OR_URL")]
    source: String,
    /// The organization whose series it is.
    #[arg(long, value_name = "ORG")]
    org: String,
    /// The framework of the series, e.g. soc2.
    #[arg(long, value_name = "FRAMEWORK")]
    framework: String,
    /// Keys document: a file, or the URL of /.well-known/compliance-signing-keys.
    #[arg(long, value_name = "FILE_OR_URL")]
    keys: String,
    /// With a URL: the member whose password is in VOUCH_PASSWORD.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
}

pub fn verify_series(a: VerifySeriesArgs) -> Result<(), Failure> {
    let keys = load_keys(&a.keys)?;
    let packets = if a.source.starts_with("http://") || a.source.starts_with("https://") {
        from_server(&a)?
    } else {
        from_dir(Path::new(&a.source))?
    };
    let series = check_series(&packets, &keys, &a.org, &a.framework)
        .map_err(|e| Failure::negative(anyhow!("series does not verify: {e}")))?;
    let (Some(first), Some(last)) = (series.links.first(), series.links.last()) else {
        return Err(Failure::negative(anyhow!(
            "series does not verify: no packets"
        )));
    };
    println!(
        "OK series of {} {} packets of {}: {} to {}, every packet verified, linked, no period missing",
        series.links.len(),
        a.framework,
        a.org.escape_debug(),
        first.period_start,
        last.period_end,
    );
    println!(
        "last: {} (canonical_sha256 {})",
        last.name.escape_debug(),
        last.canonical_sha256
    );
    if !series.from_the_start() {
        println!(
            "NOTE: the first packet given, {}, follows {} (not given): the series is verified from there on",
            first.name.escape_debug(),
            first.previous.as_deref().unwrap_or_default()
        );
    }
    println!(
        "NOTE: a series cut short at its end verifies; the transparency log (vouch log verify) shows every packet there is"
    );
    Ok(())
}

/// Every `*.json` file of `dir`, by name.
fn from_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    if paths.len() > MAX_PACKETS {
        return Err(Failure::input(anyhow!(
            "{} holds {} packets; a series is checked up to {MAX_PACKETS}",
            dir.display(),
            paths.len()
        )));
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, read_capped(&p, MAX_PACKET)?))
        })
        .collect()
}

/// The complete reports of the framework, from the server's listing.
fn from_server(a: &VerifySeriesArgs) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let user = a.user.as_deref().ok_or_else(|| {
        Failure::input(anyhow!(
            "a URL needs --user (and the password in VOUCH_PASSWORD)"
        ))
    })?;
    let auth = super::basic_auth(user)?;
    let base = a.source.trim_end_matches('/');
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let reports = format!("{base}/organizations/{}/compliance-reports", enc(&a.org));
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{reports}?framework={}&limit=200", enc(&a.framework));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", enc(c)));
        }
        let listing = fetch_as(&url, MAX_PAGE, "the report listing", Some(&auth))?;
        let page: serde_json::Value = serde_json::from_slice(&listing)
            .with_context(|| format!("{url} is not a report listing"))?;
        for r in page["reports"].as_array().into_iter().flatten() {
            if r["status"] != "complete" {
                continue;
            }
            let id = r["report_id"].as_str().unwrap_or_default().to_owned();
            if out.len() >= MAX_PACKETS {
                return Err(Failure::input(anyhow!(
                    "the series has more than {MAX_PACKETS} packets"
                )));
            }
            let url = format!("{reports}/{}", enc(&id));
            let body = fetch_as(&url, MAX_PACKET, "a packet", Some(&auth))?;
            out.push((id, body));
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            return Ok(out);
        }
    }
}

/// What makes `vouch diff` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any control whose status got worse.
    Regression,
}

/// Output format of `vouch diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The earlier packet body.
    #[arg(value_name = "A")]
    earlier: PathBuf,
    /// The later packet body.
    #[arg(value_name = "B")]
    later: PathBuf,
    /// Keys document: a file, or the URL of /.well-known/compliance-signing-keys.
    #[arg(long, value_name = "FILE_OR_URL")]
    keys: String,
    /// Exit 1 when the later packet has a regression (for CI pipelines).
    #[arg(long, value_enum, value_name = "WHAT")]
    fail_on: Option<FailOn>,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

pub fn diff(a: DiffArgs) -> Result<(), Failure> {
    let keys = load_keys(&a.keys)?;
    let packet = |p: &Path| -> Result<vouch_engine::Packet, Failure> {
        let body = read_capped(p, MAX_PACKET)?;
        verify_body(&body, &keys)
            .map_err(|e| Failure::negative(anyhow!("{} does not verify: {e}", p.display())))?;
        let (bytes, _) = body_parts(&body).map_err(Failure::input)?;
        serde_json::from_slice(bytes)
            .with_context(|| format!("{} is not a packet", p.display()))
            .map_err(Failure::input)
    };
    let (earlier, later) = (packet(&a.earlier)?, packet(&a.later)?);
    let c = compare(&earlier, &later).map_err(Failure::input)?;
    match a.format {
        DiffFormat::Json => println!("{}", serde_json::to_string_pretty(&c)?),
        DiffFormat::Text => print!("{}", text(&c, &earlier, &later)),
    }
    if a.fail_on == Some(FailOn::Regression) && c.regressions > 0 {
        let ids: Vec<&str> = c.regressed().map(|c| c.control_id.as_str()).collect();
        return Err(Failure::negative(anyhow!(
            "{} regression{}: {}",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            ids.join(", ")
        )));
    }
    Ok(())
}

fn text(c: &Comparison, earlier: &vouch_engine::Packet, later: &vouch_engine::Packet) -> String {
    let mut out = format!(
        "{} {} to {} against {} to {}: {} regression(s), {} improvement(s)\n",
        later.framework,
        later.period_start,
        later.period_end,
        earlier.period_start,
        earlier.period_end,
        c.regressions,
        c.improvements
    );
    out.push_str(&changes(c, ""));
    out
}

/// One line per control that changed, and its findings added (`+`) and
/// removed (`-`), each line after `indent`.
pub(crate) fn changes(c: &Comparison, indent: &str) -> String {
    let status = |s: Option<vouch_engine::Status>| s.map_or("-", |s| s.as_str());
    let mut out = String::new();
    for ch in c.controls.iter().filter(|ch| {
        ch.change != Change::Unchanged
            || !ch.findings_added.is_empty()
            || !ch.findings_removed.is_empty()
    }) {
        let change = serde_json::to_value(ch.change)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!(
            "{indent}{change:<12} {} {} -> {}\n",
            ch.control_id.escape_debug(),
            status(ch.before),
            status(ch.after)
        ));
        for (sign, list) in [("+", &ch.findings_added), ("-", &ch.findings_removed)] {
            for f in list {
                out.push_str(&format!(
                    "{indent}  {sign} {} {}: expected {}\n",
                    f.resource.escape_debug(),
                    f.field.escape_debug(),
                    f.expected.escape_debug()
                ));
            }
        }
    }
    out
}
