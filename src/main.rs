//! The `scalebot` command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use scalebot::cloud::Cloud;
use scalebot::config::{Secrets, Settings};
use scalebot::engine::charting::{ChartPlan, QuerySet, by_id};
use scalebot::metrics::Metrics;
use scalebot::startup::{Application, load_catalogs};

#[derive(Parser)]
#[command(
    name = "scalebot",
    version,
    about = "The auto-scaling runbook, live in chat"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bot: HTTP ingress, Slack Socket Mode when SLACK_APP_TOKEN is set,
    /// Discord (gateway or HTTP) when DISCORD_BOT_TOKEN is set instead of Slack's.
    Serve {
        #[arg(long, default_value = "config/scalebot.example.toml")]
        config: PathBuf,
    },
    /// Validate the config and every file in commands/ and charts/.
    Check {
        #[arg(long, default_value = "config/scalebot.example.toml")]
        config: PathBuf,
    },
    /// Render a chart from CloudWatch to a PNG file.
    Chart {
        /// A chart name: a file stem in charts/.
        name: String,
        /// Template variables, e.g. --set function=persona-api.
        #[arg(long = "set", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "config/scalebot.example.toml")]
        config: PathBuf,
    },
    /// Discord: register the `/scale` command (needs DISCORD_BOT_TOKEN).
    Discord {
        #[command(subcommand)]
        command: DiscordCommand,
    },
    /// Policy snapshots in the store.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
}

#[derive(Subcommand)]
enum DiscordCommand {
    /// Register `/scale` with its subcommands and options from commands/:
    /// for one server with --guild (instant, for testing), else globally.
    Register {
        /// A server (guild) id; without it the command is registered globally.
        #[arg(long)]
        guild: Option<String>,
        #[arg(long, default_value = "config/scalebot.example.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Print a day's snapshot of scalable targets and scaling policies as
    /// JSON (the daily one when there is one), like the runbook's
    /// backup/lambda-policy-${DATE}.json.
    Export {
        /// The day, YYYY-MM-DD, in the display time zone.
        #[arg(long)]
        date: chrono::NaiveDate,
        #[arg(long, default_value = "config/scalebot.example.toml")]
        config: PathBuf,
    },
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

fn main() -> ExitCode {
    // Both ring and aws-lc-rs end up linked; rustls needs to be told which.
    let _ = rustls::crypto::ring::default_provider().install_default();
    scalebot::telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Cli::parse())) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let settings = Settings::load(&config)?;
            let app = Application::build(settings.clone(), Secrets::from_env()).await?;
            tracing::info!(
                listen = %settings.server.listen,
                port = app.port(),
                store = %scalebot::store::redact_url(&settings.store.url),
                "scalebot is serving"
            );
            app.run_until(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => match scalebot::check::run(&config) {
            Ok(summary) => {
                println!(
                    "ok: {} is valid; {} commands, {} charts",
                    config.display(),
                    summary.commands,
                    summary.charts
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(problems) => {
                for p in &problems {
                    println!("{p}");
                }
                println!("{} problem(s)", problems.len());
                Ok(ExitCode::from(1))
            }
        },
        Command::Snapshot {
            command: SnapshotCommand::Export { date, config },
        } => export_snapshot(date, &config).await,
        Command::Discord {
            command: DiscordCommand::Register { guild, config },
        } => {
            let settings = Settings::load(&config)?;
            let (catalog, _) = load_catalogs(&settings)?;
            let Some(token) = Secrets::from_env().discord.bot_token else {
                bail!("DISCORD_BOT_TOKEN is not set");
            };
            let n = scalebot::chat::discord::register(
                &settings.discord,
                &token,
                &catalog,
                guild.as_deref(),
            )
            .await?;
            match guild {
                Some(g) => println!("registered /scale for server {g} ({n} command(s))"),
                None => println!(
                    "registered /scale globally ({n} command(s)); it may take up to an hour to appear"
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Chart {
            name,
            vars,
            out,
            config,
        } => {
            let settings = Settings::load(&config)?;
            let (_, charts) = load_catalogs(&settings)?;
            let Some(spec) = charts.get(&name) else {
                bail!("no chart `{name}`; charts: {}", charts.names().join(", "));
            };
            let vars: BTreeMap<String, String> = vars.into_iter().collect();
            let cloud =
                scalebot::cloud::aws::AwsCloud::new(&settings.aws, Arc::new(Metrics::default()))
                    .await;
            let now = chrono::Utc::now();
            let mut queries = QuerySet::default();
            let plan = ChartPlan::new(spec, &vars, now, &mut queries);
            let results = by_id(
                cloud
                    .metric_data(&queries.into_request(plan.start, now))
                    .await?,
            );
            let data = plan.data(&results, settings.display.tz());
            let png = scalebot::chart::render_png(&data)?;
            std::fs::write(&out, &png).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} ({} bytes)", out.display(), png.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn export_snapshot(
    date: chrono::NaiveDate,
    config: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let store = scalebot::store::Store::connect(&settings.store).await?;
    let day = date.format("%Y-%m-%d").to_string();
    let Some(row) = store.snapshot_of_day(&day).await? else {
        let days = store.snapshot_days(7).await?;
        if days.is_empty() {
            bail!("there is no snapshot of {day}; the store has none");
        }
        bail!(
            "there is no snapshot of {day}; snapshots exist for {}",
            days.join(", ")
        );
    };
    let json = scalebot::engine::snapshot::export_json(&row)
        .with_context(|| format!("snapshot {} cannot be read", row.id))?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
