//! Property-based fuzzing of every parser that reads input vouch does not
//! control: the records document and the admin batch, framework YAML,
//! `verify_body` (the auditor's verifier), and the PDF attachment reader
//! (`vouch verify FILE.pdf`).
//!
//! Inputs are real documents mutated (bytes flipped, cut, repeated, spliced
//! with hostile tokens) and, for each target, arbitrary bytes. No input may
//! panic, and the whole process's heap is capped: an input that makes a
//! parser allocate past [`HEAP_CAP`] aborts the run. `PROPTEST_CASES` sets the
//! cases per target (256 by default; `.ci/run` runs 2,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use proptest::test_runner::Config;

/// The most heap the whole test process may hold at once.
const HEAP_CAP: usize = 768 * 1024 * 1024;

#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, HEAP_CAP);

fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

/// Tokens that have broken parsers before: deep nesting, huge numbers,
/// invisible and bidi characters, duplicate keys, YAML aliases and tags,
/// PDF object syntax.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    ",",
    ":",
    "null",
    "1e999999",
    "-0",
    "18446744073709551616",
    "\"\u{202e}\"",
    "\u{200b}",
    "\u{feff}",
    "\"a\":1,\"a\":2",
    "&a [*a, *a, *a, *a]",
    "*a",
    "!!binary",
    "? ",
    "- ",
    "\n  ",
    "<<",
    "0 0 R",
    "obj",
    "endobj",
    "stream\n",
    "/Kids [",
    "/Names [",
    "/FlateDecode",
    "trailer",
];

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Delete(usize, usize),
    Repeat(usize, usize, usize),
    Splice(usize, &'static str, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Flip(at, b)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 1usize..64, 1usize..64).prop_map(|(at, n, k)| Edit::Repeat(at, n, k)),
        (
            any::<usize>(),
            proptest::sample::select(TOKENS),
            1usize..300
        )
            .prop_map(|(at, t, k)| Edit::Splice(at, t, k)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for e in edits {
        let len = out.len().max(1);
        match *e {
            Edit::Flip(at, b) => {
                if !out.is_empty() {
                    let i = at % out.len();
                    out[i] ^= b;
                }
            }
            Edit::Delete(at, n) => {
                let i = at % len;
                let end = (i + n).min(out.len());
                if i < end {
                    out.drain(i..end);
                }
            }
            Edit::Repeat(at, n, k) => {
                let i = (at % len).min(out.len());
                let end = (i + n).min(out.len());
                let piece = out[i..end].repeat(k);
                out.splice(i..i, piece);
            }
            Edit::Splice(at, token, k) => {
                let i = (at % len).min(out.len());
                out.splice(i..i, token.repeat(k).into_bytes());
            }
        }
    }
    out
}

/// `seed` mutated by up to eight edits, or (one case in eight) arbitrary bytes.
fn hostile(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        7 => proptest::collection::vec(edit(), 1..8).prop_map(move |e| apply(seed, &e)),
        1 => proptest::collection::vec(any::<u8>(), 0..4096),
    ]
}

// ---------------------------------------------------------------------------
// Records: the engine's document and the admin batch

const RECORDS: &[u8] = include_bytes!("../examples/records/full.json");
const BATCH: &[u8] = include_bytes!("../examples/import/initech.json");

proptest! {
    #![proptest_config(config())]

    #[test]
    fn records_parser_refuses_or_reads_without_panicking(bytes in hostile(RECORDS)) {
        if let Ok(doc) = vouch_engine::RecordsDocument::from_json_slice(&bytes) {
            // What is read is a document that serializes back.
            prop_assert!(serde_json::to_vec(&doc).is_ok());
        }
    }

    #[test]
    fn admin_batch_parser_refuses_or_reads_without_panicking(bytes in hostile(BATCH)) {
        let zones = vouch::zones::Catalogue::builtin().unwrap();
        let _ = vouch::import::parse(&bytes, &zones);
    }
}

// ---------------------------------------------------------------------------
// Framework YAML

proptest! {
    #![proptest_config(config())]

    #[test]
    fn framework_loader_refuses_or_reads_without_panicking(
        (file, bytes) in proptest::sample::select(vouch_engine::framework::BUILTIN.to_vec())
            .prop_flat_map(|(file, text)| hostile(text.as_bytes()).prop_map(move |b| (file, b)))
    ) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = vouch_engine::framework::parse_framework(file, &text);
    }
}

