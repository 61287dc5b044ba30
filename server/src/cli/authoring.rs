//! `vouch frameworks test | explain | diff`, and the warnings of `check`:
//! the tools of the people who write frameworks, without Rust.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use clap::{Args, ValueEnum};
use serde_json::Value;
use vouch_engine::cases::{self, BuiltinExamples, CaseFile, Examples};
use vouch_engine::compare::compare;
use vouch_engine::explain::{empty_paths, escaped, explain};
use vouch_engine::framework::{unknown_name, FrameworkSet};
use vouch_engine::records::RecordsDocument;
use vouch_engine::{assemble_with, Period, Timestamp};

use super::offline::{
    frameworks_dir, load_frameworks_with, load_plugins, plugin_host as host, read_records,
    yaml_files, PeriodArgs, MAX_RECORDS,
};
use super::series::{changes, FailOn};
use crate::files::read_text;
use crate::Failure;

const MAX_CASES: u64 = 4 * 1024 * 1024;

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Directory of `*.yaml` framework files [default: $VOUCH_FRAMEWORKS_DIR, else the built-in frameworks]
    dir: Option<PathBuf>,
    /// Directory of cases files [default: DIR/cases, or the built-in cases]
    #[arg(long, value_name = "DIR")]
    cases: Option<PathBuf>,
    /// Directory of the example records cases name (`records: full` is
    /// DIR/full.json) [default: the built-in examples/records]
    #[arg(long, value_name = "DIR")]
    examples: Option<PathBuf>,
    /// Only the cases of this control (and its coverage).
    #[arg(long, value_name = "ID")]
    control: Option<String>,
    /// Directory of the plugins (`NAME.wasm`) the frameworks reference.
    #[arg(long, value_name = "DIR", env = "VOUCH_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
}

/// Example records from a directory, or the built-in ones; a name ending in
/// `.json` is a file beside the cases file.
struct ExampleSource {
    dir: Option<PathBuf>,
}

impl Examples for ExampleSource {
    fn records(&self, file: &str, name: &str) -> Result<String, String> {
        let path = if name.ends_with(".json") {
            Path::new(file)
                .parent()
                .unwrap_or(Path::new("."))
                .join(name)
        } else if let Some(dir) = &self.dir {
            dir.join(format!("{name}.json"))
        } else {
            return BuiltinExamples.records(file, name);
        };
        read_text(&path, MAX_RECORDS).map_err(|e| format!("{e:#}"))
    }
}

/// The cases files of `dir` (every `*.yaml`, in name order).
fn read_cases(dir: &Path) -> Result<Vec<CaseFile>, Failure> {
    yaml_files(dir, "cases")?
        .iter()
        .map(|p| {
            let text = read_text(p, MAX_CASES)?;
            cases::parse_case_file(&p.display().to_string(), &text)
                .map_err(|d| Failure::input(anyhow!("the cases file has a problem:\n{d}")))
        })
        .collect()
}

/// The cases for the frameworks of `dir`: `--cases`, else `dir/cases`, else
/// (for the built-in frameworks) the built-in cases.
fn load_cases(dir: Option<&Path>, cases_dir: Option<&Path>) -> Result<Vec<CaseFile>, Failure> {
    match (cases_dir, dir) {
        (Some(c), _) => read_cases(c),
        (None, Some(d)) => {
            let c = d.join("cases");
            if !c.is_dir() {
                return Err(Failure::input(anyhow!(
                    "{} has no cases directory: add {} or pass --cases DIR",
                    d.display(),
                    c.display()
                )));
            }
            read_cases(&c)
        }
        (None, None) => cases::builtin()
            .map_err(|d| Failure::input(anyhow!("the built-in cases have a problem:\n{d}"))),
    }
}

