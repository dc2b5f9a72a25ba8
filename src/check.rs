//! `scalebot check`: the config and every file in `commands/` and `charts/`,
//! each problem reported with its file and key.

use std::path::Path;

use crate::catalog::{Catalog, Problem};
use crate::chart::ChartCatalog;
use crate::config::ConfigError;
use crate::engine::action_names;
use crate::settings_file::SettingsFile;

pub struct Summary {
    pub commands: usize,
    pub charts: usize,
    /// Who may do what, one line each, for people to read.
    pub permissions: Vec<String>,
}

pub fn run(config: &Path) -> Result<Summary, Vec<Problem>> {
    let settings = SettingsFile::load(config).map_err(|e| vec![config_problem(config, e)])?;
    let mut problems = Vec::new();
    let charts = match ChartCatalog::load(&settings.catalog.charts_dir) {
        Ok(c) => Some(c),
        Err(mut p) => {
            problems.append(&mut p);
            None
        }
    };
    // Commands are checked against the chart names even when some chart
    // files are broken, so that one run reports everything.
    let chart_names = charts.as_ref().map(ChartCatalog::names).unwrap_or_else(|| {
        crate::catalog::toml_files(&settings.catalog.charts_dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect()
    });
    let catalog = match Catalog::load(
        &settings.catalog.commands_dir,
        &action_names(),
        &chart_names,
    ) {
        Ok(c) => Some(c),
        Err(mut e) => {
            problems.append(&mut e.0);
            None
        }
    };
    problems.extend(unknown_roles(config, &settings, catalog.as_ref()));
    match (catalog, charts) {
        (Some(catalog), Some(charts)) if problems.is_empty() => Ok(Summary {
            commands: catalog.len(),
            charts: charts.names().len(),
            permissions: who_may(&settings, &catalog),
        }),
        _ => Err(problems),
    }
}

/// Every role named in `[permissions]` or in a command file that `[roles]`
/// does not define: nobody could do that.
fn unknown_roles(
    config: &Path,
    settings: &SettingsFile,
    catalog: Option<&Catalog>,
) -> Vec<Problem> {
    let missing = |role: &str| !settings.roles.contains_key(role);
    let message = |role: &str| {
        format!(
            "role `{role}` is not in the [roles] of {}",
            config.display()
        )
    };
    let mut problems: Vec<Problem> = settings
        .permissions
        .named_roles()
        .filter(|(_, role)| missing(role))
        .map(|(key, role)| Problem {
            file: config.to_owned(),
            key: key.into(),
            message: message(role),
        })
        .collect();
    for spec in catalog.into_iter().flat_map(Catalog::iter) {
        let named = [
            ("role", spec.role.as_deref()),
            (
                "confirm.role",
                spec.confirm.as_ref().map(|c| c.role.as_str()),
            ),
        ];
        for (key, role) in named {
            if let Some(role) = role.filter(|r| missing(r)) {
                problems.push(Problem {
                    file: spec.file.clone(),
                    key: key.into(),
                    message: message(role),
                });
            }
        }
    }
    problems
}

/// Who may do what: incident control, reading, every command with a role
/// of its own and every changing command, each with the roles' members.
fn who_may(settings: &SettingsFile, catalog: &Catalog) -> Vec<String> {
    let role = |r: &str| {
        let members = settings.roles.get(r).cloned().unwrap_or_default();
        if members.is_empty() {
            format!("role {r} (nobody)")
        } else {
            format!("role {r} ({})", members.join(", "))
        }
    };
    let any = |roles: &[String]| {
        roles
            .iter()
            .map(|r| role(r))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let reading = match &settings.permissions.read {
        Some(roles) => any(roles),
        None => "everyone".to_owned(),
    };
    let mut lines = vec![
        format!(
            "control incidents (ack, escalate, resolve, keep, note, and their buttons): {}",
            any(&settings.permissions.incidents)
        ),
        format!(
            "change an incident's severity, silence and unsilence alarms: {}",
            any(&settings.permissions.incidents)
        ),
        format!("read AWS data and view incidents: {reading}"),
    ];
    for (person, ids) in settings.people.by_person() {
        lines.push(format!(
            "person {person} (one approval, whichever account): {}",
            ids.join(", ")
        ));
    }
    for spec in catalog.iter() {
        let asks = spec.role.as_deref().map(role);
        match (&spec.confirm, asks) {
            (Some(c), asks) if spec.changes => lines.push(format!(
                "/scale {}: asked by {}; confirmed by {} {} of {}{}{}",
                spec.name,
                asks.unwrap_or_else(|| reading.clone()),
                c.approvals,
                if c.approvals == 1 { "person" } else { "people" },
                role(&c.role),
                if c.approvals >= 2 {
                    ", not the requester"
                } else {
                    ""
                },
                if spec.action == "undo" {
                    ", and at least as many as the plans it reverts needed"
                } else {
                    ""
                },
            )),
            (_, Some(asks)) => lines.push(format!("/scale {}: {asks}", spec.name)),
            _ => {}
        }
    }
    lines
}

fn config_problem(config: &Path, e: ConfigError) -> Problem {
    match e {
        ConfigError::Invalid { path, key, message } => Problem {
            file: path,
            key,
            message,
        },
        other => Problem {
            file: config.to_owned(),
            key: String::new(),
            message: other.to_string(),
        },
    }
}