#[test]
fn framework_loader_survives_deep_nesting_and_alias_bombs() {
    let deep = format!(
        "framework: x\ncontrols: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_map = format!("framework: x\ncontrols:\n{}", "- ".repeat(100_000));
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..30 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    bomb.push_str("framework: x\ncontrols: *a29\n");
    for text in [deep, deep_map, bomb] {
        assert!(vouch_engine::framework::parse_framework("fuzz.yaml", &text).is_err());
    }
}

// ---------------------------------------------------------------------------
// verify_body: whatever it accepts is the signed packet, byte for byte

struct Signed {
    /// The packet's Sigstore bundle (which holds its DSSE envelope).
    bundle: Vec<u8>,
    body: Vec<u8>,
    canonical_sha256: String,
    keys: vouch_engine::keys::KeysDocument,
}

fn signed() -> &'static Signed {
    static SIGNED: std::sync::OnceLock<Signed> = std::sync::OnceLock::new();
    SIGNED.get_or_init(|| {
        use vouch_engine::keys::{KeysDocument, PublishedKey};
        use vouch_engine::signing::{body_from_parts, PacketSigner};
        let signer = PacketSigner::new(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
            "key-fuzz".into(),
        );
        let frameworks = vouch_engine::FrameworkSet::builtin().unwrap();
        let records = vouch_engine::RecordsDocument::from_json_slice(RECORDS).unwrap();
        let packet = vouch_engine::assemble(
            frameworks.get("soc2").unwrap(),
            &records,
            "2026-06-22T10:00:00Z".parse().unwrap(),
            None,
        )
        .unwrap();
        let s = signer.sign(packet).unwrap();
        use vouch_engine::attest;
        let st = attest::statement(&s, attest::Predicate::Vouch).unwrap();
        let bundle = serde_json::to_vec(&attest::bundle(&attest::envelope(&signer, &st))).unwrap();
        Signed {
            bundle,
            body: body_from_parts(Some("r-1"), &s.canonical, &s.signature),
            canonical_sha256: vouch_engine::signing::sha256_hex(&s.canonical),
            keys: KeysDocument::new(vec![PublishedKey::new(
                &signer.verifying_key(),
                signer.key_id(),
                None,
                None,
                None,
            )]),
        }
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn verify_body_accepts_nothing_but_the_signed_bytes(
        edits in proptest::collection::vec(edit(), 1..8)
    ) {
        let s = signed();
        let bytes = apply(&s.body, &edits);
        if let Ok(v) = vouch_engine::verify::verify_body(&bytes, &s.keys) {
            // Only edits outside the packet and the signature (whitespace
            // between the top-level members, the report id) may verify.
            prop_assert_eq!(&v.canonical_sha256, &s.canonical_sha256);
        }
    }

    #[test]
    fn verify_bundle_accepts_nothing_but_the_signed_statement(
        edits in proptest::collection::vec(edit(), 1..8)
    ) {
        let s = signed();
        let bytes = apply(&s.bundle, &edits);
        if let Ok(v) = vouch_engine::attest::verify_bundle(&bytes, &s.keys) {
            // Whitespace and member order may change; what was signed may not.
            prop_assert_eq!(&v.packet_sha256, &s.canonical_sha256);
            prop_assert_eq!(v.key_id.as_str(), "key-fuzz");
        }
    }

    #[test]
    fn verify_body_refuses_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(vouch_engine::verify::verify_body(&bytes, &signed().keys).is_err());
    }
}

// ---------------------------------------------------------------------------
// The PDF attachment reader

/// A PDF with `packet.json` and `signature.json` attached as the renderer
/// attaches them: an EmbeddedFiles name tree of file specifications with
/// Flate-compressed embedded-file streams.
fn pdf_seed() -> &'static [u8] {
    static PDF: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PDF.get_or_init(|| {
        use lopdf::{dictionary, Document, Object, Stream};
        let mut doc = Document::with_version("1.7");
        let file = |doc: &mut Document, name: &str, content: &[u8]| {
            let mut stream =
                Stream::new(dictionary! { "Type" => "EmbeddedFile" }, content.to_vec());
            stream.compress().unwrap();
            let ef = doc.add_object(stream);
            let spec = doc.add_object(dictionary! {
                "Type" => "Filespec",
                "F" => Object::string_literal(name),
                "UF" => Object::string_literal(name),
                "EF" => dictionary! { "F" => ef },
            });
            vec![Object::string_literal(name), Object::Reference(spec)]
        };
        let mut names = file(&mut doc, "packet.json", b"{\"schema_version\":\"1.0\"}");
        names.extend(file(
            &mut doc,
            "signature.json",
            b"{\"algorithm\":\"Ed25519\"}",
        ));
        let tree = doc.add_object(dictionary! { "Names" => names });
        let pages =
            doc.add_object(dictionary! { "Type" => "Pages", "Kids" => vec![], "Count" => 0 });
        let catalog = doc.add_object(dictionary! {
            "Type" => "Catalog",
            "Pages" => pages,
            "Names" => dictionary! { "EmbeddedFiles" => tree },
        });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        // The seed itself reads back, or the target fuzzes nothing useful.
        let (packet, _) = vouch::pdf::attachments(&out).unwrap();
        assert_eq!(packet, b"{\"schema_version\":\"1.0\"}");
        out
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pdf_attachment_reader_refuses_or_reads_within_bounds(
        edits in proptest::collection::vec(edit(), 1..8),
        arbitrary in proptest::option::weighted(0.1, proptest::collection::vec(any::<u8>(), 0..4096)),
    ) {
        let bytes = arbitrary.unwrap_or_else(|| apply(pdf_seed(), &edits));
        if let Ok((packet, signature)) = vouch::pdf::attachments(&bytes) {
            prop_assert!(packet.len() <= vouch::pdf::MAX_ATTACHMENT);
            prop_assert!(signature.len() <= vouch::pdf::MAX_ATTACHMENT);
        }
    }
}

#[test]
fn the_seeds_are_what_the_targets_expect() {
    // Each target mutates a document its parser accepts as it stands.
    assert!(vouch_engine::RecordsDocument::from_json_slice(RECORDS).is_ok());
    let zones = vouch::zones::Catalogue::builtin().unwrap();
    assert!(vouch::import::parse(BATCH, &zones).is_ok());
    for (file, text) in vouch_engine::framework::BUILTIN {
        let parsed = vouch_engine::framework::parse_framework(file, text);
        assert!(parsed.is_ok(), "{file}: {:?}", parsed.err());
    }
    assert!(vouch_engine::verify::verify_body(&signed().body, &signed().keys).is_ok());
    let _ = pdf_seed();
}