/// `vouch frameworks test`: every case, one line each, then the coverage rule.
pub fn test(a: TestArgs) -> Result<(), Failure> {
    let dir = frameworks_dir(a.dir);
    let plugins = load_plugins(a.plugins_dir.as_deref())?;
    let frameworks = load_frameworks_with(dir.as_deref(), plugins.as_deref())?;
    let files = load_cases(dir.as_deref(), a.cases.as_deref())?;
    let examples = ExampleSource { dir: a.examples };
    let mut report = cases::run(&frameworks, &files, &examples, host(&plugins));
    if let Some(only) = &a.control {
        let known: Vec<&str> = frameworks
            .iter()
            .flat_map(|fw| fw.controls.iter().map(|c| c.control_id.as_str()))
            .collect();
        if !known.contains(&only.as_str()) {
            return Err(unknown("control", only, &known));
        }
        report.results.retain(|r| &r.control == only);
        report.gaps.retain(|g| match g {
            cases::Gap::Missing { control, .. } => control == only,
            cases::Gap::Invalid { .. } => true,
        });
    }
    print!("{}", render_report(&report));
    if report.ok() {
        Ok(())
    } else {
        Err(Failure::negative(anyhow!(
            "{} case{} failed, {} coverage gap{}",
            report.failed(),
            if report.failed() == 1 { "" } else { "s" },
            report.gaps.len(),
            if report.gaps.len() == 1 { "" } else { "s" }
        )))
    }
}

/// The text `vouch frameworks test` prints.
pub fn render_report(report: &cases::Report) -> String {
    let mut out = String::new();
    for r in &report.results {
        let verdict = if r.outcome.is_ok() { "ok  " } else { "FAIL" };
        out.push_str(&format!(
            "{verdict} {}:{} {} {}: {}\n",
            escaped(&r.file),
            r.line,
            escaped(&r.framework),
            escaped(&r.control),
            escaped(&r.name)
        ));
        if let Err(e) = &r.outcome {
            for line in e.to_string().lines() {
                out.push_str(&format!("       {}\n", escaped(line)));
            }
        }
    }
    if !report.gaps.is_empty() {
        out.push_str("\ncoverage: every control needs a case of each status it can reach\n");
        for g in &report.gaps {
            let label = match g {
                cases::Gap::Missing { .. } => "MISSING",
                cases::Gap::Invalid { .. } => "INVALID",
            };
            out.push_str(&format!("{label} {}\n", escaped(&g.to_string())));
        }
    }
    let missing = report
        .gaps
        .iter()
        .filter(|g| matches!(g, cases::Gap::Missing { .. }))
        .count();
    let invalid = report.gaps.len() - missing;
    let coverage = match (missing, invalid) {
        (0, 0) => "complete".to_owned(),
        (m, 0) => format!("{m} missing"),
        (m, i) => format!("{m} missing, {i} invalid"),
    };
    out.push_str(&format!(
        "\n{} cases: {} passed, {} failed; coverage: {coverage}\n",
        report.results.len(),
        report.passed(),
        report.failed(),
    ));
    out
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Framework identifier, e.g. soc2.
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "case",
        conflicts_with = "case"
    )]
    framework: Option<String>,
    /// The control to explain, e.g. CC6.1.
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "case",
        conflicts_with = "case"
    )]
    control: Option<String>,
    /// Records document (JSON) of one organization.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "case",
        conflicts_with = "case"
    )]
    records: Option<PathBuf>,
    /// Explain a case instead: its control on its records, at its time
    /// (`FILE:LINE`, as `vouch frameworks test` prints it).
    #[arg(long, value_name = "FILE:LINE", conflicts_with_all = ["period_start", "period_end", "generated_at"])]
    case: Option<String>,
    /// Directory of the example records a case names [default: the built-in examples/records]
    #[arg(long, value_name = "DIR", requires = "case")]
    examples: Option<PathBuf>,
    /// Directory of framework YAML files [default: with --case FILE in
    /// DIR/cases/, DIR; else the built-in frameworks]
    #[arg(long, value_name = "DIR", env = "VOUCH_FRAMEWORKS_DIR")]
    frameworks_dir: Option<PathBuf>,
    /// Directory of check plugins (`NAME.wasm`) the frameworks reference.
    #[arg(long, value_name = "DIR", env = "VOUCH_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    #[command(flatten)]
    period: PeriodArgs,
}

