//! The `scalebot` command line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use scalebot::chart::plan::{ChartPlan, QuerySet, by_id};
use scalebot::cloud::Cloud;
use scalebot::config::Secrets;
use scalebot::demo::origin::{Exposure, exposure};
use scalebot::metrics::Metrics;
use scalebot::settings_file::SettingsFile;
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
    /// Try everything with nothing to set up: a web chat in the browser, the
    /// real engine, and a simulated AWS account whose clock can run faster.
    Demo {
        #[arg(long, default_value = "config/demo.toml")]
        config: PathBuf,
        /// Where the web chat listens (default: the config's server.listen).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Confirms listening beyond loopback (e.g. --listen 0.0.0.0:8080):
        /// the web chat has no login, so anyone who reaches it can act as
        /// any demo user. Refused without this flag.
        #[arg(long)]
        listen_public: bool,
        /// Run simulated time N times faster than the wall clock.
        #[arg(long)]
        speed: Option<f64>,
        /// The traffic model's seed (the same seed gives the same metrics).
        #[arg(long)]
        seed: Option<u64>,
        /// Where simulated time starts, RFC 3339 (default: now).
        #[arg(long)]
        start: Option<String>,
        /// Where the SQLite store goes (default: a new directory in the
        /// system's temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate the config and every file in commands/ and charts/.
    Check {
        #[arg(long, default_value = "config/scalebot.example.toml")]
        config: PathBuf,
    },
    /// Print the least-privilege IAM policy (JSON) for the config: every
    /// AWS action the bot can call, on the functions, database, cache
    /// group and region the config names.
    IamPolicy {
        #[arg(long, default_value = "config/scalebot.example.toml")]
        config: PathBuf,
        /// The AWS account id for the ARNs (default: any account, `*`).
        #[arg(long, default_value = "*", value_parser = parse_account)]
        account: String,
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

/// Twelve digits, or `*` for any account.
fn parse_account(s: &str) -> Result<String, String> {
    if s == "*" || (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())) {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not a 12-digit AWS account id (or `*`)"))
    }
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
        Command::Serve { config } => serve(&config).await,
        Command::Demo {
            config,
            listen,
            listen_public,
            speed,
            seed,
            start,
            data_dir,
        } => {
            let opts = DemoOptions {
                listen,
                listen_public,
                speed,
                seed,
                start,
                data_dir,
            };
            demo(&config, opts).await
        }
        Command::Check { config } => Ok(check(&config)),
        Command::IamPolicy { config, account } => iam_policy(&config, &account),
        Command::Snapshot {
            command: SnapshotCommand::Export { date, config },
        } => export_snapshot(date, &config).await,
        Command::Discord {
            command: DiscordCommand::Register { guild, config },
        } => register_discord(guild, &config).await,
        Command::Chart {
            name,
            vars,
            out,
            config,
        } => chart(&name, vars, &out, &config).await,
    }
}

