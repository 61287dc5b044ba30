//! Loading framework files: every problem at once, each at `file:line:column`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::positions::{render, Pos, PositionIndex, Seg};
use super::{Check, Control, Framework, Scope, Selector, TimeBasis, WhenMissing, OPERATORS};

/// One problem in a framework file, with a position and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The YAML path of the offending node, e.g. `controls[2].checks[0]`.
    pub path: String,
    pub message: String,
    /// The source line, so that the reader sees the offending value.
    pub excerpt: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if !self.path.is_empty() {
            write!(f, " (at {})", self.path)?;
        }
        if let Some(line) = &self.excerpt {
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            write!(f, "\n {gutter} | {line}")?;
            let caret_at = line
                .char_indices()
                .take_while(|(i, _)| *i + 1 < self.column)
                .count();
            write!(f, "\n {pad} | {}^", " ".repeat(caret_at))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found while loading a set of framework files.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// What the loader knows of the plugins a framework may reference: the sha256
/// of each available `.wasm` file, by plugin name.
pub trait PluginCatalog {
    fn sha256(&self, name: &str) -> Option<String>;
    /// Where plugins come from, for messages (e.g. the plugins directory).
    fn describe(&self) -> String;
}

/// No plugins available.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPlugins;

impl PluginCatalog for NoPlugins {
    fn sha256(&self, _: &str) -> Option<String> {
        None
    }
    fn describe(&self) -> String {
        "no plugins directory (VOUCH_PLUGINS_DIR / --plugins-dir)".into()
    }
}

/// The loaded frameworks, by identifier.
#[derive(Debug, Clone, Default)]
pub struct FrameworkSet {
    /// Shared, so that a server hands a framework to each evaluation
    /// without copying its controls.
    frameworks: BTreeMap<String, std::sync::Arc<Framework>>,
}

impl FrameworkSet {
    /// Loads framework files given as `(file name, text)`; every problem of every
    /// file is reported together.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, LoadError> {
        Self::from_sources_with(sources, &NoPlugins)
    }

    /// Like [`Self::from_sources`], checking `plugin:` references against `plugins`.
    pub fn from_sources_with<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
        plugins: &dyn PluginCatalog,
    ) -> Result<Self, LoadError> {
        let mut frameworks = BTreeMap::new();
        let mut diagnostics = Vec::new();
        for (file, text) in sources {
            match parse_framework_with(file, text, plugins) {
                Ok(fw) => {
                    if frameworks.contains_key(&fw.framework) {
                        diagnostics.push(Diagnostic {
                            file: file.to_owned(),
                            line: 1,
                            column: 1,
                            path: "framework".into(),
                            message: format!("framework `{}` is defined twice", fw.framework),
                            excerpt: None,
                            hint: Some(
                                "each framework identifier must be unique in the directory".into(),
                            ),
                        });
                    } else {
                        frameworks.insert(fw.framework.clone(), std::sync::Arc::new(fw));
                    }
                }
                Err(mut d) => diagnostics.append(&mut d),
            }
        }
        if diagnostics.is_empty() {
            Ok(FrameworkSet { frameworks })
        } else {
            Err(LoadError { diagnostics })
        }
    }

    /// The built-in frameworks. They are tested to load; an error here is a build defect.
    pub fn builtin() -> Result<Self, LoadError> {
        Self::from_sources(BUILTIN.iter().copied())
    }

    pub fn get(&self, id: &str) -> Option<&Framework> {
        self.frameworks.get(id).map(|f| &**f)
    }

    /// Framework `id`, shared (a reference count, not a copy).
    pub fn shared(&self, id: &str) -> Option<std::sync::Arc<Framework>> {
        self.frameworks.get(id).cloned()
    }

    /// Frameworks sorted by identifier.
    pub fn iter(&self) -> impl Iterator<Item = &Framework> {
        self.frameworks.values().map(|f| &**f)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.frameworks.keys().map(String::as_str).collect()
    }

    pub fn len(&self) -> usize {
        self.frameworks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frameworks.is_empty()
    }
}

/// The framework files built into the binary (`frameworks/*.yaml`).
pub const BUILTIN: &[(&str, &str)] = &[
    ("dora.yaml", include_str!("../../../frameworks/dora.yaml")),
    (
        "eu_ai_act.yaml",
        include_str!("../../../frameworks/eu_ai_act.yaml"),
    ),
    (
        "gdpr_ropa.yaml",
        include_str!("../../../frameworks/gdpr_ropa.yaml"),
    ),
    ("soc2.yaml", include_str!("../../../frameworks/soc2.yaml")),
];