fn unknown(what: &str, name: &str, known: &[&str]) -> Failure {
    Failure::input(anyhow!(unknown_name(what, name, known)))
}

/// `vouch frameworks explain`: why one control came out as it did.
pub fn explain_control(a: ExplainArgs) -> Result<(), Failure> {
    let plugins = load_plugins(a.plugins_dir.as_deref())?;
    let case = a.case.as_deref().map(find_case).transpose()?;
    // A case in DIR/cases/ is of the frameworks in DIR.
    let dir = a.frameworks_dir.clone().or_else(|| {
        let (file, _) = case.as_ref()?;
        let dir = Path::new(&file.file).parent()?.parent()?;
        yaml_files(dir, "framework")
            .is_ok()
            .then(|| dir.to_path_buf())
    });
    let frameworks = load_frameworks_with(dir.as_deref(), plugins.as_deref())?;
    let (framework, control, records, generated_at, period) = match case {
        Some((file, case)) => {
            let at = a.case.as_deref().unwrap_or_default();
            println!(
                "case {}:{} \"{}\": expects {}\n",
                file.file,
                case.line,
                escaped(&case.name),
                escaped(&case.expected())
            );
            let examples = ExampleSource {
                dir: a.examples.clone(),
            };
            let doc = cases::case_records(&file.file, &case, &examples)
                .map_err(|e| Failure::input(anyhow!("{at}: {e}")))?;
            let records = RecordsDocument::from_value(doc)
                .with_context(|| format!("{at}: the case's records are refused"))
                .map_err(Failure::input)?;
            let generated_at = case
                .generated_at()
                .map_err(|e| Failure::input(anyhow!("{at}: {e}")))?;
            (file.framework, case.control, records, generated_at, None)
        }
        None => {
            let (Some(framework), Some(control), Some(records)) =
                (a.framework.clone(), a.control.clone(), a.records.as_deref())
            else {
                return Err(Failure::input(anyhow!(
                    "give --framework, --control and --records, or --case FILE:LINE"
                )));
            };
            let (generated_at, period) = a.period.resolve()?;
            (
                framework,
                control,
                read_records(records)?,
                generated_at,
                period,
            )
        }
    };
    let fw = frameworks
        .get(&framework)
        .ok_or_else(|| unknown("framework", &framework, &frameworks.ids()))?;
    let ids: Vec<&str> = fw.controls.iter().map(|c| c.control_id.as_str()).collect();
    let control = fw
        .control(&control)
        .ok_or_else(|| unknown(&format!("control of {}", fw.framework), &control, &ids))?;
    let period = checked_period(generated_at, period)?;
    let e = explain(fw, control, &records.to_value(), &period, host(&plugins));
    print!("{e}");
    Ok(())
}

/// The case that starts at `FILE:LINE` (or whose lines hold LINE).
fn find_case(at: &str) -> Result<(CaseFile, cases::Case), Failure> {
    let (path, line) = at
        .rsplit_once(':')
        .and_then(|(p, l)| Some((p, l.parse::<usize>().ok()?)))
        .ok_or_else(|| {
            Failure::input(anyhow!(
                "--case takes FILE:LINE, e.g. frameworks/cases/soc2.yaml:12"
            ))
        })?;
    let text = read_text(Path::new(path), MAX_CASES)?;
    let file = cases::parse_case_file(path, &text)
        .map_err(|d| Failure::input(anyhow!("the cases file has a problem:\n{d}")))?;
    let case = file
        .cases
        .iter()
        .rev()
        .find(|c| c.line <= line)
        .cloned()
        .ok_or_else(|| Failure::input(anyhow!("{path} has no case at line {line}")))?;
    Ok((file, case))
}