async fn serve(config: &Path) -> anyhow::Result<ExitCode> {
    let settings = SettingsFile::load(config)?;
    let app = Application::build(settings.clone(), Secrets::from_env()).await?;
    tracing::info!(
        listen = %settings.server.listen,
        port = app.port(),
        metrics_port = ?app.metrics_port(),
        store = %scalebot::store::redact_url(&settings.store.url),
        "scalebot is serving"
    );
    app.run_until(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// `scalebot demo`'s options beyond the config file.
struct DemoOptions {
    listen: Option<SocketAddr>,
    listen_public: bool,
    speed: Option<f64>,
    seed: Option<u64>,
    start: Option<String>,
    data_dir: Option<PathBuf>,
}

async fn demo(config: &Path, opts: DemoOptions) -> anyhow::Result<ExitCode> {
    let DemoOptions {
        listen,
        listen_public,
        speed,
        seed,
        start,
        data_dir,
    } = opts;
    let mut settings = SettingsFile::load(config)?;
    if let Some(listen) = listen {
        settings.server.listen = listen;
    }
    let exposure = exposure(settings.server.listen, listen_public)?;
    if let Some(speed) = speed {
        settings.demo.speed = scalebot::demo::settings::check_speed(speed)
            .map_err(|e| anyhow::anyhow!("--speed {e}"))?;
    }
    if let Some(seed) = seed {
        settings.demo.seed = seed;
    }
    if let Some(start) = start {
        let start = scalebot::config::values::parse_instant(&start)
            .map_err(|e| anyhow::anyhow!("--start {e}"))?;
        settings.demo.start = Some(start);
    }
    let dir = data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "scalebot-demo-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    settings.store.url = format!("sqlite://{}", dir.join("scalebot.db").display());
    let app = Application::build_demo(settings.clone()).await?;
    if exposure == Exposure::Public {
        shout_public(SocketAddr::new(settings.server.listen.ip(), app.port()));
    }
    let host = settings.server.listen.ip();
    println!(
        "scalebot demo: open http://{host}:{}/ in a browser",
        app.port()
    );
    println!("  data directory: {}", dir.display());
    println!(
        "  simulated AWS account, seed {}, clock ×{}; users: {}",
        settings.demo.seed,
        settings.demo.speed,
        settings.demo.users.join(", ")
    );
    println!("  stop with Ctrl-C");
    app.run_until(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The loud warning for `--listen-public`, on stderr where a log collector
/// or a terminal shows it.
fn shout_public(listen: SocketAddr) {
    let line = "!".repeat(76);
    eprintln!("{line}");
    eprintln!("!! WARNING: the demo listens on {listen}, beyond this machine (--listen-public).");
    eprintln!("!! Its web chat has NO LOGIN: anyone who can reach this address can act as");
    eprintln!("!! any demo user, approvals included. Stop it (Ctrl-C) when you are done.");
    eprintln!("{line}");
}

fn check(config: &Path) -> ExitCode {
    match scalebot::check::run(config) {
        Ok(summary) => {
            println!(
                "ok: {} is valid; {} commands, {} charts",
                config.display(),
                summary.commands,
                summary.charts
            );
            println!("who may do what:");
            for line in &summary.permissions {
                println!("  {line}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            println!("{} problem(s)", problems.len());
            ExitCode::from(1)
        }
    }
}

fn iam_policy(config: &Path, account: &str) -> anyhow::Result<ExitCode> {
    let settings = SettingsFile::load(config)?.services();
    let generated = scalebot::aws::iam_policy::generate(&settings, account);
    let json = serde_json::to_string_pretty(&generated.document)
        .context("the policy cannot be written as JSON")?;
    println!("{json}");
    // On stderr, so that the policy can be redirected into a file as it is.
    for note in &generated.notes {
        eprintln!("note: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn register_discord(guild: Option<String>, config: &Path) -> anyhow::Result<ExitCode> {
    let settings = SettingsFile::load(config)?;
    let (catalog, _) = load_catalogs(&settings.catalog)?;
    let Some(token) = Secrets::from_env().discord.bot_token else {
        bail!("DISCORD_BOT_TOKEN is not set");
    };
    let n =
        scalebot::discord::register(&settings.discord, &token, &catalog, guild.as_deref()).await?;
    match guild {
        Some(g) => println!("registered /scale for server {g} ({n} command(s))"),
        None => println!(
            "registered /scale globally ({n} command(s)); it may take up to an hour to appear"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn chart(
    name: &str,
    vars: Vec<(String, String)>,
    out: &Path,
    config: &Path,
) -> anyhow::Result<ExitCode> {
    let settings = SettingsFile::load(config)?;
    let (_, charts) = load_catalogs(&settings.catalog)?;
    let Some(spec) = charts.get(name) else {
        bail!("no chart `{name}`; charts: {}", charts.names().join(", "));
    };
    let vars: BTreeMap<String, String> = vars.into_iter().collect();
    let cloud = scalebot::aws::AwsCloud::new(&settings.aws, Arc::new(Metrics::default())).await;
    let now = chrono::Utc::now();
    let mut queries = QuerySet::default();
    let plan = ChartPlan::new(spec, &vars, now, &mut queries);
    let results = by_id(
        cloud
            .metric_data(&queries.into_request(plan.start, now))
            .await?,
    );
    let data = plan.data(&results, settings.display.timezone);
    let png = scalebot::chart::render_png(&data)?;
    std::fs::write(out, &png).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} ({} bytes)", out.display(), png.len());
    Ok(ExitCode::SUCCESS)
}

async fn export_snapshot(date: chrono::NaiveDate, config: &Path) -> anyhow::Result<ExitCode> {
    let settings = SettingsFile::load(config)?;
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
    let json = scalebot::reports::snapshot::export_json(&row)
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