/// The fields a framework file's top level may have; `controls` is kept raw so
/// that each control is parsed (and its errors reported) on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    framework: String,
    name: String,
    version: String,
    statement: String,
    attests: String,
    monthly_price_eur: u32,
    scope_boundary: String,
    #[serde(default)]
    valid_for_days: Option<u32>,
    controls: Vec<serde_yaml::Value>,
}

const FRAMEWORK_FIELDS: &str =
    "framework, name, version, statement, attests, monthly_price_eur, scope_boundary, valid_for_days, controls";
const CONTROL_FIELDS: &str =
    "control_id, title, reference, assertion, evidence_refs, time_basis, thresholds, empty, applies_if, scope, checks";

struct Ctx<'a> {
    plugins: &'a dyn PluginCatalog,
    file: &'a str,
    lines: Vec<&'a str>,
    index: PositionIndex,
    out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn push_at(&mut self, pos: Pos, path: &[Seg], message: String, hint: Option<String>) {
        let excerpt = self
            .lines
            .get(pos.line.saturating_sub(1))
            .map(|l| l.trim_end().to_owned());
        self.out.push(Diagnostic {
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            path: render(path),
            message,
            excerpt,
            hint,
        });
    }

    fn value(&mut self, path: &[Seg], message: String, hint: Option<String>) {
        let pos = self.index.value(path);
        self.push_at(pos, path, message, hint);
    }

    /// A serde error at `path` (relative to `base`), with a hint by kind.
    fn serde(
        &mut self,
        base: &[Seg],
        err: serde_path_to_error::Error<serde_yaml::Error>,
        what: &str,
    ) {
        let path = serde_path(base, &err);
        let message = strip_location(&err.inner().to_string());
        let (pos, suggestion) = locate_and_hint(&self.index, &path, &message);
        let fields = if what == "control" {
            CONTROL_FIELDS
        } else {
            FRAMEWORK_FIELDS
        };
        let hint = if backticked_after(&message, "unknown field `").is_some() {
            if is_check_path(&path) {
                Some("it is not an argument of this check; see frameworks/README.md for each check's arguments".to_owned())
            } else {
                Some(format!("the fields of a {what} are: {fields}"))
            }
        } else if backticked_after(&message, "unknown variant `").is_some() {
            if message.contains("`all_true`") {
                Some(format!("a check is one of: {}", OPERATORS.join(", ")))
            } else {
                None
            }
        } else if message.starts_with("missing field") {
            Some(format!("the fields of a {what} are: {fields}"))
        } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
            Some(
                "check the argument's type: paths and durations are strings, bounds are integers"
                    .into(),
            )
        } else {
            None
        };
        // A near name says it all; the message lists the others.
        let hint = suggestion.or(hint);
        self.push_at(pos, &path, message, hint);
    }
}