fn checked_period(generated_at: Timestamp, period: Option<Period>) -> Result<Period, Failure> {
    let period = period.unwrap_or_else(|| Period::month_ending_at(generated_at));
    if period.end > generated_at {
        return Err(Failure::input(anyhow!(
            "the period ends at {}, after the time of generation {generated_at}",
            period.end
        )));
    }
    Ok(period)
}

/// Output format of `vouch frameworks diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The frameworks as they are [default: the built-in frameworks]
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// The frameworks as edited.
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Records documents to evaluate both on: files, or a server's
    /// `…/organizations/{orgId}/records` URL (read with --user and
    /// VOUCH_PASSWORD, for the period given here).
    #[arg(long, value_name = "FILE_OR_URL", required = true, num_args = 1..)]
    records: Vec<String>,
    /// With a URL: the member whose password is in VOUCH_PASSWORD.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Only this framework [default: every framework of either version]
    #[arg(long, value_name = "ID")]
    framework: Option<String>,
    /// Directory of check plugins (`NAME.wasm`) the frameworks reference.
    #[arg(long, value_name = "DIR", env = "VOUCH_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Exit 1 when the edit makes a control worse on some records.
    #[arg(long, value_enum, value_name = "WHAT")]
    fail_on: Option<FailOn>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    period: PeriodArgs,
}

/// A records document for `diff`, from a file or a server.
fn diff_records(
    source: &str,
    user: Option<&str>,
    period: &Period,
) -> Result<RecordsDocument, Failure> {
    if !(source.starts_with("http://") || source.starts_with("https://")) {
        return read_records(Path::new(source));
    }
    let user = user.ok_or_else(|| {
        Failure::input(anyhow!(
            "a records URL needs --user (and the password in VOUCH_PASSWORD)"
        ))
    })?;
    let auth = super::basic_auth(user)?;
    let sep = if source.contains('?') { '&' } else { '?' };
    let url = format!(
        "{source}{sep}period_start={}&period_end={}",
        period.start, period.end
    );
    let bytes = super::fetch_as(&url, MAX_RECORDS, "the records", Some(&auth))?;
    RecordsDocument::from_json_slice(&bytes)
        .with_context(|| format!("{source} did not answer a records document"))
        .map_err(Failure::input)
}

