//! vouch's canonical writer against olpc-cjson, the reference: for arbitrary
//! JSON values (strings with quotes, backslashes, control characters,
//! decomposed accents and emoji; keys that sort differently once written, or
//! collide once normalized; floats), the same bytes or, for both, an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Map, Value};
use vouch_engine::canonical::{olpc_reference_bytes, to_canonical_bytes};

fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "\\PC{0,8}",
        2 => "[ -#a-c\\\\]{0,3}",
        1 => Just("\"".to_owned()),
        1 => Just("\\".to_owned()),
        1 => Just("\u{0}\u{1}\t\n\r\u{1f}\u{7f}".to_owned()),
        1 => Just("e\u{301}".to_owned()),
        1 => Just("\u{e9}".to_owned()),
        1 => Just("\u{1F600}\u{FE0F}\u{200D}".to_owned()),
        1 => Just("\u{2028}\u{FFFF}\u{10FFFF}".to_owned()),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|v| v.concat())
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        text().prop_map(Value::String),
        (-1e6f64..1e6).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn the_writer_writes_olpc_cjson_bytes(v in value()) {
        match (to_canonical_bytes(&v), olpc_reference_bytes(&v)) {
            (Ok(ours), Ok(reference)) => prop_assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&reference)
            ),
            (Err(_), Err(_)) => {}
            (ours, reference) => prop_assert!(false, "ours {:?}, olpc-cjson {:?}", ours.map(|_| ()), reference.map(|_| ())),
        }
    }
}

/// The cases the general test may not hit: written keys that sort otherwise
/// than raw keys, and keys equal only once normalized (the last one wins).
#[test]
fn keys_sort_and_collide_as_olpc_cjson_has_them() {
    let cases = [
        r#"{"a":1,"a!":2,"a\"":3,"a#":4,"a\\":5,"a ":6}"#,
        "{\"e\u{301}\":1,\"\u{e9}\":2}",
        "{\"\u{e9}\":1,\"e\u{301}\":2}",
        r#"{"":1,"\u0000":2,"\u001f":3}"#,
        r#"{"b":{"z":1,"y":[{"x":null}]},"a":[]}"#,
    ];
    for text in cases {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            to_canonical_bytes(&v).unwrap(),
            olpc_reference_bytes(&v).unwrap(),
            "{text}"
        );
    }
    assert!(to_canonical_bytes(&serde_json::json!({"x": 8.0})).is_err());
}

/// Every serde shape a Rust type can take, not only JSON values: struct
/// fields out of order, enums of every kind, options, tuples, bytes,
/// integer map keys.
#[test]
fn every_serde_shape_is_written_as_olpc_cjson_writes_it() {
    use std::collections::BTreeMap;
    #[derive(serde::Serialize)]
    enum E {
        Unit,
        Newtype(u8),
        Tuple(i32, String),
        Struct { z: bool, a: Option<u64> },
    }
    #[derive(serde::Serialize)]
    struct Inner(u16);
    #[derive(serde::Serialize)]
    struct S {
        zeta: Vec<E>,
        alpha: Option<String>,
        #[serde(rename = "a\"b")]
        quoted: (i8, char),
        bytes: serde_bytes_like::Bytes,
        inner: Inner,
        by_number: BTreeMap<u32, &'static str>,
        nothing: (),
        text: &'static str,
    }
    mod serde_bytes_like {
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }
    let v = S {
        zeta: vec![
            E::Unit,
            E::Newtype(7),
            E::Tuple(-3, "x\"\\y".into()),
            E::Struct { z: true, a: None },
        ],
        alpha: None,
        quoted: (-1, '\u{e9}'),
        bytes: serde_bytes_like::Bytes(vec![0, 255]),
        inner: Inner(9),
        by_number: [(10, "ten"), (9, "nine")].into_iter().collect(),
        nothing: (),
        text: "e\u{301}\u{0}",
    };
    assert_eq!(
        String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap(),
        String::from_utf8(olpc_reference_bytes(&v).unwrap()).unwrap()
    );
}
