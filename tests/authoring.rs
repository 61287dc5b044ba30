//! The framework authoring tools, end to end: `vouch frameworks test`,
//! `explain` and `diff` on fixtures (insta snapshots of what an analyst
//! reads), their refusals of bad input, and the guided example of
//! frameworks/README.md, run command by command and compared with what the
//! README shows (`UPDATE_README=1` writes the actual output in its place).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{expect_exit, repo, stderr, stdout, support};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// A working directory like a checkout's: `frameworks/` and `examples/`.
struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            Path::new(&repo("frameworks")),
            &dir.path().join("frameworks"),
        );
        copy_dir(
            Path::new(&repo("examples/records")),
            &dir.path().join("examples/records"),
        );
        Checkout { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    /// `mine/`: the frameworks with the fixture control appended to soc2.yaml.
    fn mine(&self) {
        copy_dir(&self.path("frameworks"), &self.path("mine"));
        let control = std::fs::read_to_string(repo("tests/authoring/control.yaml")).unwrap();
        let mut soc2 = std::fs::read_to_string(self.path("mine/soc2.yaml")).unwrap();
        soc2.push_str(&control);
        std::fs::write(self.path("mine/soc2.yaml"), soc2).unwrap();
    }
    fn vouch(&self, args: &[&str]) -> Output {
        Command::new(support::bin())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("VOUCH_FRAMEWORKS_DIR")
            .env_remove("VOUCH_PLUGINS_DIR")
            .output()
            .unwrap()
    }
}

