//! The value a check reads: a resource as the records hold it, or a resource
//! as it was during one interval of its history.
//!
//! A resource during an interval is its own fields with the interval's
//! configuration in their place ([`merged`]). Building that value copies the
//! resource; a path of plain member names (`backups.retention_days`), which
//! is nearly every path a framework writes, is instead looked up in the
//! interval and the resource together ([`View::lookup`]), and the merged
//! value is built only for the paths that need the general JSONPath
//! machinery, or that end on an object of each to merge. The property test
//! `overlay_lookup_is_the_merged_value` holds the two to the same answers.

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::framework::selector::member;

/// What a check reads on one resource.
#[derive(Clone, Copy)]
pub(super) enum View<'a> {
    /// A value of the records document as it is.
    Plain(&'a Value),
    /// A resource of a scope, as the records hold it.
    Resource(&'a Table<'a>),
    /// `resource` during `interval`, an object of its history ([`View::during`]).
    During {
        resource: &'a Table<'a>,
        interval: &'a Table<'a>,
        merged: &'a OnceCell<Rc<Value>>,
        make: &'a dyn Fn() -> Rc<Value>,
    },
}

/// What a path of member names finds.
#[derive(Debug, PartialEq)]
pub(super) enum Lookup<'a> {
    Found(&'a Value),
    Nothing,
    /// An object of the resource with an object of the interval in its
    /// place: the answer is their merge, which only the merged value holds.
    Merge,
}

/// A resource of a scope (or an interval of its history) with its members
/// at the names its scope's paths begin with ([`Scope::first_names`]),
/// found in one pass over both sorted lists, then read by position for a
/// numbered path (`Selector::slot`): every control over the scope reads
/// the resource's members without searching its fields again.
///
/// [`Scope::first_names`]: crate::framework::Scope::first_names
pub(super) struct Table<'a> {
    of: &'a Value,
    names: &'a [String],
    found: Vec<Option<&'a Value>>,
}

impl<'a> Table<'a> {
    /// The table of `of` at `names`, sorted and distinct.
    pub(super) fn new(of: &'a Value, names: &'a [String]) -> Self {
        Table {
            of,
            names,
            found: find(of, names),
        }
    }

    /// The object (or whatever value) the table is of.
    pub(super) fn value(&self) -> &'a Value {
        self.of
    }

    /// The names it holds the members at.
    pub(super) fn names(&self) -> &'a [String] {
        self.names
    }

    /// Member `name` of the object, for a path numbered `slot`: read from
    /// the table when `slot` is the position of `name` in its names,
    /// searched for otherwise (a path numbered for another scope's names,
    /// or not numbered).
    fn member(&self, name: &str, slot: Option<u16>) -> Option<&'a Value> {
        if let Some(i) = slot.map(usize::from) {
            if self.names.get(i).is_some_and(|n| n == name) {
                return self.found[i];
            }
        }
        self.of.as_object()?.get(name)
    }
}

impl<'a> View<'a> {
    /// `resource` during `interval` of its history; `make` builds
    /// [`merged`] of the two, kept in `merged` once a path needs it. An
    /// interval that is not an object holds no configuration and is judged
    /// as it is.
    pub(super) fn during(
        resource: &'a Table<'a>,
        interval: &'a Table<'a>,
        merged: &'a OnceCell<Rc<Value>>,
        make: &'a dyn Fn() -> Rc<Value>,
    ) -> Self {
        match interval.of {
            Value::Object(_) => View::During {
                resource,
                interval,
                merged,
                make,
            },
            other => View::Plain(other),
        }
    }

