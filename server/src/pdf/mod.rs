//! The PDF rendition of a signed packet: a minijinja template produces typst
//! source, compiled in a typst `World` held in memory: fonts embedded in the
//! binary, no file, network or system-font access, and a date taken from the
//! packet. The same packet always gives the same PDF bytes.
//!
//! The PDF carries the evidence itself: the packet's canonical bytes as the
//! attachment `packet.json` (byte-identical to what was signed) and the
//! signature object as `signature.json`, so `vouch verify` accepts the PDF alone.

mod attachments;

pub use attachments::{attachments, MAX_ATTACHMENT};

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use minijinja::{Environment, Value as JValue};
use serde_json::{json, Value};
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};
use typst_layout::PagedDocument;
use vouch_engine::signing::Signature;

/// The built-in template (`templates/packet.typ.j2`).
pub const BUILTIN_TEMPLATE: &str = include_str!("../../../templates/packet.typ.j2");
const TEMPLATE_NAME: &str = "packet.typ.j2";

/// A rendering failure, naming the template file and line where it can.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}:{line}: {message}")]
    Template {
        file: String,
        line: usize,
        message: String,
    },
    #[error(
        "{file}: the generated typst source does not compile: {message} (generated line {line})"
    )]
    Typst {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

/// Fonts and the standard library, loaded once per process.
struct Assets {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let fonts: Vec<Font> = typst_assets::fonts()
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .collect();
        Assets {
            library: LazyHash::new(Library::default()),
            book: LazyHash::new(FontBook::from_fonts(&fonts)),
            fonts,
        }
    })
}

/// The typst source of one packet, and its attachments.
struct PacketWorld {
    main: Source,
    files: Vec<(FileId, Bytes)>,
    today: Datetime,
}

fn file_id(path: &str) -> Result<FileId> {
    let vpath = VirtualPath::new(path).map_err(|e| anyhow!("{path}: {e:?}"))?;
    Ok(FileId::new(RootedPath::new(VirtualRoot::Project, vpath)))
}

impl World for PacketWorld {
    fn library(&self) -> &LazyHash<Library> {
        &assets().library
    }
    fn book(&self) -> &LazyHash<FontBook> {
        &assets().book
    }
    fn main(&self) -> FileId {
        self.main.id()
    }
    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }
    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.main.id() {
            return Ok(Bytes::from_string(self.main.clone()));
        }
        self.files
            .iter()
            .find(|(f, _)| *f == id)
            .map(|(_, b)| b.clone())
            .ok_or(FileError::AccessDenied)
    }
    fn font(&self, index: usize) -> Option<Font> {
        assets().fonts.get(index).cloned()
    }
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        Some(self.today)
    }
}

