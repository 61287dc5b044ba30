//! Where each node of a YAML document starts, by its path.
//!
//! serde gives us typed values and the path of an error, but not where that path
//! sits in the file. This index, built from yaml-rust2's marked events, answers
//! "which line and column is `controls[3].checks[0]`?" so that every problem can
//! be reported as `file:line:column`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(k: &str) -> Self {
        Seg::Key(k.to_owned())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// Renders a path as `controls[3].checks[0].all_true`.
pub fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Pos {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// The start of every node (and of every mapping key) of a YAML document.
#[derive(Debug, Default)]
pub struct PositionIndex {
    values: HashMap<Vec<Seg>, Pos>,
    keys: HashMap<Vec<Seg>, Pos>,
}

/// The deepest nesting of mappings and sequences a framework file may have:
/// the built-in frameworks nest six levels.
pub const MAX_DEPTH: usize = 64;

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub message: String,
    pub pos: Pos,
}

impl PositionIndex {
    /// Indexes `text`; a syntax error is returned with its position.
    ///
    /// The parser's events are read one by one (yaml-rust2's own `load`
    /// recurses once per level of nesting, so that a file of `[[[[...` a
    /// hundred thousand deep overflowed the stack); nesting deeper than
    /// [`MAX_DEPTH`] is refused.
    pub fn build(text: &str) -> Result<Self, SyntaxError> {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        let mut depth = 0usize;
        loop {
            let (ev, mark) = parser.next_token().map_err(|e| SyntaxError {
                message: e.info().to_owned(),
                pos: (*e.marker()).into(),
            })?;
            match ev {
                Event::StreamEnd => break,
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(SyntaxError {
                            message: format!("nested deeper than {MAX_DEPTH} levels"),
                            pos: mark.into(),
                        });
                    }
                }
                Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
                _ => {}
            }
            builder.on_event(ev, mark);
        }
        Ok(builder.index)
    }

    /// Where the value at `path` starts, or the nearest ancestor that exists.
    pub fn value(&self, path: &[Seg]) -> Pos {
        let mut p = path.to_vec();
        loop {
            if let Some(pos) = self.values.get(&p) {
                return *pos;
            }
            if p.pop().is_none() {
                return Pos { line: 1, column: 1 };
            }
        }
    }

    /// Where the key of the mapping entry at `path` starts (falls back to [`Self::value`]).
    pub fn key(&self, path: &[Seg]) -> Pos {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

enum Frame {
    Seq { next: usize },
    Map { pending_key: Option<String> },
}

#[derive(Default)]
struct Builder {
    index: PositionIndex,
    path: Vec<Seg>,
    stack: Vec<Frame>,
}

impl Builder {
    /// Called when a node starts; returns whether the node is a mapping key.
    fn begin_node(&mut self, mark: Marker, key_text: Option<&str>) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Map { pending_key }) if pending_key.is_none() => {
                // This node is a key.
                let key = key_text.unwrap_or("?").to_owned();
                let mut p = self.path.clone();
                p.push(Seg::Key(key.clone()));
                self.index.keys.insert(p, mark.into());
                *pending_key = Some(key);
                return true;
            }
            Some(Frame::Map { pending_key }) => {
                let key = pending_key.take().unwrap_or_default();
                self.path.push(Seg::Key(key));
            }
            Some(Frame::Seq { next }) => {
                self.path.push(Seg::Index(*next));
                *next += 1;
            }
            None => {}
        }
        self.index.values.insert(self.path.clone(), mark.into());
        false
    }

    /// Called when a node ends (a scalar right away, a collection at its end event).
    fn end_node(&mut self) {
        if matches!(
            self.stack.last(),
            Some(Frame::Map { .. }) | Some(Frame::Seq { .. })
        ) {
            self.path.pop();
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) if !self.begin_node(mark, Some(&text)) => self.end_node(),
            Event::Alias(_) if !self.begin_node(mark, None) => self.end_node(),
            Event::SequenceStart(..) => {
                self.begin_node(mark, None);
                self.stack.push(Frame::Seq { next: 0 });
            }
            Event::MappingStart(..) => {
                self.begin_node(mark, None);
                self.stack.push(Frame::Map { pending_key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
                self.end_node();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let ok = format!(
            "a: {}1{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(PositionIndex::build(&ok).is_ok());
        for deep in [
            format!("a: {}", "[".repeat(200_000)),
            "- ".repeat(200_000),
            "{a: ".repeat(200_000),
        ] {
            let e = PositionIndex::build(&deep).unwrap_err();
            // The scanner bounds flow nesting itself; the rest is ours.
            assert!(
                e.message.contains("nested deeper") || e.message.contains("recursion limit"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn finds_nested_nodes() {
        let text = "a: 1\nlist:\n  - x: 2\n    y: [3, 4]\n  - z\n";
        let idx = PositionIndex::build(text).unwrap();
        let p = |segs: Vec<Seg>| idx.value(&segs);
        assert_eq!(p(vec!["a".into()]), Pos { line: 1, column: 4 });
        assert_eq!(
            p(vec!["list".into(), 0.into(), "y".into(), 1.into()]),
            Pos {
                line: 4,
                column: 12
            }
        );
        assert_eq!(p(vec!["list".into(), 1.into()]), Pos { line: 5, column: 5 });
        assert_eq!(
            idx.key(&["list".into(), 0.into(), "y".into()]),
            Pos { line: 4, column: 5 }
        );
    }
}
