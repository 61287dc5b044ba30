//! The test harness of the end-to-end suites (libtest-mimic): every test that
//! can run on PostgreSQL is two tests, `name::sqlite` and `name::postgres`,
//! and a test whose tool or database is missing is reported `ignored` with
//! what it needs (`test [needs PostgreSQL] name::postgres ... ignored`), so
//! that `N passed` never counts a check that did not run. Under `CI` nothing
//! is ignored: a missing tool fails its tests with the tool's name.

use std::cell::Cell;
use std::process::{Command, ExitCode};
use std::sync::OnceLock;

use libtest_mimic::{Arguments, Failed, Trial};

use super::{postgres_url, Backend};

/// Something a test needs beyond cargo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// A PostgreSQL server (`VOUCH_TEST_POSTGRES_URL`, or the local one).
    Postgres,
    /// python3 with `cryptography`: the seed documents' own verifiers.
    Python,
    /// poppler-utils (`pdftotext`, `pdfdetach`): reading PDFs back.
    Poppler,
    /// Debian's chromium and chromium-driver: the dashboard in a browser.
    Chromium,
    /// The example plugin built for wasm32 (`VOUCH_EXAMPLE_PLUGIN`, or where
    /// cargo puts it).
    ExamplePlugin,
    /// The standards' own verifiers, as `.ci/run` installs them: trestle and
    /// check-jsonschema in a venv, NIST's OSCAL assessment-results schema
    /// ([`super::standards_tools`]), `@sigstore/verify` in tests/js, node,
    /// openssl.
    Standards,
    /// python3 with `standardwebhooks`: the Standard Webhooks reference
    /// library, verifying deliveries in tests/webhook_receiver.py.
    Webhooks,
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `program` starts (poppler's `-v` prints its version and exits 99).
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok()
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Postgres => "PostgreSQL",
            Tool::Python => "python3 with cryptography",
            Tool::Poppler => "poppler-utils",
            Tool::Chromium => "chromium and chromium-driver",
            Tool::ExamplePlugin => "the example plugin",
            Tool::Standards => {
                "trestle, check-jsonschema, the OSCAL schema, @sigstore/verify, node, openssl"
            }
            Tool::Webhooks => "python3 with standardwebhooks",
        }
    }

    /// How to get it on Debian (the README's test section says the same).
    pub fn hint(self) -> &'static str {
        match self {
            Tool::Postgres => {
                "a server on 127.0.0.1:5432 with database `test` (trust auth), or VOUCH_TEST_POSTGRES_URL"
            }
            Tool::Python => "pip install cryptography",
            Tool::Poppler => "apt-get install poppler-utils",
            Tool::Chromium => "apt-get install chromium chromium-driver",
            Tool::ExamplePlugin => {
                "rustup target add wasm32-unknown-unknown; cargo build -p backup-cadence --target wasm32-unknown-unknown --profile plugin"
            }
            Tool::Standards => "the `standards tools` step of .ci/run installs them",
            Tool::Webhooks => "pip install standardwebhooks",
        }
    }

    /// Whether the tool is here (checked once per tool and test process).
    pub fn available(self) -> bool {
        static FOUND: [OnceLock<bool>; 7] = [const { OnceLock::new() }; 7];
        *FOUND[self as usize].get_or_init(|| match self {
            Tool::Postgres => postgres_url().is_some(),
            Tool::Python => succeeds("python3", &["-c", "import cryptography"]),
            Tool::Poppler => runs("pdftotext", &["-v"]) && runs("pdfdetach", &["-v"]),
            Tool::Chromium => {
                succeeds("chromedriver", &["--version"])
                    && std::path::Path::new("/usr/bin/chromium").exists()
            }
            Tool::ExamplePlugin => super::example_plugin_path().is_file(),
            Tool::Standards => {
                let dir = super::standards_tools();
                dir.join("venv/bin/trestle").is_file()
                    && dir.join("venv/bin/check-jsonschema").is_file()
                    && dir.join(super::OSCAL_AR_SCHEMA).is_file()
                    && super::repo_path("tests/js/node_modules/@sigstore/verify").is_dir()
                    && succeeds("node", &["--version"])
                    && succeeds("openssl", &["version"])
            }
            Tool::Webhooks => succeeds("python3", &["-c", "import standardwebhooks"]),
        })
    }
}

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
}

/// The backend the running test was started for.
pub fn current_backend() -> Backend {
    BACKEND.with(Cell::get)
}

/// One test of a suite.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub run: fn(),
    /// Runs once per backend (it reads [`current_backend`]).
    pub on_backends: bool,
    pub needs: &'static [Tool],
}

impl Case {
    pub const fn new(name: &'static str, run: fn()) -> Self {
        Case {
            name,
            run,
            on_backends: false,
            needs: &[],
        }
    }
    pub const fn on_backends(mut self) -> Self {
        self.on_backends = true;
        self
    }
    pub const fn needs(mut self, tools: &'static [Tool]) -> Self {
        self.needs = tools;
        self
    }
}

/// `case!(f)`: the test function `f` under its own name.
#[macro_export]
macro_rules! case {
    ($f:ident) => {
        $crate::support::harness::Case::new(stringify!($f), $f)
    };
}

fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Runs the suite's cases with the command line's filters and options.
pub fn run(cases: &[Case]) -> ExitCode {
    let args = Arguments::from_args();
    let ci = under_ci();
    let mut trials = Vec::new();
    for case in cases {
        let backends: &[Backend] = if case.on_backends {
            &[Backend::Sqlite, Backend::Postgres]
        } else {
            &[Backend::Sqlite]
        };
        for &backend in backends {
            let name = if case.on_backends {
                format!("{}::{}", case.name, backend.label())
            } else {
                case.name.to_owned()
            };
            let mut needs = case.needs.to_vec();
            if backend == Backend::Postgres {
                needs.push(Tool::Postgres);
            }
            let missing: Vec<Tool> = needs.into_iter().filter(|t| !t.available()).collect();
            let run = case.run;
            let trial = if missing.is_empty() {
                Trial::test(name, move || {
                    BACKEND.with(|b| b.set(backend));
                    run();
                    Ok(())
                })
            } else {
                let why = missing
                    .iter()
                    .map(|t| format!("{} ({})", t.name(), t.hint()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let kind = missing
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ");
                let failure = move || -> Result<(), Failed> {
                    Err(format!("needs {why}, which is not here").into())
                };
                // Under CI the test runs, and fails naming what is missing.
                Trial::test(name, failure)
                    .with_kind(format!("needs {kind}"))
                    .with_ignored_flag(!ci)
            };
            trials.push(trial);
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}