    /// The whole value, merged if need be.
    pub(super) fn whole(&self) -> &'a Value {
        match *self {
            View::Plain(v) => v,
            View::Resource(table) => table.of,
            View::During { merged, make, .. } => merged.get_or_init(make),
        }
    }

    /// The value at member names `names`, numbered `slot` if the path is
    /// read on a scope's resources ([`Table`]), without building the merged
    /// value.
    pub(super) fn lookup(&self, names: &[String], slot: Option<u16>) -> Lookup<'a> {
        let found = |v: Option<&'a Value>| v.map_or(Lookup::Nothing, Lookup::Found);
        let (resource, interval) = match *self {
            View::Plain(v) => return found(member(names, v)),
            View::Resource(table) => {
                let Some((first, rest)) = names.split_first() else {
                    return Lookup::Found(table.of);
                };
                return found(table.member(first, slot).and_then(|v| member(rest, v)));
            }
            View::During {
                resource, interval, ..
            } => (resource, interval),
        };
        let child = |v: Option<&'a Value>, name: &str| v?.as_object()?.get(name);
        // Name by name, the merged value is the interval's, or the
        // resource's where the interval has none, or their merge where both
        // are objects: below a value of the interval that is not an object,
        // the resource is not read. At the top, the interval's bounds and
        // the resource's history are left out.
        let (mut config, mut own) = (Some(interval.of), Some(resource.of));
        for (depth, name) in names.iter().enumerate() {
            let top = depth == 0;
            config = match name.as_str() {
                "from" | "to" if top => None,
                _ if top => interval.member(name, slot),
                _ => child(config, name),
            };
            own = match config {
                Some(c) if !c.is_object() => None,
                _ if top && name == "history" => None,
                _ if top => resource.member(name, slot),
                _ => child(own, name),
            };
        }
        match (own, config) {
            (Some(Value::Object(_)), Some(Value::Object(_))) => Lookup::Merge,
            (_, Some(v)) | (Some(v), None) => Lookup::Found(v),
            (None, None) => Lookup::Nothing,
        }
    }
}

/// The members at the names, by one merge of the two sorted lists: an
/// object's members iterate in the order of their names (serde_json's
/// map is a `BTreeMap`; the test `object_members_iterate_sorted` fails
/// if a feature of the build makes it keep insertion order instead).
fn find<'a>(of: &'a Value, names: &[String]) -> Vec<Option<&'a Value>> {
    let mut found = vec![None; names.len()];
    let Value::Object(members) = of else {
        return found;
    };
    let (mut i, mut members) = (0, members.iter());
    let mut member = members.next();
    while let (Some(name), Some((key, value))) = (names.get(i), member) {
        match name.as_str().cmp(key.as_str()) {
            Ordering::Less => i += 1,
            Ordering::Greater => member = members.next(),
            Ordering::Equal => {
                found[i] = Some(value);
                i += 1;
                member = members.next();
            }
        }
    }
    found
}