/// What `vouch frameworks test` prints, without the lines of passing cases.
fn without_passes(out: &str) -> String {
    out.lines()
        .filter(|l| !l.starts_with("ok   "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn frameworks_test_reports_failures_and_missing_coverage() {
    let c = Checkout::new();
    c.mine();
    std::fs::copy(
        repo("tests/authoring/cases.yaml"),
        c.path("mine/cases/soc2-retention.yaml"),
    )
    .unwrap();
    let o = c.vouch(&["frameworks", "test", "mine"]);
    expect_exit(&o, 1);
    assert!(stdout(&o).contains(
        "ok   mine/cases/soc2-retention.yaml:6 soc2 A1.2-backup-retention-minimum: every service keeps two weeks"
    ));
    insta::assert_snapshot!("frameworks_test", without_passes(&stdout(&o)));
    assert_eq!(
        stderr(&o),
        "error: 2 cases failed, 2 coverage gaps\n",
        "the exit's reason"
    );
    // One control's cases and coverage alone.
    let o = c.vouch(&[
        "frameworks",
        "test",
        "mine",
        "--control",
        "A1.2-backup-retention-minimum",
    ]);
    expect_exit(&o, 1);
    assert!(
        stdout(&o).ends_with("\n2 cases: 1 passed, 1 failed; coverage: 2 missing\n"),
        "{}",
        stdout(&o)
    );
}

/// `cargo test` (the engine's framework_cases test, through
/// `vouch_engine::cases`) and `vouch frameworks test` run the same cases:
/// the binary counts as many as the files hold, and all pass.
fn frameworks_test_agrees_with_cargo_test() {
    let o = super::vouch(&["frameworks", "test"]);
    expect_exit(&o, 0);
    let out = stdout(&o);
    let summary = out.lines().last().unwrap();
    // Counted here from the YAML alone, not by the code under test.
    let mut in_files = 0;
    for e in std::fs::read_dir(repo("frameworks/cases")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        in_files += v["cases"].as_sequence().unwrap().len();
    }
    let frameworks = vouch_engine::FrameworkSet::builtin().unwrap();
    let library = vouch_engine::cases::run(
        &frameworks,
        &vouch_engine::cases::builtin().unwrap(),
        &vouch_engine::cases::BuiltinExamples,
        &vouch_engine::NoPluginHost,
    );
    assert_eq!(library.results.len(), in_files);
    assert_eq!(
        summary,
        format!("{in_files} cases: {in_files} passed, 0 failed; coverage: complete")
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok   ")).count(),
        in_files,
        "one line per case"
    );
}

fn explain_says_an_unknown_scope_in_words() {
    let o = Command::new(support::bin())
        .args([
            "frameworks",
            "explain",
            "--case",
            "tests/authoring/explain-cases.yaml:4",
        ])
        .current_dir(repo(""))
        .env_remove("VOUCH_FRAMEWORKS_DIR")
        .output()
        .unwrap();
    expect_exit(&o, 0);
    let out = stdout(&o);
    for words in [
        "svc-features             UNKNOWN whether in scope: whether `svc-features` is in scope",
        "the resource's scope is unknown: unknown is never false, so the control cannot be attested",
        "svc-features             not judged: its scope is unknown",
        "status: inconclusive",
    ] {
        assert!(out.contains(words), "no {words:?} in:\n{out}");
    }
    insta::assert_snapshot!("frameworks_explain_unknown_scope", out);
}

fn explain_names_each_check_verdict_per_resource() {
    let c = Checkout::new();
    let o = c.vouch(&[
        "frameworks",
        "explain",
        "--framework",
        "soc2",
        "--control",
        "CC6.7-encryption-in-transit",
        "--records",
        "examples/records/one-bad-service.json",
        "--generated-at",
        "2026-06-22T10:00:00Z",
    ]);
    expect_exit(&o, 0);
    insta::assert_snapshot!("frameworks_explain_exception", stdout(&o));
    // Missing evidence: the resources are in scope, and each check says what
    // it lacks.
    let o = c.vouch(&[
        "frameworks",
        "explain",
        "--framework",
        "soc2",
        "--control",
        "A1.2-backups-completed",
        "--records",
        "examples/records/seed-only.json",
        "--generated-at",
        "2026-06-22T10:00:00Z",
    ]);
    expect_exit(&o, 0);
    let out = stdout(&o);
    for words in [
        "  svc-orders               in scope\n",
        "     svc-orders               unknown (evidence missing) [no `backup_runs` in the records for `svc-orders`]\n",
        "status: inconclusive\n",
    ] {
        assert!(out.contains(words), "no {words:?} in:\n{out}");
    }
}

fn diff_lists_what_an_edit_changes() {
    let c = Checkout::new();
    c.mine();
    // And a tighter bound on an existing control: a regression.
    let soc2 = std::fs::read_to_string(c.path("mine/soc2.yaml"))
        .unwrap()
        .replace(
            "- at_most: { path: backups.retention_days, value: 35 }",
            "- at_most: { path: backups.retention_days, value: 21 }",
        );
    std::fs::write(c.path("mine/soc2.yaml"), soc2).unwrap();
    let args = [
        "frameworks",
        "diff",
        "--to",
        "mine",
        "--records",
        "examples/records/full.json",
        "examples/records/seed-only.json",
        "--generated-at",
        "2026-06-22T10:00:00Z",
    ];
    let o = c.vouch(&args);
    expect_exit(&o, 0);
    insta::assert_snapshot!("frameworks_diff", stdout(&o));
    let mut failing = args.to_vec();
    failing.extend(["--fail-on", "regression"]);
    let o = c.vouch(&failing);
    expect_exit(&o, 1);
    assert!(
        stderr(&o).contains(
            "2 regressions: soc2 C1.2-backup-retention, soc2 P4.2-personal-data-retention"
        ),
        "{}",
        stderr(&o)
    );
    let mut json = args.to_vec();
    json.extend(["--format", "json", "--framework", "soc2"]);
    let o = c.vouch(&json);
    expect_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        2,
        "one comparison per records document"
    );
    assert_eq!(v[0]["comparison"]["regressions"], 2);
}

/// `diff --records URL`: the records a live server evaluates packets on.
fn diff_reads_a_live_servers_records() {
    let c = Checkout::new();
    c.mine();
    let store = support::Store::new(support::Backend::Sqlite);
    let s = support::Server::start(&store);
    let url = format!("http://{}/organizations/acme/records", s.addr);
    let run = |password: Option<&str>| {
        let mut cmd = Command::new(support::bin());
        cmd.args([
            "frameworks",
            "diff",
            "--to",
            "mine",
            "--framework",
            "soc2",
            "--records",
            &url,
            "--user",
            "carol",
        ])
        .current_dir(c.path(""));
        match password {
            Some(p) => cmd.env("VOUCH_PASSWORD", p),
            None => cmd.env_remove("VOUCH_PASSWORD"),
        };
        cmd.output().unwrap()
    };
    let o = run(Some("demo"));
    expect_exit(&o, 0);
    assert!(
        stdout(&o).contains("  soc2: ")
            && stdout(&o).contains("added        A1.2-backup-retention-minimum - -> attested"),
        "{}",
        stdout(&o)
    );
    let o = run(Some("wrong"));
    expect_exit(&o, 3);
    let o = run(None);
    expect_exit(&o, 3);
    assert!(stderr(&o).contains("set VOUCH_PASSWORD"), "{}", stderr(&o));
}

/// Bad input: each a clear message and a non-zero exit, nothing half-done.
fn authoring_tools_refuse_bad_input() {
    let c = Checkout::new();
    c.mine();
    let check = |args: &[&str], code: i32, words: &str| {
        let o = c.vouch(args);
        expect_exit(&o, code);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(all.contains(words), "{args:?}: no {words:?} in:\n{all}");
    };
    // Each mistake in a cases file of its own beside the good ones.
    let typo = |text: &str| std::fs::write(c.path("mine/cases/typo.yaml"), text).unwrap();
    // A case of a control that does not exist.
    typo("framework: soc2\ncases:\n  - { control: CC6.8, name: no such control, records: full, status: attested }\n");
    check(
        &["frameworks", "test", "mine"],
        1,
        "FAIL mine/cases/typo.yaml:3 soc2 CC6.8: no such control\n       unknown control of soc2 `CC6.8`: did you mean `CC6.1`?",
    );
    // A cases file of a framework that does not exist.
    typo("framework: soc3\ncases:\n  - { control: CC6.1, name: no such framework, records: full, status: attested }\n");
    check(
        &["frameworks", "test", "mine"],
        1,
        "INVALID mine/cases/typo.yaml: unknown framework `soc3`: did you mean `soc2`?",
    );
    // A misspelt status, at its line.
    typo("framework: soc2\ncases:\n  - { control: CC6.1, name: typo, records: full, status: atested }\n");
    check(
        &["frameworks", "test", "mine"],
        3,
        "mine/cases/typo.yaml:3:58: unknown variant `atested`",
    );
    check(
        &["frameworks", "test", "mine"],
        3,
        "hint: did you mean `attested`?",
    );
    // Records an example does not have.
    typo("framework: soc2\ncases:\n  - { control: CC6.1, name: typo, records: ful, status: attested }\n");
    check(&["frameworks", "test", "mine"], 1, "no example records named `ful`; the examples are: full, one-bad-service, seed-only (did you mean `full`?)");
    std::fs::remove_file(c.path("mine/cases/typo.yaml")).unwrap();
    // A records file that does not parse.
    std::fs::write(c.path("broken.json"), "{\"organization\": ").unwrap();
    let explain = [
        "frameworks",
        "explain",
        "--framework",
        "soc2",
        "--control",
        "CC6.1",
        "--records",
        "broken.json",
    ];
    check(&explain, 3, "broken.json is not a valid records document");
    check(
        &[
            "frameworks",
            "diff",
            "--to",
            "mine",
            "--records",
            "broken.json",
        ],
        3,
        "broken.json is not a valid records document",
    );
    // A directory without frameworks.
    std::fs::create_dir(c.path("empty")).unwrap();
    check(
        &["frameworks", "test", "empty"],
        3,
        "empty holds no framework files (*.yaml)",
    );
    check(
        &[
            "frameworks",
            "diff",
            "--to",
            "empty",
            "--records",
            "examples/records/full.json",
        ],
        3,
        "empty holds no framework files (*.yaml)",
    );
    // Frameworks without cases.
    std::fs::create_dir(c.path("bare")).unwrap();
    std::fs::copy(c.path("mine/soc2.yaml"), c.path("bare/soc2.yaml")).unwrap();
    check(
        &["frameworks", "test", "bare"],
        3,
        "bare has no cases directory: add bare/cases or pass --cases DIR",
    );
    check(
        &["frameworks", "check", "bare"],
        0,
        "warning: bare has no cases directory",
    );
    // A misspelt field: the file loads, and check names the field it meant.
    let soc2 = std::fs::read_to_string(c.path("mine/soc2.yaml")).unwrap();
    std::fs::write(
        c.path("mine/soc2.yaml"),
        soc2.replace(
            "at_least: { path: backups.retention_days, value: 14 }",
            "at_least: { path: backups.retention_dys, value: 14 }",
        ),
    )
    .unwrap();
    check(
        &["frameworks", "check", "mine"],
        0,
        "warning: soc2 A1.2-backup-retention-minimum checks[0]: `backups.retention_dys` selects nothing in any item of `services` in the example records or any case; did you mean `backups.retention_days`?",
    );
    std::fs::write(c.path("mine/soc2.yaml"), soc2).unwrap();
    // Cases and examples from directories of one's own.
    std::fs::create_dir(c.path("my-cases")).unwrap();
    std::fs::create_dir(c.path("my-examples")).unwrap();
    std::fs::write(
        c.path("my-cases/soc2.yaml"),
        "framework: soc2\ncases:\n  - { control: CC6.1, name: from my example, records: tiny, status: inconclusive }\n  - { control: CC6.1, name: from a file beside me, records: beside.json, status: inconclusive }\n",
    )
    .unwrap();
    std::fs::copy(
        c.path("examples/records/seed-only.json"),
        c.path("my-examples/tiny.json"),
    )
    .unwrap();
    std::fs::copy(
        c.path("examples/records/seed-only.json"),
        c.path("my-cases/beside.json"),
    )
    .unwrap();
    let o = c.vouch(&[
        "frameworks",
        "test",
        "--cases",
        "my-cases",
        "--examples",
        "my-examples",
        "--control",
        "CC6.1",
    ]);
    expect_exit(&o, 1);
    assert!(
        stdout(&o).ends_with("2 cases: 2 passed, 0 failed; coverage: 2 missing\n"),
        "{}",
        stdout(&o)
    );
    // Unknown names on the command line.
    check(
        &["frameworks", "explain", "--framework", "soc2", "--control", "CC6.7-encryption-in-transt", "--records", "examples/records/full.json"],
        3,
        "unknown control of soc2 `CC6.7-encryption-in-transt`: did you mean `CC6.7-encryption-in-transit`?",
    );
    check(
        &[
            "frameworks",
            "explain",
            "--framework",
            "sco2",
            "--control",
            "CC6.1",
            "--records",
            "examples/records/full.json",
        ],
        3,
        "unknown framework `sco2`: did you mean `soc2`?",
    );
    check(
        &["frameworks", "explain", "--case", "mine/cases/soc2.yaml"],
        3,
        "--case takes FILE:LINE",
    );
    check(
        &["frameworks", "explain", "--case", "mine/cases/soc2.yaml:1"],
        3,
        "mine/cases/soc2.yaml has no case at line 1",
    );
    check(
        &["frameworks", "explain", "--case", "nothing.yaml:3"],
        3,
        "cannot open nothing.yaml",
    );
    check(
        &[
            "frameworks",
            "explain",
            "--records",
            "examples/records/full.json",
        ],
        2,
        "--framework",
    );
    check(
        &[
            "frameworks",
            "diff",
            "--to",
            "mine",
            "--records",
            "http://127.0.0.1:9/organizations/acme/records",
        ],
        3,
        "a records URL needs --user",
    );
    check(
        &["frameworks", "explain", "--framework", "soc2", "--control", "CC6.1", "--records", "examples/records/full.json", "--generated-at", "2026-06-22T10:00:00Z", "--period-end", "2026-07-01T00:00:00Z"],
        3,
        "the period ends at 2026-07-01T00:00:00Z, after the time of generation 2026-06-22T10:00:00Z",
    );
}

/// The README's guided example: each `$` line of a `console` block runs in
/// a checkout-like directory (with `vouch` on the PATH), its output compared
/// with the lines under it; a `yaml append=FILE` block is appended to FILE
/// and a `yaml file=FILE` block written as FILE, in order.
fn guided_example_in_the_readme_runs_as_shown() {
    let readme_path = repo("frameworks/README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme
        .find("<!-- guide:start -->")
        .expect("the guide's start marker");
    let end = readme
        .find("<!-- guide:end -->")
        .expect("the guide's end marker");
    let c = Checkout::new();
    let bin_dir = Path::new(&support::bin()).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut updated = String::new();
    let mut mismatches = vec![];
    let mut commands = 0;
    let mut lines = readme[start..end].lines().peekable();
    while let Some(line) = lines.next() {
        updated.push_str(line);
        updated.push('\n');
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = vec![];
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            body.push(l);
        }
        let text: String = body.iter().map(|l| format!("{l}\n")).collect();
        if let Some(file) = info.strip_prefix("yaml append=") {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(c.path(file))
                .unwrap();
            std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
            updated.push_str(&text);
        } else if let Some(file) = info.strip_prefix("yaml file=") {
            std::fs::write(c.path(file), &text).unwrap();
            updated.push_str(&text);
        } else if info == "console" {
            let mut i = 0;
            while i < body.len() {
                let cmd = body[i]
                    .strip_prefix("$ ")
                    .unwrap_or_else(|| panic!("not a command: {}", body[i]));
                let shown: Vec<&str> = body[i + 1..]
                    .iter()
                    .take_while(|l| !l.starts_with("$ "))
                    .copied()
                    .collect();
                i += 1 + shown.len();
                let o = Command::new("sh")
                    .args(["-c", &format!("{cmd} 2>&1")])
                    .current_dir(c.path(""))
                    .env("PATH", &path)
                    .env_remove("VOUCH_FRAMEWORKS_DIR")
                    .env_remove("VOUCH_PLUGINS_DIR")
                    .output()
                    .unwrap();
                commands += 1;
                let actual = String::from_utf8_lossy(&o.stdout).into_owned();
                let expected: String = shown.iter().map(|l| format!("{l}\n")).collect();
                if actual != expected {
                    mismatches.push(format!(
                        "$ {cmd}\n--- the README shows:\n{expected}--- it prints:\n{actual}"
                    ));
                }
                updated.push_str(&format!("$ {cmd}\n{actual}"));
            }
        } else {
            updated.push_str(&text);
        }
        updated.push_str("```\n");
    }
    assert!(commands >= 7, "only {commands} commands in the guide");
    if std::env::var_os("UPDATE_README").is_some() {
        let rewritten = format!("{}{}{}", &readme[..start], updated, &readme[end..]);
        std::fs::write(&readme_path, rewritten).unwrap();
        return;
    }
    assert!(
        mismatches.is_empty(),
        "frameworks/README.md's guided example differs from what the commands print (UPDATE_README=1 rewrites it):\n{}",
        mismatches.join("\n")
    );
}

pub fn cases() -> Vec<support::harness::Case> {
    use crate::case;
    vec![
        case!(frameworks_test_reports_failures_and_missing_coverage),
        case!(frameworks_test_agrees_with_cargo_test),
        case!(explain_says_an_unknown_scope_in_words),
        case!(explain_names_each_check_verdict_per_resource),
        case!(diff_lists_what_an_edit_changes),
        case!(diff_reads_a_live_servers_records),
        case!(authoring_tools_refuse_bad_input),
        case!(guided_example_in_the_readme_runs_as_shown),
    ]
}