/// A typst string literal: in markup `#"..."` prints its content literally.
fn typst_str(value: JValue) -> String {
    let text = match value.as_str() {
        Some(s) => s.to_owned(),
        None if value.is_none() || value.is_undefined() => String::new(),
        None => value.to_string(),
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn template_error(file: &str, e: &minijinja::Error) -> RenderError {
    RenderError::Template {
        file: file.to_owned(),
        line: e.line().unwrap_or(0),
        message: e.to_string().lines().next().unwrap_or_default().to_owned(),
    }
}

/// Where the PDF sends its reader: the published keys, and the records the
/// packet was computed from.
#[derive(Debug, Clone)]
pub struct Links {
    pub keys: String,
    pub records: String,
}

impl Links {
    /// The links of report `report_id` of `org` on the server at `public_url`.
    pub fn of(public_url: &str, org: &str, report_id: &str) -> Links {
        Links {
            keys: format!("{public_url}/.well-known/compliance-signing-keys"),
            records: format!(
                "{public_url}/organizations/{org}/compliance-reports/{report_id}/records"
            ),
        }
    }
}

/// Renders packets to PDF with one template.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    file: String,
}

impl Renderer {
    /// The built-in template, or `packet.typ.j2` from `dir`. A template that
    /// does not parse is refused here, with its file and line.
    pub fn new(dir: Option<&Path>) -> Result<Self, RenderError> {
        let (source, file) = match dir {
            Some(d) => {
                let path = d.join(TEMPLATE_NAME);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    RenderError::Other(format!("cannot read {}: {e}", path.display()))
                })?;
                (text, path.display().to_string())
            }
            None => (
                BUILTIN_TEMPLATE.to_owned(),
                format!("templates/{TEMPLATE_NAME}"),
            ),
        };
        let mut env = Environment::new();
        env.add_filter("typst_str", typst_str);
        env.add_template_owned(TEMPLATE_NAME, source)
            .map_err(|e| template_error(&file, &e))?;
        Ok(Renderer { env, file })
    }

    /// The typst source of a packet, from the template.
    fn source(
        &self,
        packet: Value,
        generated: chrono::DateTime<chrono::FixedOffset>,
        report_id: &str,
        signature: &Signature,
        framework_name: &str,
        links: &Links,
    ) -> Result<String, RenderError> {
        use chrono::{Datelike, Timelike};
        let mut counts = json!({"total": 0, "attested": 0, "exception": 0, "not_applicable": 0, "inconclusive": 0});
        for c in packet["controls"].as_array().into_iter().flatten() {
            counts["total"] = json!(counts["total"].as_u64().unwrap_or(0) + 1);
            if let Some(s) = c["status"].as_str() {
                counts[s] = json!(counts[s].as_u64().unwrap_or(0) + 1);
            }
        }
        let ctx = json!({
            "packet": packet,
            "signature": signature,
            "report_id": report_id,
            "framework_name": framework_name,
            "keys_url": links.keys,
            "records_url": links.records,
            "counts": counts,
            "time_basis_words": vouch_engine::framework::TimeBasis::ALL
                .iter()
                .map(|t| (t.as_str(), t.describe()))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "generated": {
                "year": generated.year(), "month": generated.month(), "day": generated.day(),
                "hour": generated.hour(), "minute": generated.minute(), "second": generated.second()
            }
        });
        let tmpl = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| template_error(&self.file, &e))?;
        tmpl.render(JValue::from(minijinja::value::Serde(&ctx)))
            .map_err(|e| template_error(&self.file, &e))
    }

    /// Renders the PDF of a signed packet.
    ///
    /// typst memoizes compilation in a process-wide cache (comemo) that only
    /// grows unless evicted; every packet is a new document, so without
    /// eviction each rendering kept megabytes for good. After each rendering,
    /// results not used by the last two renderings are evicted: fonts and the
    /// library stay warm, packets do not stay.
    pub fn render(
        &self,
        report_id: &str,
        canonical: &[u8],
        signature: &Signature,
        framework_name: &str,
        links: &Links,
    ) -> Result<Vec<u8>, RenderError> {
        let out = self.compile(report_id, canonical, signature, framework_name, links);
        comemo::evict(2);
        out
    }

    fn compile(
        &self,
        report_id: &str,
        canonical: &[u8],
        signature: &Signature,
        framework_name: &str,
        links: &Links,
    ) -> Result<Vec<u8>, RenderError> {
        use chrono::{Datelike, Timelike};
        let (packet, g) = parse_packet(canonical)?;
        let today = Datetime::from_ymd_hms(
            g.year(),
            g.month() as u8,
            g.day() as u8,
            g.hour() as u8,
            g.minute() as u8,
            g.second() as u8,
        )
        .ok_or_else(|| RenderError::Other("packet has no generated_at".into()))?;
        let source = self.source(packet, g, report_id, signature, framework_name, links)?;
        let other = |e: anyhow::Error| RenderError::Other(e.to_string());
        let main_id = file_id("/main.typ").map_err(other)?;
        let sig_bytes =
            serde_json::to_vec(signature).map_err(|e| RenderError::Other(e.to_string()))?;
        let world = PacketWorld {
            main: Source::new(main_id, source),
            files: vec![
                (
                    file_id("/packet.json").map_err(other)?,
                    Bytes::new(canonical.to_vec()),
                ),
                (
                    file_id("/signature.json").map_err(other)?,
                    Bytes::new(sig_bytes),
                ),
            ],
            today,
        };
        let document: PagedDocument = typst::compile(&world).output.map_err(|errors| {
            let first = errors.first();
            let line = first
                .and_then(|d| world.range(d.span))
                .map(|r| {
                    world.main.text()[..r.start.min(world.main.text().len())]
                        .lines()
                        .count()
                })
                .unwrap_or(0);
            RenderError::Typst {
                file: self.file.clone(),
                line,
                message: first.map(|d| d.message.to_string()).unwrap_or_default(),
            }
        })?;
        let options = typst_pdf::PdfOptions {
            ident: Smart::Custom(format!("vouch {report_id}")),
            creator: Smart::Custom(Some("vouch".into())),
            timestamp: Some(typst_pdf::Timestamp::new_utc(today)),
            ..Default::default()
        };
        typst_pdf::pdf(&document, &options).map_err(|errors| RenderError::Typst {
            file: self.file.clone(),
            line: 0,
            message: errors
                .first()
                .map(|d| d.message.to_string())
                .unwrap_or_default(),
        })
    }
}