/// The YAML path of a serde error, below `base`.
pub(crate) fn serde_path<E>(base: &[Seg], err: &serde_path_to_error::Error<E>) -> Vec<Seg> {
    let mut path = base.to_vec();
    for seg in err.path().iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => path.push(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => path.push(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => path.push(Seg::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    path
}

/// Where a serde error at `path` points (an unknown name at its key), and,
/// for a name close to one serde expected, "did you mean `at_least`?".
pub(crate) fn locate_and_hint(
    index: &PositionIndex,
    path: &[Seg],
    message: &str,
) -> (Pos, Option<String>) {
    let named = backticked_after(message, "unknown field `")
        .or_else(|| backticked_after(message, "unknown variant `"));
    let Some(name) = named else {
        return (index.value(path), None);
    };
    let mut key_path = path.to_vec();
    if key_path.last() != Some(&Seg::Key(name.clone())) {
        key_path.push(Seg::Key(name.clone()));
    }
    let expected = expected_names(message);
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let hint = suggest(&name, &expected).map(|s| format!("did you mean `{s}`?"));
    (index.key(&key_path), hint)
}

/// The names serde lists after "expected" (`expected one of `a`, `b``, `expected `a` or `b``).
fn expected_names(message: &str) -> Vec<String> {
    let Some(at) = message.find("expected") else {
        return vec![];
    };
    message[at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The known name nearest to `name`, if it is near enough to be a slip:
/// at most a third of its characters differ (and always one), a transposition counting as one (optimal string alignment).
pub fn suggest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (strsim::osa_distance(name, k), *k))
        .filter(|(d, k)| *d <= limit && *k != name)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// "unknown control of soc2 `CC6.8`", then "did you mean `CC6.1`?" for a
/// near name, else the names there are; `name` with its control characters
/// escaped (it is someone's input).
pub fn unknown_name(what: &str, name: &str, known: &[&str]) -> String {
    let mut msg = format!("unknown {what} `{}`", crate::explain::escaped(name));
    match suggest(name, known) {
        Some(s) => msg.push_str(&format!(": did you mean `{s}`?")),
        None => msg.push_str(&format!("; known: {}", known.join(", "))),
    }
    msg
}

fn is_check_path(path: &[Seg]) -> bool {
    path.iter()
        .any(|s| matches!(s, Seg::Key(k) if k == "checks" || k == "where"))
}

fn backticked_after(message: &str, prefix: &str) -> Option<String> {
    let start = message.find(prefix)? + prefix.len();
    let end = message[start..].find('`')?;
    Some(message[start..start + end].to_owned())
}

/// serde_yaml appends " at line L column C" for errors from text; we report positions ourselves.
pub(crate) fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Parses and validates one framework file (no plugins available).
pub fn parse_framework(file: &str, text: &str) -> Result<Framework, Vec<Diagnostic>> {
    parse_framework_with(file, text, &NoPlugins)
}

/// Parses and validates one framework file, checking `plugin:` references.
pub fn parse_framework_with(
    file: &str,
    text: &str,
    plugins: &dyn PluginCatalog,
) -> Result<Framework, Vec<Diagnostic>> {
    let lines: Vec<&str> = text.lines().collect();
    let index = match PositionIndex::build(text) {
        Ok(index) => index,
        Err(e) => {
            let mut ctx = Ctx {
                plugins,
                file,
                lines,
                index: PositionIndex::default(),
                out: vec![],
            };
            let hint = if e.message.contains("anchor or alias") {
                "`*` and `&` start YAML aliases and anchors: quote the value, e.g. \"services[*].tls_enabled\""
            } else {
                "check indentation, and quote values that contain `: `, `#`, `*`, `[` or `{`"
            };
            ctx.push_at(
                e.pos,
                &[],
                format!("YAML syntax error: {}", e.message),
                Some(hint.into()),
            );
            return Err(ctx.out);
        }
    };
    let mut ctx = Ctx {
        plugins,
        file,
        lines,
        index,
        out: vec![],
    };
    let raw: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            ctx.push_at(
                Pos { line, column },
                &[],
                format!("YAML error: {}", strip_location(&e.to_string())),
                None,
            );
            return Err(ctx.out);
        }
    };
    let raw_controls = raw.get("controls").cloned();
    let header = match serde_path_to_error::deserialize::<_, Header>(raw) {
        Ok(h) => Some(h),
        Err(e) => {
            ctx.serde(&[], e, "framework file");
            None
        }
    };
    let control_values: Vec<serde_yaml::Value> = match (&header, raw_controls) {
        (Some(h), _) => h.controls.clone(),
        (None, Some(serde_yaml::Value::Sequence(seq))) => seq,
        _ => vec![],
    };

    let mut controls = Vec::new();
    for (i, v) in control_values.into_iter().enumerate() {
        let base = [Seg::from("controls"), Seg::Index(i)];
        match serde_path_to_error::deserialize::<_, Control>(v) {
            Ok(c) => controls.push((i, c)),
            Err(e) => ctx.serde(&base, e, "control"),
        }
    }

    let Some(h) = header else {
        validate_controls(&mut ctx, &mut controls);
        return Err(ctx.out);
    };
    validate_header(&mut ctx, &h);
    if h.controls.is_empty() {
        ctx.value(
            &["controls".into()],
            "a framework needs at least one control".into(),
            None,
        );
    }
    validate_controls(&mut ctx, &mut controls);
    if !ctx.out.is_empty() {
        ctx.out.sort_by_key(|d| (d.line, d.column));
        return Err(ctx.out);
    }
    let mut controls: Vec<Control> = controls.into_iter().map(|(_, c)| c).collect();
    number_paths(&mut controls);
    Ok(Framework {
        framework: h.framework,
        name: nfc(&h.name),
        version: nfc(&h.version),
        statement: nfc(&h.statement),
        attests: nfc(&h.attests),
        monthly_price_eur: h.monthly_price_eur,
        scope_boundary: nfc(&h.scope_boundary),
        valid_for_days: h.valid_for_days,
        controls,
        source_sha256: Some(crate::signing::sha256_hex(text.as_bytes())),
    })
}

/// Numbers the plain paths the controls read on the resources of their
/// scope ([`Selector::slot`]): for each `scope.each`, the first names of all
/// of them, sorted and distinct, become the scope's `first_names`.
fn number_paths(controls: &mut [Control]) {
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for control in controls.iter_mut() {
        let Some(scope) = control.scope.as_mut() else {
            continue;
        };
        let firsts = names.entry(scope.each.as_str().to_owned()).or_default();
        let mut add = |sel: &mut Selector| {
            if let Some(first) = sel.names().and_then(<[String]>::first) {
                firsts.insert(first.clone());
            }
        };
        resource_paths(&mut scope.filter, &mut add);
        resource_paths(&mut control.checks, &mut add);
    }
    for control in controls.iter_mut() {
        let Some(scope) = control.scope.as_mut() else {
            continue;
        };
        let firsts: Vec<String> = names[scope.each.as_str()].iter().cloned().collect();
        let mut number = |sel: &mut Selector| sel.number(&firsts);
        resource_paths(&mut scope.filter, &mut number);
        resource_paths(&mut control.checks, &mut number);
        scope.first_names = firsts;
    }
}

/// Calls `visit` with each path of `checks` that is read on the resource
/// the checks judge (not on the items of a list in it: `count`'s and
/// `max_gap`'s `where`, `at` and `within_period`).
fn resource_paths(checks: &mut [Check], visit: &mut dyn FnMut(&mut Selector)) {
    for check in checks {
        match check {
            Check::AllTrue(sel)
            | Check::NonEmpty(sel)
            | Check::CoversPeriod(sel)
            | Check::ForPeriod(sel) => visit(sel),
            Check::Equals(a) => visit(&mut a.path),
            Check::OneOf(a) => visit(&mut a.path),
            Check::AtLeast(a) | Check::AtMost(a) => visit(&mut a.path),
            Check::NotOlderThan(a) => visit(&mut a.path),
            Check::Count(a) => visit(&mut a.path),
            Check::MaxGap(a) => visit(&mut a.path),
            Check::Plugin(a) => {
                if let Some(sel) = &mut a.path {
                    visit(sel)
                }
            }
            Check::AnyOf(alternatives) => resource_paths(alternatives, visit),
        }
    }
}

fn nfc(s: &str) -> String {
    s.nfc().collect()
}

fn file_stem(file: &str) -> &str {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    name.strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name)
}

/// How long after its period a packet may be relied on, in days: a day to ten years.
pub const VALID_FOR_DAYS: std::ops::RangeInclusive<u32> = 1..=3660;

/// The framework identifiers the loader accepts, as a regular expression (for schemas).
pub const IDENTIFIER_PATTERN: &str = "^[a-z0-9_]+$";

/// A framework identifier: lower-case ASCII letters, digits and `_`.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn validate_header(ctx: &mut Ctx<'_>, h: &Header) {
    let stem = file_stem(ctx.file).to_owned();
    if !is_identifier(&h.framework) {
        ctx.value(
            &["framework".into()],
            format!(
                "framework identifier `{}` must be lowercase letters, digits and `_`",
                h.framework
            ),
            Some("e.g. `soc2`, `gdpr_ropa`".into()),
        );
    } else if h.framework != stem {
        ctx.value(
            &["framework".into()],
            format!(
                "framework identifier `{}` does not match the file name `{}`",
                h.framework, ctx.file
            ),
            Some(format!(
                "rename the file to `{}.yaml` or the identifier to `{stem}`",
                h.framework
            )),
        );
    }
    if let Some(days) = h.valid_for_days {
        if !VALID_FOR_DAYS.contains(&days) {
            ctx.value(
                &["valid_for_days".into()],
                format!(
                    "valid_for_days {days} is out of range: a packet is good for {} to {} days after its period",
                    VALID_FOR_DAYS.start(),
                    VALID_FOR_DAYS.end()
                ),
                Some("e.g. `45`: a monthly packet plus two weeks' grace".into()),
            );
        }
    }
    for (field, text) in [
        ("name", &h.name),
        ("version", &h.version),
        ("statement", &h.statement),
        ("attests", &h.attests),
        ("scope_boundary", &h.scope_boundary),
    ] {
        text_field(ctx, &[field.into()], field, text);
    }
}