/// `vouch frameworks diff`: what an edit of the frameworks would change in
/// the packets of these records.
pub fn diff(a: DiffArgs) -> Result<(), Failure> {
    let plugins = load_plugins(a.plugins_dir.as_deref())?;
    let before = load_frameworks_with(a.from.as_deref(), plugins.as_deref())?;
    let after = load_frameworks_with(Some(&a.to), plugins.as_deref())?;
    let (generated_at, period) = a.period.resolve()?;
    let period = checked_period(generated_at, period)?;
    let mut ids: Vec<&str> = before.ids();
    ids.extend(after.ids());
    ids.sort_unstable();
    ids.dedup();
    if let Some(only) = &a.framework {
        if !ids.contains(&only.as_str()) {
            return Err(unknown("framework", only, &ids));
        }
        ids.retain(|id| id == only);
    }
    let from_name = a
        .from
        .as_ref()
        .map_or("the built-in frameworks".to_owned(), |d| {
            d.display().to_string()
        });
    let mut text = format!(
        "{from_name} -> {}, {} to {}\n",
        a.to.display(),
        period.start,
        period.end
    );
    let mut json = vec![];
    let mut regressions = vec![];
    for source in &a.records {
        let records = diff_records(source, a.user.as_deref(), &period)?;
        text.push_str(&format!("\n{}:\n", escaped(source)));
        for id in &ids {
            let packet = |set: &FrameworkSet| -> Result<Option<vouch_engine::Packet>, Failure> {
                set.get(id)
                    .map(|fw| {
                        assemble_with(fw, &records, generated_at, Some(period), host(&plugins))
                    })
                    .transpose()
                    .map_err(Failure::input)
            };
            let (old, new) = (packet(&before)?, packet(&after)?);
            let empty = |p: &vouch_engine::Packet| vouch_engine::Packet {
                controls: vec![],
                ..p.clone()
            };
            let (old, new) = match (old, new) {
                (Some(o), Some(n)) => (o, n),
                (Some(o), None) => (o.clone(), empty(&o)),
                (None, Some(n)) => (empty(&n), n),
                (None, None) => continue,
            };
            let c = compare(&old, &new).map_err(Failure::input)?;
            let lines = changes(&c, "    ");
            if lines.is_empty() {
                text.push_str(&format!("  {id}: no change\n"));
            } else {
                text.push_str(&format!(
                    "  {id}: {} regression(s), {} improvement(s)\n{lines}",
                    c.regressions, c.improvements
                ));
            }
            regressions.extend(c.regressed().map(|ch| format!("{id} {}", ch.control_id)));
            json.push(serde_json::json!({
                "records": source,
                "framework": id,
                "comparison": c,
            }));
        }
    }
    match a.format {
        Format::Text => print!("{text}"),
        Format::Json => println!("{}", serde_json::to_string_pretty(&Value::Array(json))?),
    }
    if a.fail_on == Some(FailOn::Regression) && !regressions.is_empty() {
        regressions.sort();
        regressions.dedup();
        return Err(Failure::negative(anyhow!(
            "{} regression{}: {}",
            regressions.len(),
            if regressions.len() == 1 { "" } else { "s" },
            regressions.join(", ")
        )));
    }
    Ok(())
}

/// What `vouch frameworks check` warns about in frameworks that load: paths
/// that select nothing on the example records (a misspelt field makes a
/// control inconclusive on every real document), and controls without a case.
pub fn warnings(
    set: &FrameworkSet,
    dir: Option<&Path>,
    records: Option<&Path>,
) -> Result<Vec<String>, Failure> {
    let mut out = vec![];
    let cases = match dir {
        None => Some(cases::builtin().map_err(|d| Failure::input(anyhow!("{d}")))?),
        Some(d) if d.join("cases").is_dir() => Some(read_cases(&d.join("cases"))?),
        Some(d) => {
            out.push(format!(
                "{} has no cases directory: no control of these frameworks is tested (`vouch frameworks test`)",
                d.display()
            ));
            None
        }
    };
    // The paths are tried on the example records and on every case's records
    // (a field the examples lack, such as a retention in days, is set by a case).
    let mut roots: Vec<Value> = vec![];
    match records {
        Some(p) => roots.push(read_records(p)?.to_value()),
        None => {
            for (_, text) in cases::BUILTIN_EXAMPLES {
                roots.push(serde_json::from_str(text).map_err(Failure::input)?);
            }
        }
    }
    let examples = ExampleSource { dir: None };
    for file in cases.iter().flatten() {
        for case in &file.cases {
            if let Ok(doc) = cases::case_records(&file.file, case, &examples) {
                roots.push(doc);
            }
        }
    }
    let refs: Vec<&Value> = roots.iter().collect();
    for fw in set.iter() {
        for e in empty_paths(fw, &refs) {
            out.push(format!("{} {e}", fw.framework));
        }
    }
    if let Some(files) = cases {
        for fw in set.iter() {
            for c in &fw.controls {
                let tested = files.iter().any(|f| {
                    f.framework == fw.framework && f.cases.iter().any(|k| k.control == c.control_id)
                });
                if !tested {
                    out.push(format!(
                        "{} {}: no case; add cases of {} (`vouch frameworks test` runs them)",
                        fw.framework,
                        c.control_id,
                        cases::reachable(c).join(", ")
                    ));
                }
            }
        }
    }
    Ok(out)
}