/// The packet as JSON and its generated_at.
fn parse_packet(
    canonical: &[u8],
) -> Result<(Value, chrono::DateTime<chrono::FixedOffset>), RenderError> {
    let packet: Value = serde_json::from_slice(canonical)
        .map_err(|e| RenderError::Other(format!("packet: {e}")))?;
    let generated = packet["generated_at"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .ok_or_else(|| RenderError::Other("packet has no generated_at".into()))?;
    Ok((packet, generated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_engine::signing::PacketSigner;
    use vouch_engine::{assemble, FrameworkSet, RecordsDocument};

    fn signed() -> (Vec<u8>, Signature) {
        let fw = FrameworkSet::builtin().unwrap();
        let records = RecordsDocument::from_json_slice(include_bytes!(
            "../../../examples/records/one-bad-service.json"
        ))
        .unwrap();
        let packet = assemble(
            fw.get("soc2").unwrap(),
            &records,
            "2026-06-22T10:00:00Z".parse().unwrap(),
            None,
        )
        .unwrap();
        let s = PacketSigner::new(
            ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]),
            "key-test".into(),
        )
        .sign(packet)
        .unwrap();
        (s.canonical, s.signature)
    }

    #[test]
    fn the_pages_show_framing_time_basis_thresholds_and_population() {
        let (canonical, sig) = signed();
        let r = Renderer::new(None).unwrap();
        let (packet, g) = parse_packet(&canonical).unwrap();
        let source = r
            .source(
                packet,
                g,
                "r-1",
                &sig,
                "SOC 2 Type II",
                &Links::of("https://example.test", "acme", "r-1"),
            )
            .unwrap();
        for expected in [
            "What this packet is.",
            "not a SOC 2 report",
            "version #mono(\"2026.11\")",
            "Time basis: #\"configuration as it stood when the packet was generated",
            "Time basis: #\"configuration throughout the period, every change included\"",
            // A finding of a control judged throughout the period names its interval.
            "#text(fill: luma(90))[#\"from 20",
            "Threshold #\"36h\": #\"platform policy\"",
            "Population: #\"services: 4 selected, 4 in scope; 3 passed, 1 failed",
        ] {
            assert!(
                source.contains(expected),
                "no {expected:?} in the typst source"
            );
        }
        if let Some(out) = std::env::var_os("VOUCH_PDF_OUT") {
            let pdf = r
                .render(
                    "r-1",
                    &canonical,
                    &sig,
                    "SOC 2 Type II",
                    &Links::of("https://example.test", "acme", "r-1"),
                )
                .unwrap();
            std::fs::write(out, pdf).unwrap();
        }
    }

    #[test]
    fn the_same_packet_gives_the_same_pdf_bytes() {
        let (canonical, sig) = signed();
        // Two renderers: nothing carried over from one rendering makes the bytes.
        let render = || {
            Renderer::new(None)
                .unwrap()
                .render(
                    "r-1",
                    &canonical,
                    &sig,
                    "SOC 2 Type II",
                    &Links::of("https://example.test", "acme", "r-1"),
                )
                .unwrap()
        };
        let (a, b) = (render(), render());
        assert!(a.starts_with(b"%PDF-"));
        assert!(a == b, "two renders differ");
        let (packet, signature) = attachments(&a).unwrap();
        assert_eq!(packet, canonical, "the attachment is the signed bytes");
        assert_eq!(
            serde_json::from_slice::<Signature>(&signature).unwrap(),
            sig
        );
    }

    #[test]
    fn strings_become_typst_string_literals() {
        assert_eq!(
            typst_str(JValue::from("#panic() \"x\" \\")),
            r##""#panic() \"x\" \\""##
        );
        assert_eq!(typst_str(JValue::from(12)), "\"12\"");
    }

    #[test]
    fn a_broken_template_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("packet.typ.j2"),
            "line one\n{% for x in %}\n",
        )
        .unwrap();
        let err = Renderer::new(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("packet.typ.j2:2:"), "{err}");
        // Valid jinja, but typst that does not compile.
        std::fs::write(dir.path().join("packet.typ.j2"), "= Title\n#let x = (\n").unwrap();
        let (canonical, sig) = signed();
        let err = Renderer::new(Some(dir.path()))
            .unwrap()
            .render(
                "r-1",
                &canonical,
                &sig,
                "SOC 2",
                &Links::of("u", "o", "r-1"),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("packet.typ.j2: the generated typst source does not compile"),
            "{err}"
        );
        assert!(err.contains("generated line 2"), "{err}");
    }
}
