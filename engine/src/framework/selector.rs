//! JSONPath selectors and durations as written in framework files.
//!
//! Both keep the text the author wrote (for packets, messages and the schema)
//! beside the parsed form. Deserialization never fails on a string; the loader
//! collects every parse problem with its position instead of stopping at the first.

use std::fmt;
use std::time::Duration;

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSONPath expression as written in YAML (`services[*].tls_enabled`).
///
/// Paths are written without the leading `$`: `services[*].tls_enabled` is
/// evaluated as `$.services[*].tls_enabled` from the document root, or from the
/// resource when the control has a `scope`. A leading `$` is accepted too.
#[derive(Clone)]
pub struct Selector {
    text: String,
    compiled: Result<JpQuery, String>,
    /// The member names of a path that is nothing else (`backups.retention_days`):
    /// selected by lookup, without the general JSONPath machinery. The
    /// property test `plain_paths_select_what_jsonpath_selects` holds the two
    /// to the same answers.
    names: Option<Vec<String>>,
    /// For such a path, its location as messages write it (`backups.retention_days`).
    readable: Option<String>,
    /// The path split at its first `[*]` ([`Selector::split_wildcard`]),
    /// parsed once with the framework instead of at every resource.
    split: Option<Box<(Selector, Selector)>>,
    /// For such a path read on the resources of a scope, the position of
    /// its first name among the names the scope's paths begin with
    /// ([`crate::framework::Scope::first_names`]): each resource's member of that
    /// name is found once for every control judging it, not once per check.
    /// Set when the framework is loaded.
    slot: Option<u16>,
}

/// One value a selector picked, with its location (`$['services'][0]['tls_enabled']`).
#[derive(Debug, Clone)]
pub struct Selected<'a> {
    pub value: &'a Value,
    pub location: String,
}

impl Selector {
    pub fn parse(text: &str) -> Self {
        let trimmed = text.trim();
        let (full, added) = if trimmed.starts_with('$') {
            (trimmed.to_owned(), 0)
        } else if trimmed.starts_with('[') {
            (format!("${trimmed}"), 1)
        } else {
            (format!("$.{trimmed}"), 2)
        };
        let compiled = if trimmed.is_empty() {
            Err("empty JSONPath".to_owned())
        } else {
            parse_json_path(&full).map_err(|e| explain(&e.to_string(), added))
        };
        let names = compiled.as_ref().ok().and_then(|_| member_names(trimmed));
        Selector {
            split: split_at_wildcard(trimmed).map(Box::new),
            text: text.to_owned(),
            compiled,
            readable: names.as_ref().map(|n| n.join(".")),
            names,
            slot: None,
        }
    }

    /// The expression as its author wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Splits `services[*].auth_required` at its first `[*]` into the path of
    /// the array (`services`) and the path within each item
    /// (`auth_required`), so that an item lacking the field is seen as missing
    /// rather than silently not selected. `None` when there is no `[*]`
    /// followed by more path.
    pub fn split_wildcard(&self) -> Option<&(Selector, Selector)> {
        self.split.as_deref()
    }

    /// The member names of a path that is nothing else
    /// (`backups.retention_days`), which selects at most one value.
    pub fn names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// For a path of member names read on a scope's resources, the position
    /// of its first name in the scope's [`crate::framework::Scope::first_names`];
    /// `None` for any other path.
    pub(crate) fn slot(&self) -> Option<u16> {
        self.slot
    }

    /// Numbers a path of member names read on a scope's resources:
    /// `first_names`, sorted, holds its first name.
    pub(crate) fn number(&mut self, first_names: &[String]) {
        self.slot = self
            .names
            .as_ref()
            .and_then(|n| first_names.binary_search(&n[0]).ok())
            .and_then(|i| u16::try_from(i).ok());
    }

    /// For a path of member names only, where the value it selects lies, as
    /// messages write it: `backups.retention_days`.
    pub fn readable_location(&self) -> Option<&str> {
        self.readable.as_deref()
    }

    /// The parse error, if the text is not a JSONPath expression.
    pub fn error(&self) -> Option<&str> {
        self.compiled.as_ref().err().map(String::as_str)
    }

    /// Evaluates against `root`. An expression that did not parse selects nothing
    /// (the loader refuses such frameworks before they are ever evaluated).
    pub fn select<'a>(&self, root: &'a Value) -> Result<Vec<Selected<'a>>, String> {
        let query = self.compiled.as_ref().map_err(Clone::clone)?;
        if let Some(names) = &self.names {
            return Ok(lookup(names, root).into_iter().collect());
        }
        let found = js_path_process(query, root).map_err(|e| e.to_string())?;
        Ok(found
            .into_iter()
            .map(|r| Selected {
                value: r.val,
                location: r.path,
            })
            .collect())
    }
}

/// See [`Selector::split_wildcard`].
fn split_at_wildcard(text: &str) -> Option<(Selector, Selector)> {
    let i = text.find("[*]")?;
    let (array, rest) = (&text[..i], &text[i + 3..]);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    if array.is_empty() || array == "$" || rest.is_empty() {
        return None;
    }
    let (a, r) = (Selector::parse(array), Selector::parse(rest));
    (a.error().is_none() && r.error().is_none()).then_some((a, r))
}

/// `backups.retention_days` (or `$.backups.retention_days`) as its member
/// names; `None` for any path with more than plain names in it.
fn member_names(text: &str) -> Option<Vec<String>> {
    let path = text.strip_prefix("$.").unwrap_or(text);
    let plain = |n: &str| {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let names: Vec<String> = path.split('.').map(str::to_owned).collect();
    names.iter().all(|n| plain(n)).then_some(names)
}

/// What the name selectors `names` select from `root` (RFC 9535 §2.3.1: a
/// member of an object, nothing from anything else), with its location in
/// the JSONPath library's notation.
fn lookup<'a>(names: &[String], root: &'a Value) -> Option<Selected<'a>> {
    Some(Selected {
        value: member(names, root)?,
        location: member_location(names),
    })
}

