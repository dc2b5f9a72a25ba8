//! The command catalog: one TOML file per chat command in `commands/`.
//!
//! A file names the command, its arguments, the engine action that runs it,
//! the chart it attaches and the action's parameters. Operators tune
//! runbooks here without recompiling; `scalebot check` reports every problem
//! with its file and key.

mod parse;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub use parse::{ArgValue, Invocation, ParseError, Parsed};

/// One problem found in a file, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: key `{}`: {}",
                self.file.display(),
                self.key,
                self.message
            )
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the catalog:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct CatalogError(pub Vec<Problem>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgKind {
    /// A Lambda function name.
    Function,
    /// A Lambda version or alias; `$LATEST` is refused (AWS allows no
    /// provisioned concurrency there).
    Qualifier,
    /// A whole number, within `min`..=`max` when given.
    Integer,
    /// A decimal number, within `min`..=`max` when given.
    Number,
    /// A day, `YYYY-MM-DD` or `YYYYMMDD`.
    Date,
    /// A single word, one of `choices` when given.
    Word,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    pub name: String,
    pub kind: ArgKind,
    #[serde(default)]
    pub help: String,
    #[serde(default = "yes")]
    pub required: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Words accepted in place of a number (e.g. `clear`), or the only
    /// words a `word` argument accepts.
    #[serde(default)]
    pub choices: Vec<String>,
    /// The last argument may take several values (`restart <function>…`).
    #[serde(default)]
    pub many: bool,
    /// Used when an optional argument is left out.
    pub default: Option<toml::Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// What the user types after the slash command, possibly two words.
    pub name: String,
    pub summary: String,
    /// The arguments as the user writes them, e.g. `<function>`.
    #[serde(default)]
    pub usage: String,
    /// Longer help: what it does and how it differs from the runbook.
    #[serde(default)]
    pub help: String,
    /// The runbook section this command replaces.
    #[serde(default)]
    pub runbook: String,
    /// The engine action that runs the command.
    pub action: String,
    /// The chart (a file stem in `charts/`) attached to the reply.
    pub chart: Option<String>,
    /// Whether the command changes anything in AWS.
    #[serde(default)]
    pub changes: bool,
    /// Who confirms a changing command, and how many people.
    pub confirm: Option<ConfirmSpec>,
    /// A role from the config's `[roles]` that a person needs to run the
    /// command at all (to see what it reads, or to ask for its plan). Left
    /// out: the config's `permissions.read` (everyone when that is unset).
    /// Who confirms a change is `[confirm] role`.
    pub role: Option<String>,
    #[serde(default)]
    pub args: Vec<ArgSpec>,
    /// Parameters for the action (windows, periods, defaults).
    #[serde(default)]
    pub params: toml::Table,
    #[serde(skip)]
    pub file: PathBuf,
}

impl CommandSpec {
    pub fn usage_line(&self, slash: &str) -> String {
        if self.usage.is_empty() {
            format!("{slash} {}", self.name)
        } else {
            format!("{slash} {} {}", self.name, self.usage)
        }
    }

    pub fn param_i64(&self, key: &str, default: i64) -> i64 {
        self.params
            .get(key)
            .and_then(toml::Value::as_integer)
            .unwrap_or(default)
    }

    fn words(&self) -> Vec<&str> {
        self.name.split_whitespace().collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmSpec {
    /// A role from the config's `[roles]`.
    pub role: String,
    /// Distinct people who must confirm; with 2 or more the requester
    /// cannot be one of them.
    #[serde(default = "one")]
    pub approvals: u32,
    /// Danger-styled button, and a stronger confirm dialog.
    #[serde(default)]
    pub destructive: bool,
}

fn one() -> u32 {
    1
}

/// The loaded catalog, ordered by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    commands: BTreeMap<String, Arc<CommandSpec>>,
}

impl Catalog {
    /// Loads every `*.toml` in `dir`. `known_actions` and `known_charts` are
    /// what the engine and `charts/` provide; a command naming anything else
    /// is a problem.
    pub fn load(
        dir: &Path,
        known_actions: &[&str],
        known_charts: &[String],
    ) -> Result<Self, CatalogError> {
        let mut problems = Vec::new();
        let mut commands = BTreeMap::new();
        let files = match toml_files(dir) {
            Ok(files) => files,
            Err(problem) => return Err(CatalogError(vec![problem])),
        };
        for file in files {
            match load_one(&file, known_actions, known_charts) {
                Ok(spec) => {
                    if let Some(existing) = commands.get(&spec.name) {
                        let existing: &Arc<CommandSpec> = existing;
                        problems.push(Problem {
                            file: file.clone(),
                            key: "name".into(),
                            message: format!(
                                "command `{}` is also defined in {}",
                                spec.name,
                                existing.file.display()
                            ),
                        });
                    } else {
                        commands.insert(spec.name.clone(), Arc::new(spec));
                    }
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
        if commands.is_empty() && problems.is_empty() {
            problems.push(Problem {
                file: dir.to_owned(),
                key: String::new(),
                message: "no command files (*.toml) found".into(),
            });
        }
        if problems.is_empty() {
            Ok(Self { commands })
        } else {
            Err(CatalogError(problems))
        }
    }

    pub fn from_specs(specs: impl IntoIterator<Item = CommandSpec>) -> Self {
        Self {
            commands: specs
                .into_iter()
                .map(|s| (s.name.clone(), Arc::new(s)))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<CommandSpec>> {
        self.commands.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<CommandSpec>> {
        self.commands.values()
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Parses what the user typed after the slash command.
    pub fn parse(&self, text: &str) -> Parsed {
        parse::parse(self, text)
    }
}

pub(crate) fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, Problem> {
    let entries = std::fs::read_dir(dir).map_err(|e| Problem {
        file: dir.to_owned(),
        key: String::new(),
        message: format!("cannot read the folder: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Turns a toml error into the dotted key it is about, when it names one.
pub(crate) fn toml_problem(file: &Path, err: &toml::de::Error) -> Problem {
    let message = err.message().to_owned();
    // toml reports unknown and missing fields in the message; pull the
    // field name out so the problem names a key like the others do.
    let key = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| {
            message
                .strip_prefix(prefix)
                .and_then(|rest| rest.split('`').next())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let line = err
        .span()
        .and_then(|span| std::fs::read_to_string(file).ok().map(|t| (t, span)))
        .map(|(t, span)| t[..span.start.min(t.len())].lines().count().max(1));
    Problem {
        file: file.to_owned(),
        key,
        message: match line {
            Some(l) => format!("{message} (line {l})"),
            None => message,
        },
    }
}

fn load_one(
    file: &Path,
    known_actions: &[&str],
    known_charts: &[String],
) -> Result<CommandSpec, Vec<Problem>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![Problem {
            file: file.to_owned(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    let mut spec: CommandSpec = toml::from_str(&text).map_err(|e| vec![toml_problem(file, &e)])?;
    spec.file = file.to_owned();
    let mut found = Found {
        file,
        problems: Vec::new(),
    };
    check_names(&spec, known_actions, known_charts, &mut found);
    check_args(&spec, &mut found);
    match (&spec.confirm, spec.changes) {
        (None, true) => found.add(
            "confirm",
            "a command that changes AWS needs a [confirm] section (role, approvals)",
        ),
        (Some(c), _) if c.approvals == 0 => found.add("confirm.approvals", "must be at least 1"),
        _ => {}
    }
    for (key, role) in [
        ("role", spec.role.as_deref()),
        (
            "confirm.role",
            spec.confirm.as_ref().map(|c| c.role.as_str()),
        ),
    ] {
        if role.is_some_and(|r| r.trim().is_empty()) {
            found.add(key, "must name a role of the config's [roles]");
        }
    }
    if found.problems.is_empty() {
        Ok(spec)
    } else {
        Err(found.problems)
    }
}

/// The problems found in one command file, in the order they were found.
struct Found<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
}

impl Found<'_> {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            key: key.into(),
            message: message.into(),
        })
    }
}

/// The command's words, and the action and chart it names.
fn check_names(
    spec: &CommandSpec,
    known_actions: &[&str],
    known_charts: &[String],
    found: &mut Found<'_>,
) {
    let words = spec.words();
    if words.is_empty()
        || words.len() > 2
        || !words
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
    {
        found.add(
            "name",
            "must be one or two lowercase words (letters and `-`)",
        );
    }
    if spec.name == "help" {
        found.add("name", "`help` is built in");
    }
    if !known_actions.contains(&spec.action.as_str()) {
        found.add(
            "action",
            format!(
                "unknown action `{}`; known: {}",
                spec.action,
                known_actions.join(", ")
            ),
        );
    }
    if let Some(chart) = &spec.chart
        && !known_charts.iter().any(|c| c == chart)
    {
        found.add("chart", format!("no chart `{chart}` in the charts folder"));
    }
}

/// Each argument on its own, and their order: required ones first, only
/// the last one taking several values.
fn check_args(spec: &CommandSpec, found: &mut Found<'_>) {
    let mut seen_optional = false;
    for (i, arg) in spec.args.iter().enumerate() {
        let key = format!("args[{i}]");
        if !arg.required {
            seen_optional = true;
        } else if seen_optional {
            found.add(
                &format!("{key}.required"),
                "a required argument cannot follow an optional one",
            );
        }
        if let (Some(min), Some(max)) = (arg.min, arg.max)
            && min > max
        {
            found.add(
                &format!("{key}.min"),
                format!("min {min} is above max {max}"),
            );
        }
        if (arg.min.is_some() || arg.max.is_some())
            && !matches!(arg.kind, ArgKind::Integer | ArgKind::Number)
        {
            found.add(
                &format!("{key}.min"),
                "min and max apply to number arguments only",
            );
        }
        if arg.many && i + 1 != spec.args.len() {
            found.add(
                &format!("{key}.many"),
                "only the last argument can take several values",
            );
        }
        if arg.default.is_some() && arg.required {
            found.add(
                &format!("{key}.default"),
                "a default only makes sense with required = false",
            );
        }
    }
}
