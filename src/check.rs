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
    if let Some(catalog) = &catalog {
        for spec in catalog.iter() {
            if let Some(confirm) = &spec.confirm
                && !settings.roles.contains_key(&confirm.role)
            {
                problems.push(Problem {
                    file: spec.file.clone(),
                    key: "confirm.role".into(),
                    message: format!(
                        "role `{}` is not in the [roles] of {}",
                        confirm.role,
                        config.display()
                    ),
                });
            }
        }
    }
    match (catalog, charts) {
        (Some(catalog), Some(charts)) if problems.is_empty() => Ok(Summary {
            commands: catalog.len(),
            charts: charts.names().len(),
        }),
        _ => Err(problems),
    }
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