/// The value at member names `names` in `root`: each a member of an object.
pub(crate) fn member<'a>(names: &[String], root: &'a Value) -> Option<&'a Value> {
    names
        .iter()
        .try_fold(root, |value, name| value.as_object()?.get(name))
}

/// The location of member names `names` in the JSONPath library's notation:
/// `$['backups']['retention_days']`.
pub(crate) fn member_location(names: &[String]) -> String {
    let mut location = String::with_capacity(1 + names.iter().map(|n| n.len() + 4).sum::<usize>());
    location.push('$');
    for name in names {
        location.push_str("['");
        location.push_str(name);
        location.push_str("']");
    }
    location
}

/// Turns the parser's multi-line report (`--> 1:12 ... = expected string`) into
/// "expected string at character 10" of what the author wrote.
fn explain(report: &str, added: usize) -> String {
    let column = report
        .split("--> 1:")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok());
    let expected = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .map(str::to_owned);
    match (expected, column) {
        (Some(what), Some(col)) => {
            format!("{what} at character {}", col.saturating_sub(added).max(1))
        }
        _ => report
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({:?})", self.text)
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Selector::parse(&s))
    }
}

impl schemars::JsonSchema for Selector {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JsonPath".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "JSONPath (RFC 9535) without the leading `$`, e.g. `services[*].tls_enabled`",
        })
    }
}

/// A duration as written in YAML: `36h`, `7d`, `90days`, `6months`.
#[derive(Clone, PartialEq)]
pub struct Age {
    text: String,
    parsed: Result<Duration, String>,
}

impl Age {
    pub fn parse(text: &str) -> Self {
        Age {
            text: text.to_owned(),
            parsed: humantime::parse_duration(text.trim()).map_err(|e| e.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub fn error(&self) -> Option<&str> {
        self.parsed.as_ref().err().map(String::as_str)
    }
    pub fn duration(&self) -> Option<Duration> {
        self.parsed.as_ref().ok().copied()
    }
}

impl fmt::Debug for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Age({:?})", self.text)
    }
}

impl Serialize for Age {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Age::parse(&s))
    }
}

impl schemars::JsonSchema for Age {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Age".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+ ?[a-z]+$",
            "description": "A duration: `36h`, `7d`, `90days`, `6months` (a month is 30.44 days)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_style_paths_select_from_the_root() {
        let doc = json!({"services": [{"tls_enabled": true}, {"tls_enabled": false}]});
        let sel = Selector::parse("services[*].tls_enabled");
        let got = sel.select(&doc).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].value, &json!(false));
        assert_eq!(got[1].location, "$['services'][1]['tls_enabled']");
    }

    #[test]
    fn wildcards_split_into_array_and_item_path() {
        let sel = Selector::parse("services[*].backups.retention_days");
        let (a, r) = sel.split_wildcard().unwrap();
        assert_eq!(
            (a.as_str(), r.as_str()),
            ("services", "backups.retention_days")
        );
        let sel = Selector::parse("services[*].zones[*]");
        let (a, r) = sel.split_wildcard().unwrap();
        assert_eq!((a.as_str(), r.as_str()), ("services", "zones[*]"));
        assert!(Selector::parse("services[*]").split_wildcard().is_none());
        assert!(Selector::parse("audit_log.entry_count")
            .split_wildcard()
            .is_none());
    }

    /// Documents over a few member names, with every kind of value where a
    /// name may lead: objects, lists, null, scalars.
    fn documents() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("a|b|c_d|e1", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The lookup of plain member names selects exactly what the
        /// JSONPath library selects for the same path, at the same location.
        #[test]
        fn plain_paths_select_what_jsonpath_selects(
            doc in documents(),
            names in proptest::collection::vec("a|b|c_d|e1", 1..4),
            dollar in proptest::bool::ANY,
        ) {
            let text = format!("{}{}", if dollar { "$." } else { "" }, names.join("."));
            let sel = Selector::parse(&text);
            proptest::prop_assert!(sel.names.is_some(), "{text} is plain");
            let fast: Vec<(String, Value)> = sel
                .select(&doc)
                .unwrap()
                .into_iter()
                .map(|s| (s.location, s.value.clone()))
                .collect();
            let query = sel.compiled.as_ref().unwrap();
            let general: Vec<(String, Value)> = js_path_process(query, &doc)
                .unwrap()
                .into_iter()
                .map(|r| (r.path, r.val.clone()))
                .collect();
            proptest::prop_assert_eq!(fast, general, "{} on {}", text, doc);
        }
    }

    #[test]
    fn only_plain_member_chains_take_the_lookup() {
        for plain in ["tls_enabled", "backups.retention_days", "$.a.b_2"] {
            assert!(Selector::parse(plain).names.is_some(), "{plain}");
        }
        for general in [
            "services[*].tls_enabled",
            "zones[0]",
            "$",
            "a..b",
            "['a b']",
            "a.*",
            "1a",
            "a.b[?@.c]",
        ] {
            assert!(Selector::parse(general).names.is_none(), "{general}");
        }
    }

    #[test]
    fn bad_paths_and_ages_say_why() {
        assert!(Selector::parse("services[*.tls").error().is_some());
        assert!(Selector::parse("").error().is_some());
        assert!(Age::parse("soon").error().is_some());
        assert_eq!(
            Age::parse("36h").duration(),
            Some(Duration::from_secs(36 * 3600))
        );
    }
}