/// Text that ends up in packets: non-empty, no control characters (newlines included).
fn text_field(ctx: &mut Ctx<'_>, path: &[Seg], field: &str, text: &str) {
    if text.trim().is_empty() {
        ctx.value(path, format!("`{field}` must not be empty"), None);
    } else if let Some(c) = text.chars().find(|c| c.is_control()) {
        ctx.value(
            path,
            format!("`{field}` contains control character U+{:04X}", c as u32),
            Some("packets carry no control characters: write the text on one line, or use a folded `>-` block".into()),
        );
    }
}

fn validate_controls(ctx: &mut Ctx<'_>, controls: &mut [(usize, Control)]) {
    let mut seen = HashSet::new();
    for (i, c) in controls.iter_mut() {
        let base = vec![Seg::from("controls"), Seg::Index(*i)];
        let at = |k: &str| {
            let mut p = base.clone();
            p.push(k.into());
            p
        };
        if !seen.insert(c.control_id.clone()) {
            ctx.value(
                &at("control_id"),
                format!("duplicate control_id `{}`", c.control_id),
                Some("each control_id must be unique within its framework".into()),
            );
        }
        for (field, text) in [
            ("control_id", &c.control_id),
            ("title", &c.title),
            ("reference", &c.reference),
            ("assertion", &c.assertion),
        ] {
            text_field(ctx, &at(field), field, text);
        }
        c.title = nfc(&c.title);
        c.assertion = nfc(&c.assertion);
        c.reference = nfc(&c.reference);
        if c.evidence_refs.is_empty() {
            ctx.value(
                &at("evidence_refs"),
                "a control needs at least one evidence_ref".into(),
                None,
            );
        }
        for (j, sel) in c.evidence_refs.iter().enumerate() {
            let mut p = at("evidence_refs");
            p.push(Seg::Index(j));
            selector(ctx, &p, sel);
        }
        validate_checks(ctx, &at("applies_if"), &c.applies_if);
        if c.time_basis == TimeBasis::ThroughoutPeriod && c.scope.is_none() {
            ctx.value(
                &at("time_basis"),
                "`throughout_period` judges each resource's history, so the control needs a `scope`".into(),
                Some("add `scope: { each: services, id: service_id }`, or choose another time_basis".into()),
            );
        }
        if let Some(scope) = &mut c.scope {
            validate_scope(ctx, &at("scope"), scope);
        }
        if let Some(rule) = &mut c.empty {
            let mut p = at("empty");
            p.push("reason".into());
            text_field(ctx, &p, "reason", &rule.reason);
            rule.reason = nfc(&rule.reason);
        }
        for (j, t) in c.thresholds.iter_mut().enumerate() {
            let mut p = at("thresholds");
            p.push(Seg::Index(j));
            for (field, text) in [("value", &t.value), ("source", &t.source)] {
                let mut q = p.clone();
                q.push(field.into());
                text_field(ctx, &q, field, text);
            }
            t.value = nfc(&t.value);
            t.source = nfc(&t.source);
        }
        if c.checks.is_empty() {
            ctx.value(
                &at("checks"),
                "a control needs at least one check: nothing is attested without one".into(),
                Some(format!("a check is one of: {}", OPERATORS.join(", "))),
            );
        }
        validate_checks(ctx, &at("checks"), &c.checks);
    }
}

