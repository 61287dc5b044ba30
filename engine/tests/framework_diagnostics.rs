//! What compliance staff read when a framework file is wrong: every problem at
//! once, each with file:line:column, the offending line and a hint. The messages
//! are snapshots (insta): a change to them is a deliberate, reviewed change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use vouch_engine::FrameworkSet;

fn diagnostics(case: &str) -> String {
    let file = format!("bad/{case}.yaml");
    let path = format!("{}/tests/frameworks/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let err = FrameworkSet::from_sources([(file.as_str(), text.as_str())])
        .expect_err("the fixture must be refused");
    err.to_string()
}

macro_rules! case {
    ($name:ident) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(diagnostics(stringify!($name)));
        }
    };
}

case!(yaml_syntax);
case!(yaml_alias);
case!(unknown_field);
case!(duplicate_control_id);
case!(bad_jsonpath);
case!(unknown_operator);
case!(wrong_argument_type);
case!(many_problems);
case!(misspelt_status);

#[test]
fn every_file_of_a_directory_is_reported_together() {
    let a = "framework: a\nname: A\nversion: '1'\nstatement: S\nattests: A\nmonthly_price_eur: 1\nscope_boundary: A\ncontrols: []\n";
    let b = "framework: b\nname: B\nversion: '1'\nstatement: S\nattests: B\nmonthly_price_eur: 1.5\nscope_boundary: B\ncontrols: []\n";
    let err = FrameworkSet::from_sources([("a.yaml", a), ("b.yaml", b)]).unwrap_err();
    let files: Vec<&str> = err.diagnostics.iter().map(|d| d.file.as_str()).collect();
    assert!(
        files.contains(&"a.yaml") && files.contains(&"b.yaml"),
        "{err}"
    );
}

#[test]
fn built_in_frameworks_load() {
    let set = FrameworkSet::builtin().unwrap();
    assert!(set.get("soc2").is_some());
}

/// "Did you mean" names a near miss (a slip, a transposition), never a far one.
#[test]
fn did_you_mean_only_for_a_near_name() {
    use vouch_engine::framework::suggest;
    let ops = vouch_engine::framework::OPERATORS;
    assert_eq!(suggest("at_leats", ops), Some("at_least"));
    assert_eq!(suggest("all_ture", ops), Some("all_true"));
    assert_eq!(suggest("sco2", &["soc2", "dora"]), Some("soc2"));
    assert_eq!(suggest("minimum", ops), None);
    assert_eq!(suggest("x", &["soc2"]), None);
    assert_eq!(
        suggest("all_true", ops),
        None,
        "the name itself is no suggestion"
    );
}