/// The resource as it was during one interval of its history: its own
/// fields, with the interval's configuration in their place (objects merged
/// field by field), without the history itself.
pub(super) fn merged(resource: &Value, interval: &Value) -> Value {
    /// Sets `k` to `v` in `into`, merging objects field by field.
    fn overlay(into: &mut Map<String, Value>, k: &str, v: &Value) {
        match (into.get_mut(k), v) {
            (Some(Value::Object(slot)), Value::Object(sub)) => {
                for (k, v) in sub {
                    overlay(slot, k, v);
                }
            }
            _ => {
                into.insert(k.to_owned(), v.clone());
            }
        }
    }
    // An interval that is not an object holds no configuration: judged as
    // it is, it is missing evidence (never the resource's own fields).
    let Value::Object(config) = interval else {
        return interval.clone();
    };
    let config = config
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "from" | "to"));
    // Field by field, leaving out the history: cloning the resource whole
    // would copy every interval once per interval.
    let mut out: Map<String, Value> = match resource {
        Value::Object(own) => own
            .iter()
            .filter(|(k, _)| k.as_str() != "history")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    };
    for (k, v) in config {
        overlay(&mut out, k, v);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::selector::member_location;
    use crate::framework::Selector;
    use proptest::prelude::*;
    use serde_json::json;

    /// Values over a few member names, the bounds and the history among
    /// them, with objects, lists, null and scalars where a name may lead.
    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0..3i32).prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..2).prop_map(Value::Array),
                proptest::collection::btree_map("a|b|from|history", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A scope's first names drawn from the same names, sorted and
    /// distinct (`first_names`), and the slot a path beginning with `first`
    /// is given: its position there, or any position when it is not there
    /// (a path numbered for another scope).
    fn numbered(first: &str, mut firsts: Vec<String>, other: u16) -> (Vec<String>, Option<u16>) {
        firsts.sort();
        firsts.dedup();
        let slot = match firsts.binary_search_by(|n| n.as_str().cmp(first)) {
            Ok(i) => u16::try_from(i).ok(),
            Err(_) => Some(other),
        };
        (firsts, slot)
    }

    fn firsts() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec("a|b|from|history|to", 0..5)
    }

    proptest! {
        /// Looking a path of names up in the resource and the interval
        /// together, through their tables, finds what the path selects on
        /// the merged value, or says that only the merged value holds the
        /// answer.
        #[test]
        fn overlay_lookup_is_the_merged_value(
            resource in values(),
            interval in values(),
            names in proptest::collection::vec("a|b|from|history", 1..4),
            firsts in firsts(),
            other in 0..6u16,
            numbered_path in any::<bool>(),
        ) {
            let (firsts, slot) = numbered(&names[0], firsts, other);
            let slot = slot.filter(|_| numbered_path);
            let whole = merged(&resource, &interval);
            let make = || Rc::new(merged(&resource, &interval));
            let cell = OnceCell::new();
            let (own, config) = (Table::new(&resource, &firsts), Table::new(&interval, &firsts));
            let view = View::during(&own, &config, &cell, &make);
            let path = Selector::parse(&names.join("."));
            let expected: Vec<(String, Value)> = path
                .select(&whole)
                .unwrap()
                .into_iter()
                .map(|s| (s.location, s.value.clone()))
                .collect();
            match view.lookup(&names, slot) {
                Lookup::Found(v) => prop_assert_eq!(
                    vec![(member_location(&names), v.clone())],
                    expected.clone()
                ),
                Lookup::Nothing => prop_assert!(expected.is_empty()),
                Lookup::Merge => prop_assert!(
                    expected.len() == 1 && expected[0].1.is_object(),
                    "a merge is only ever of two objects"
                ),
            }
            prop_assert!(cell.get().is_none(), "a lookup never builds the merged value");
            prop_assert_eq!(view.whole(), &whole);
        }

        /// A resource's table finds what the path selects on the resource,
        /// whichever slot the path was given.
        #[test]
        fn table_lookup_is_the_plain_lookup(
            resource in values(),
            names in proptest::collection::vec("a|b|from|history", 1..4),
            firsts in firsts(),
            other in 0..6u16,
            numbered_path in any::<bool>(),
        ) {
            let (firsts, slot) = numbered(&names[0], firsts, other);
            let table = Table::new(&resource, &firsts);
            let view = View::Resource(&table);
            let expected = View::Plain(&resource).lookup(&names, None);
            prop_assert_eq!(view.lookup(&names, slot.filter(|_| numbered_path)), expected);
            prop_assert_eq!(view.whole(), &resource);
        }
    }

    /// The table's one pass over an object's members relies on their order.
    #[test]
    fn object_members_iterate_sorted() {
        let mut members = Map::new();
        for name in ["zones", "backups", "tls_enabled", "a", "_b", "B"] {
            members.insert(name.to_owned(), Value::Null);
        }
        let keys: Vec<&String> = members.keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn the_merged_value_is_built_only_for_a_merge_or_a_general_path() {
        let resource = json!({"backups": {"retention_days": 7, "zone": "a"}, "history": []});
        let interval = json!({"from": "x", "to": "y", "backups": {"retention_days": 30}});
        let builds = std::cell::Cell::new(0);
        let make = || {
            builds.set(builds.get() + 1);
            Rc::new(merged(&resource, &interval))
        };
        let cell = OnceCell::new();
        let firsts = ["backups".to_owned(), "history".to_owned()];
        let (own, config) = (
            Table::new(&resource, &firsts),
            Table::new(&interval, &firsts),
        );
        let view = View::during(&own, &config, &cell, &make);
        let names = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            view.lookup(&names("backups.retention_days"), Some(0)),
            Lookup::Found(&json!(30))
        );
        assert_eq!(
            view.lookup(&names("backups.zone"), Some(0)),
            Lookup::Found(&json!("a"))
        );
        assert_eq!(view.lookup(&names("history"), Some(1)), Lookup::Nothing);
        assert_eq!(view.lookup(&names("from"), None), Lookup::Nothing);
        assert_eq!(builds.get(), 0);
        assert_eq!(view.lookup(&names("backups"), Some(0)), Lookup::Merge);
        assert_eq!(
            view.whole()["backups"],
            json!({"retention_days": 30, "zone": "a"})
        );
        view.whole();
        assert_eq!(builds.get(), 1, "built once, then kept");
    }
}