fn validate_when_missing(ctx: &mut Ctx<'_>, base: &[Seg], rule: &mut Option<WhenMissing>) {
    if let Some(rule) = rule {
        let mut p = base.to_vec();
        p.push("when_missing".into());
        p.push("reason".into());
        text_field(ctx, &p, "reason", &rule.reason);
        rule.reason = nfc(&rule.reason);
    }
}

fn validate_scope(ctx: &mut Ctx<'_>, base: &[Seg], scope: &mut Scope) {
    let at = |k: &str| {
        let mut p = base.to_vec();
        p.push(k.into());
        p
    };
    selector(ctx, &at("each"), &scope.each);
    if !is_identifier(&scope.id) {
        ctx.value(
            &at("id"),
            format!(
                "scope id `{}` must be a field name such as `service_id`",
                scope.id
            ),
            None,
        );
    }
    for (j, name) in scope.context.iter().enumerate() {
        if !is_identifier(name) {
            let mut p = at("context");
            p.push(Seg::Index(j));
            ctx.value(
                &p,
                format!("context `{name}` must be a field name such as `zones`"),
                None,
            );
        }
    }
    validate_checks(ctx, &at("where"), &scope.filter);
    if scope.when_missing.is_some() && scope.filter.is_empty() {
        ctx.value(
            &at("when_missing"),
            "`when_missing` says what a missing `where` field means, but this scope has no `where`"
                .into(),
            None,
        );
    }
    validate_when_missing(ctx, base, &mut scope.when_missing);
}

