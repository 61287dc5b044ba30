//! Reading the signed packet back out of a PDF, for `vouch verify FILE.pdf`.
//! The PDF may be anyone's: every walk and every decompression is bounded.

use anyhow::{Context, Result};

/// The attachments of a PDF rendition: (canonical packet bytes, signature object).
pub fn attachments(pdf: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let options = lopdf::LoadOptions {
        max_decompressed_size: Some(MAX_ATTACHMENT),
        ..Default::default()
    };
    let doc = lopdf::Document::load_mem_with_options(pdf, options).context("not a readable PDF")?;
    let catalog = doc.catalog()?;
    let names = doc.dereference(catalog.get(b"Names")?)?.1.as_dict()?;
    let root = names.get(b"EmbeddedFiles")?;
    let mut found = Attachments::default();
    walk_name_tree(&doc, root, &mut found)?;
    Ok((
        found
            .packet
            .context("the PDF has no packet.json attachment")?,
        found
            .signature
            .context("the PDF has no signature.json attachment")?,
    ))
}

/// The most a PDF attachment (or any stream of the PDF) may decompress to.
pub const MAX_ATTACHMENT: usize = 16 * 1024 * 1024;
/// The most name-tree nodes read from a PDF.
const MAX_NODES: usize = 1024;
/// The deepest name tree read.
const MAX_DEPTH: usize = 32;

#[derive(Default)]
struct Attachments {
    packet: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    nodes: usize,
    visited: std::collections::HashSet<lopdf::ObjectId>,
}

/// Walks the embedded-files name tree: each node once (a tree whose kids
/// repeat a reference is a DAG that would otherwise be walked exponentially),
/// at most [`MAX_NODES`] nodes and [`MAX_DEPTH`] levels; only `packet.json`
/// and `signature.json` are decompressed (each at most [`MAX_ATTACHMENT`]),
/// and a second attachment of either name is refused.
fn walk_name_tree(
    doc: &lopdf::Document,
    root: &lopdf::Object,
    found: &mut Attachments,
) -> Result<()> {
    let mut stack = vec![(root, 0usize)];
    while let Some((obj, depth)) = stack.pop() {
        if let lopdf::Object::Reference(id) = obj {
            if !found.visited.insert(*id) {
                continue;
            }
        }
        found.nodes += 1;
        if found.nodes > MAX_NODES {
            anyhow::bail!("the PDF's attachment tree has more than {MAX_NODES} nodes");
        }
        if depth > MAX_DEPTH {
            anyhow::bail!("the PDF's attachment tree is deeper than {MAX_DEPTH} levels");
        }
        let node = doc.dereference(obj)?.1.as_dict()?;
        if let Ok(kids) = node.get(b"Kids").and_then(|k| k.as_array()) {
            for kid in kids.iter().rev() {
                stack.push((kid, depth + 1));
            }
        }
        let Ok(names) = node.get(b"Names").and_then(|n| n.as_array()) else {
            continue;
        };
        for pair in names.chunks(2) {
            let [name, spec] = pair else { continue };
            let name = doc.dereference(name)?.1.as_str()?;
            let slot = match name {
                b"packet.json" => &mut found.packet,
                b"signature.json" => &mut found.signature,
                _ => continue,
            };
            if slot.is_some() {
                anyhow::bail!(
                    "the PDF has two {} attachments",
                    String::from_utf8_lossy(name)
                );
            }
            let spec = doc.dereference(spec)?.1.as_dict()?;
            let ef = doc.dereference(spec.get(b"EF")?)?.1.as_dict()?;
            let stream = doc.dereference(ef.get(b"F")?)?.1.as_stream()?;
            let content = if stream.dict.has(b"Filter") {
                stream
                    .decompressed_content_with_limit(MAX_ATTACHMENT)
                    .context("an attachment does not decompress within the limit")?
            } else {
                stream.content.clone()
            };
            *slot = Some(content);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdf_without_attachments_is_refused() {
        assert!(attachments(b"%PDF-1.7 nonsense").is_err());
    }

    /// A PDF whose embedded-files tree is `root`, with `extra` objects.
    fn pdf_with_tree(build: impl FnOnce(&mut lopdf::Document) -> lopdf::Object) -> Vec<u8> {
        use lopdf::{dictionary, Document, Object};
        let mut doc = Document::with_version("1.7");
        let tree = build(&mut doc);
        let names = doc.add_object(dictionary! { "EmbeddedFiles" => tree });
        let pages = doc.add_object(
            dictionary! { "Type" => "Pages", "Kids" => Vec::<Object>::new(), "Count" => 0 },
        );
        let catalog =
            doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages, "Names" => names });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    fn attachment(doc: &mut lopdf::Document, content: Vec<u8>, compress: bool) -> lopdf::Object {
        use lopdf::{dictionary, Stream};
        let mut stream = Stream::new(dictionary! { "Type" => "EmbeddedFile" }, content);
        if compress {
            stream.compress().unwrap();
        }
        let f = doc.add_object(stream);
        let spec =
            doc.add_object(dictionary! { "Type" => "Filespec", "EF" => dictionary! { "F" => f } });
        lopdf::Object::Reference(spec)
    }

    #[test]
    fn a_wide_shared_name_tree_is_walked_once_per_node() {
        use lopdf::{dictionary, Object};
        // Twelve levels, each node's 64 kids all the same node: 64^12 visits
        // if each reference were followed, 12 with each node visited once.
        let pdf = pdf_with_tree(|doc| {
            let spec = attachment(doc, b"{}".to_vec(), false);
            let mut node = doc.add_object(dictionary! {
                "Names" => vec![Object::string_literal("packet.json"), spec],
            });
            for _ in 0..12 {
                node = doc.add_object(dictionary! { "Kids" => vec![Object::Reference(node); 64] });
            }
            Object::Reference(node)
        });
        let started = std::time::Instant::now();
        let err = attachments(&pdf).unwrap_err();
        assert!(err.to_string().contains("signature.json"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_compression_bomb_is_refused_within_the_limit() {
        use lopdf::{dictionary, Object};
        let pdf = pdf_with_tree(|doc| {
            let bomb = attachment(doc, vec![b' '; 64 * 1024 * 1024], true);
            Object::Dictionary(dictionary! {
                "Names" => vec![Object::string_literal("packet.json"), bomb],
            })
        });
        assert!(pdf.len() < 1024 * 1024, "the bomb is small: {}", pdf.len());
        let err = attachments(&pdf).unwrap_err();
        assert!(format!("{err:#}").contains("limit"), "{err:#}");
    }

    #[test]
    fn a_second_packet_attachment_is_refused() {
        use lopdf::{dictionary, Object};
        let pdf = pdf_with_tree(|doc| {
            let a = attachment(doc, b"{}".to_vec(), false);
            let b = attachment(doc, b"{}".to_vec(), false);
            let s = attachment(doc, b"{}".to_vec(), false);
            Object::Dictionary(dictionary! {
                "Names" => vec![
                    Object::string_literal("packet.json"), a,
                    Object::string_literal("packet.json"), b,
                    Object::string_literal("signature.json"), s,
                ],
            })
        });
        let err = attachments(&pdf).unwrap_err();
        assert!(err.to_string().contains("two packet.json"), "{err}");
    }
}