fn selector(ctx: &mut Ctx<'_>, path: &[Seg], sel: &Selector) {
    if let Some(err) = sel.error() {
        ctx.value(
            path,
            format!("`{}` is not a JSONPath expression: {err}", sel.as_str()),
            Some("write paths like `services[*].tls_enabled` or `backups.retention_days` (RFC 9535, `$.` optional)".into()),
        );
    }
}

fn scalar(ctx: &mut Ctx<'_>, path: &[Seg], v: &Value) {
    let ok = match v {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        // "The list is empty": e.g. a service recorded as holding no data categories.
        Value::Array(items) => items.is_empty(),
        _ => false,
    };
    if !ok {
        ctx.value(
            path,
            format!("`{v}` cannot be compared: use a string, boolean, integer, null or []"),
            Some("packets hold no floating-point numbers, and no lists or maps but the empty list, as expected values".into()),
        );
    }
}

fn validate_checks(ctx: &mut Ctx<'_>, base: &[Seg], checks: &[Check]) {
    for (j, check) in checks.iter().enumerate() {
        let mut p = base.to_vec();
        p.push(Seg::Index(j));
        validate_check(ctx, &p, check);
    }
}

fn validate_check(ctx: &mut Ctx<'_>, base: &[Seg], check: &Check) {
    let at = |op: &str, arg: Option<&str>| {
        let mut p = base.to_vec();
        p.push(op.into());
        if let Some(a) = arg {
            p.push(a.into());
        }
        p
    };
    match check {
        Check::AllTrue(sel) => selector(ctx, &at("all_true", None), sel),
        Check::NonEmpty(sel) => selector(ctx, &at("non_empty", None), sel),
        Check::CoversPeriod(sel) => selector(ctx, &at("covers_period", None), sel),
        Check::ForPeriod(sel) => selector(ctx, &at("for_period", None), sel),
        Check::MaxGap(a) => {
            selector(ctx, &at("max_gap", Some("path")), &a.path);
            selector(ctx, &at("max_gap", Some("at")), &a.at);
            if let Some(err) = a.max.error() {
                ctx.value(
                    &at("max_gap", Some("max")),
                    format!("`{}` is not a duration: {err}", a.max.as_str()),
                    Some("write durations like `36h`, `7d`, `90days`, `6months`".into()),
                );
            }
            validate_checks(ctx, &at("max_gap", Some("where")), &a.filter);
        }
        Check::Equals(a) => {
            selector(ctx, &at("equals", Some("path")), &a.path);
            scalar(ctx, &at("equals", Some("value")), &a.value);
        }
        Check::OneOf(a) => {
            selector(ctx, &at("one_of", Some("path")), &a.path);
            if a.values.is_empty() {
                ctx.value(
                    &at("one_of", Some("values")),
                    "`values` must list at least one value".into(),
                    None,
                );
            }
            for (k, v) in a.values.iter().enumerate() {
                let mut p = at("one_of", Some("values"));
                p.push(Seg::Index(k));
                scalar(ctx, &p, v);
            }
        }
        Check::AtLeast(a) => selector(ctx, &at("at_least", Some("path")), &a.path),
        Check::AtMost(a) => selector(ctx, &at("at_most", Some("path")), &a.path),
        Check::NotOlderThan(a) => {
            selector(ctx, &at("not_older_than", Some("path")), &a.path);
            if let Some(err) = a.max_age.error() {
                ctx.value(
                    &at("not_older_than", Some("max_age")),
                    format!("`{}` is not a duration: {err}", a.max_age.as_str()),
                    Some("write durations like `36h`, `7d`, `90days`, `6months`".into()),
                );
            }
        }
        Check::Count(a) => {
            selector(ctx, &at("count", Some("path")), &a.path);
            if let Some(sel) = &a.within_period {
                selector(ctx, &at("count", Some("within_period")), sel);
            }
            match (a.min, a.max) {
                (None, None) => ctx.value(
                    &at("count", None),
                    "`count` needs `min`, `max` or both".into(),
                    Some("e.g. `min: 1` for \"at least one\"".into()),
                ),
                (Some(lo), Some(hi)) if lo > hi => ctx.value(
                    &at("count", Some("min")),
                    format!("`min` {lo} is greater than `max` {hi}"),
                    None,
                ),
                _ => {}
            }
            validate_checks(ctx, &at("count", Some("where")), &a.filter);
            if let Some(rule) = &a.when_missing {
                if rule.reason.trim().is_empty() {
                    ctx.value(
                        &at("count", Some("when_missing")),
                        "`when_missing` needs a `reason`".into(),
                        None,
                    );
                }
            }
        }
        Check::Plugin(a) => {
            let name_path = at("plugin", Some("name"));
            let sha_path = at("plugin", Some("sha256"));
            if let Some(sel) = &a.path {
                selector(ctx, &at("plugin", Some("path")), sel);
            }
            let valid_sha = a.sha256.len() == 64
                && a.sha256
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
            if !valid_sha {
                ctx.value(
                    &sha_path,
                    format!("`{}` is not a lowercase hex SHA-256", a.sha256),
                    Some("`vouch plugins check FILE.wasm` prints the sha256 to pin".into()),
                );
            }
            match ctx.plugins.sha256(&a.name) {
                None => {
                    let from = ctx.plugins.describe();
                    ctx.value(
                        &name_path,
                        format!("plugin `{}` is not available from {from}", a.name),
                        Some(format!("put {}.wasm in the plugins directory (VOUCH_PLUGINS_DIR)", a.name)),
                    );
                }
                Some(actual) if valid_sha && actual != a.sha256 => ctx.value(
                    &sha_path,
                    format!("plugin `{}` has sha256 {actual}, but the framework pins {}", a.name, a.sha256),
                    Some("a changed plugin must be reviewed and pinned again: update sha256 to the new file's digest".into()),
                ),
                _ => {}
            }
        }
        Check::AnyOf(alternatives) => {
            if alternatives.is_empty() {
                ctx.value(
                    &at("any_of", None),
                    "`any_of` needs at least one check".into(),
                    None,
                );
            }
            validate_checks(ctx, &at("any_of", None), alternatives);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The pattern the API documents is the check the loader makes.
        #[test]
        fn identifier_pattern_is_the_loaders_check(s in "[a-zA-Z0-9_ .\\-é]{0,12}") {
            let pattern = regex::Regex::new(IDENTIFIER_PATTERN).unwrap();
            proptest::prop_assert_eq!(pattern.is_match(&s), is_identifier(&s), "{}", s);
        }
    }

    /// Every plain path a built-in control reads on its scope's resources
    /// is numbered by the first names of its scope path; the paths read on
    /// the items of a list in a resource (`count`'s `where`) are not.
    #[test]
    fn paths_read_on_resources_are_numbered_by_their_scope() {
        let set = FrameworkSet::builtin().unwrap();
        let (mut numbered, mut items) = (0, 0);
        for framework in set.iter() {
            let mut firsts: BTreeMap<&str, &[String]> = BTreeMap::new();
            for control in &framework.controls {
                let Some(scope) = &control.scope else {
                    continue;
                };
                let names = &scope.first_names[..];
                assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
                let same = *firsts.entry(scope.each.as_str()).or_insert(names);
                assert_eq!(same, names, "one list per scope path");
                let mut checks = scope.filter.clone();
                checks.extend(control.checks.iter().cloned());
                resource_paths(&mut checks, &mut |sel| {
                    if let Some(first) = sel.names().map(|n| &n[0]) {
                        let slot = sel.slot().expect("a plain path read on a resource");
                        assert_eq!(&names[usize::from(slot)], first, "{sel:?}");
                        numbered += 1;
                    } else {
                        assert_eq!(sel.slot(), None, "{sel:?}");
                    }
                });
                for check in &control.checks {
                    if let Check::Count(a) = check {
                        for inner in &a.filter {
                            if let Check::Equals(e) = inner {
                                assert_eq!(e.path.slot(), None, "{:?}", e.path);
                                items += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(
            numbered > 50 && items > 0,
            "{numbered} numbered, {items} on items"
        );
    }
}
