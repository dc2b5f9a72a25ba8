//! Real `scalebot serve` processes (the binary Cargo built for this test
//! run), each with its own config file and log, on one store; and a chaos
//! monkey that kills one of them with SIGKILL every few seconds and starts
//! it again with the same config.
//!
//! Each replica's stdout and stderr go to `<dir>/<name>.log`, with a line
//! of ours before every start and after every kill; when a test panics
//! while a [`Cluster`] is alive, the tail of every log is printed.

#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use super::app::SIGNING_SECRET;
use super::slack::BOT_TOKEN;

/// The bot's default log filter, so that a `RUST_LOG` set for the test
/// binary does not flood the replicas' logs.
const LOG_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,hyper_util=warn";

/// What differs between the replicas' config files; everything else is
/// fixed below.
#[derive(Debug, Clone)]
pub struct BotConfig {
    pub listen: SocketAddr,
    pub slack_api_url: String,
    pub store_url: String,
    pub store_max_connections: u32,
    /// `sns.allowed_topics`.
    pub topic: String,
    /// The test SNS signer's certificate host and CA (`sns.extra_*`).
    pub cert_host: String,
    pub ca_pem_file: PathBuf,
    pub incidents_channel: String,
    /// L1 → L2 after this long (L2 → L3 after an hour: not in a test).
    pub escalate_after_seconds: u64,
    /// `aws.endpoint_url`: a closed port (`http://127.0.0.1:1`) makes every
    /// AWS call fail fast; moto (behind a proxy of the test's) lets plans
    /// change something.
    pub aws_endpoint_url: String,
    /// `roles.operators`: who may run and confirm changing commands.
    pub operators: Vec<String>,
    /// The daily report's time of day (`HH:MM`, UTC); `None` turns the
    /// scheduled reports off (they depend on the wall clock).
    pub daily_report_at: Option<String>,
}

impl BotConfig {
    /// `[reports]`: off, or the daily report due now (its time an hour ago,
    /// two hours of catch-up) with the weekly and monthly ones days away,
    /// checked every second and a refused post tried again after 2 s.
    fn reports_section(&self) -> String {
        let Some(at) = &self.daily_report_at else {
            return "[reports]\nenabled = false".into();
        };
        use chrono::Datelike;
        let not_today = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ][chrono::Utc::now().weekday().succ().num_days_from_monday() as usize];
        format!(
            "[reports]\nenabled = true\ntimezone = \"UTC\"\ndaily_at = {at}\nweekly_day = {day}\n\
             weekly_at = {at}\nmonthly_at = {at}\ncatch_up_minutes = 120\n\
             check_interval_seconds = 1\nretry_unposted_seconds = 2",
            at = q(at),
            day = q(not_today),
        )
    }
}

/// A TOML basic string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

impl BotConfig {
    /// The config file: Slack at the fake without pacing, AWS at
    /// `aws_endpoint_url` with a short timeout and no SDK retries (an AWS
    /// that does not answer must cost a storm little), reports off (they
    /// depend on the wall clock), four escalation levels.
    pub fn to_toml(&self) -> String {
        let root = env!("CARGO_MANIFEST_DIR");
        format!(
            r#"[server]
listen = {listen}

[slack]
api_url = {slack}
post_interval_ms = 0

[aws]
region = "eu-central-1"
endpoint_url = {aws}
operation_timeout_seconds = 2
max_attempts = 1

[store]
url = {store}
max_connections = {max_connections}

[channels]
incidents = {incidents}
reports = "C0REPORTS"

[catalog]
commands_dir = {commands}
charts_dir = {charts}

{reports}

[roles]
operators = [{operators}]

[sns]
allowed_topics = [{topic}]
extra_cert_hosts = [{cert_host}]
extra_ca_pem_file = {ca}

[escalation]
coalesce_seconds = 1

[[escalation.levels]]
name = "L1 automated response"
escalate_after_seconds = {escalate}

[[escalation.levels]]
name = "L2 operations team"
mention = ["U0ONCALL"]
escalate_after_seconds = 3600

[[escalation.levels]]
name = "L3 engineering team"
escalate_after_seconds = 3600

[[escalation.levels]]
name = "L4 emergency response"
"#,
            listen = q(&self.listen.to_string()),
            slack = q(&self.slack_api_url),
            store = q(&self.store_url),
            max_connections = self.store_max_connections,
            incidents = q(&self.incidents_channel),
            commands = q(&format!("{root}/commands")),
            charts = q(&format!("{root}/charts")),
            topic = q(&self.topic),
            cert_host = q(&self.cert_host),
            ca = q(&self.ca_pem_file.display().to_string()),
            escalate = self.escalate_after_seconds,
            reports = self.reports_section(),
            aws = q(&self.aws_endpoint_url),
            operators = self
                .operators
                .iter()
                .map(|o| q(o))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// `n` loopback addresses nothing listens on right now, on ports outside
/// the kernel's ephemeral range: a replica restarted on its port must not
/// find it taken by some outgoing connection meanwhile.
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut rng = rand::rng();
    let mut held = Vec::new();
    for _ in 0..1000 {
        if held.len() == n {
            break;
        }
        let port = if ephemeral_low > 11_000 {
            rng.random_range(10_000..ephemeral_low)
        } else {
            0
        };
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    assert_eq!(held.len(), n, "{n} free ports");
    held.iter()
        .map(|l| l.local_addr().expect("an address"))
        .collect()
}

pub struct Replica {
    pub name: String,
    pub addr: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    pub starts: u32,
    pub kills: u32,
    /// Exits we did not cause: a crash, a failed start-up.
    pub crashes: Vec<String>,
}

impl Replica {
    fn note(&self, line: &str) {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&self.log) {
            let _ = writeln!(
                f,
                "=== chaos test: {} {line}",
                chrono::Utc::now().format("%H:%M:%S%.3f")
            );
        }
    }
}

/// Several replicas of the real binary.
pub struct Cluster {
    pub dir: PathBuf,
    replicas: Vec<Replica>,
}

impl Cluster {
    /// Writes one config file per replica into `dir`; starts nothing.
    pub fn new(dir: &Path, configs: &[BotConfig]) -> Self {
        let replicas = configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = format!("r{}", i + 1);
                let config = dir.join(format!("{name}.toml"));
                std::fs::write(&config, c.to_toml()).expect("write a replica's config");
                Replica {
                    log: dir.join(format!("{name}.log")),
                    name,
                    addr: c.listen,
                    config,
                    child: None,
                    starts: 0,
                    kills: 0,
                    crashes: Vec::new(),
                }
            })
            .collect();
        Self {
            dir: dir.to_owned(),
            replicas,
        }
    }

    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    pub fn replica(&self, i: usize) -> &Replica {
        &self.replicas[i]
    }

    /// The process id of replica `i` while it runs: a replica names itself
    /// by it (the holder of its leases, `<host>-<pid>-<random>`).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.replicas[i].child.as_ref().map(|c| c.id())
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.replicas.iter().map(|r| r.addr).collect()
    }

    /// Starts replica `i` (`scalebot serve --config <its file>`).
    pub fn start(&mut self, i: usize) {
        let r = &mut self.replicas[i];
        assert!(r.child.is_none(), "{} is already running", r.name);
        r.starts += 1;
        r.note(&format!("start #{}", r.starts));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.log)
            .expect("open the replica's log");
        let err = log.try_clone().expect("log handle");
        let child = Command::new(env!("CARGO_BIN_EXE_scalebot"))
            .arg("serve")
            .arg("--config")
            .arg(&r.config)
            .current_dir(&self.dir)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            .env_remove("SLACK_APP_TOKEN")
            .env_remove("DISCORD_BOT_TOKEN")
            .env_remove("DISCORD_PUBLIC_KEY")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("SCALEBOT_LOG_FORMAT")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", LOG_FILTER)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", r.name));
        r.child = Some(child);
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reaps the process.
    pub fn kill(&mut self, i: usize) {
        let r = &mut self.replicas[i];
        if let Some(mut child) = r.child.take() {
            let _ = child.kill();
            let status = child.wait();
            r.kills += 1;
            r.note(&format!("SIGKILL #{} ({status:?})", r.kills));
        }
    }

    /// Whether replica `i`'s process is alive. One that exited by itself
    /// is recorded in its `crashes` and counts as not running.
    pub fn running(&mut self, i: usize) -> bool {
        let r = &mut self.replicas[i];
        let Some(child) = r.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                r.child = None;
                let what = format!("{} exited by itself: {status}", r.name);
                r.note(&what);
                r.crashes.push(what);
                false
            }
            Err(e) => panic!("cannot wait for {}: {e}", r.name),
        }
    }

    /// Exit statuses of processes that stopped by themselves so far.
    pub fn crashes(&mut self) -> Vec<String> {
        for i in 0..self.len() {
            self.running(i);
        }
        self.replicas
            .iter()
            .flat_map(|r| r.crashes.clone())
            .collect()
    }

    pub fn kills(&self) -> u32 {
        self.replicas.iter().map(|r| r.kills).sum()
    }

    pub fn starts(&self) -> u32 {
        self.replicas.iter().map(|r| r.starts).sum()
    }

    /// The last `lines` lines of replica `i`'s log.
    pub fn tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.replicas[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Every log line, of every replica, that reports a panic, with the
    /// replica's name.
    pub fn panics(&self) -> Vec<String> {
        self.grep(&["panicked at"])
    }

    /// Log lines containing any of `needles`, prefixed with the replica.
    pub fn grep(&self, needles: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for r in &self.replicas {
            let text = std::fs::read_to_string(&r.log).unwrap_or_default();
            for line in text.lines() {
                if needles.iter().any(|n| line.contains(n)) {
                    found.push(format!("{}: {line}", r.name));
                }
            }
        }
        found
    }

    /// The WARN and ERROR lines of every replica's log, counted by level
    /// and message (fields left out), most frequent first.
    pub fn log_summary(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for line in self.grep(&[" WARN ", " ERROR "]) {
            let level = if line.contains(" ERROR ") {
                "ERROR"
            } else {
                "WARN"
            };
            let rest = line
                .split_once(&format!(" {level} "))
                .map(|(_, r)| r)
                .unwrap_or_default();
            *counts
                .entry(format!("{level} {}", log_message(rest)))
                .or_default() += 1;
        }
        let mut out: Vec<(String, usize)> = counts.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Every replica's log tail, for a failure message.
    pub fn tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (i, r) in self.replicas.iter().enumerate() {
            out.push_str(&format!(
                "----- {} ({}), last {lines} lines of {} -----\n{}\n",
                r.name,
                r.addr,
                r.log.display(),
                self.tail(i, lines)
            ));
        }
        out
    }

    pub fn stop_all(&mut self) {
        for i in 0..self.len() {
            self.kill(i);
        }
    }
}

/// The message of a `tracing` line after its level: the targets and spans
/// before it (`a::b{x=1}: `) and the `key=value` fields after it left out.
fn log_message(rest: &str) -> String {
    let mut parts: Vec<&str> = rest.split(": ").collect();
    while parts.len() > 1 && !parts[0].contains(' ') {
        parts.remove(0);
    }
    let message = parts.join(": ");
    let words: Vec<&str> = message
        .split(' ')
        .take_while(|w| {
            !w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .collect();
    words.join(" ")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
        if std::thread::panicking() {
            eprintln!("{}", self.tails(40));
        }
    }
}

/// The cluster as the test and the monkey share it.
#[derive(Clone)]
pub struct SharedCluster(Arc<Mutex<Cluster>>);

impl SharedCluster {
    pub fn new(cluster: Cluster) -> Self {
        Self(Arc::new(Mutex::new(cluster)))
    }

    pub fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until replica `i` answers `GET /healthz`; panics with its log
    /// when it exits or `within` passes first.
    pub async fn wait_healthy(&self, i: usize, within: Duration) {
        let (addr, name) = {
            let c = self.lock();
            (c.replica(i).addr, c.replica(i).name.clone())
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            let running = self.lock().running(i);
            if !running || Instant::now() > deadline {
                let c = self.lock();
                panic!(
                    "{name} at {addr} is not healthy (running: {running}):\n{}",
                    c.tail(i, 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts every replica that is not running and waits until all are
    /// healthy.
    pub async fn ensure_all_up(&self, within: Duration) {
        let n = self.lock().len();
        for i in 0..n {
            let mut c = self.lock();
            if !c.running(i) {
                c.start(i);
            }
        }
        for i in 0..n {
            self.wait_healthy(i, within).await;
        }
    }
}

/// One kill, as the monkey made it.
#[derive(Debug, Clone)]
pub struct Kill {
    pub replica: String,
    /// Since the monkey started.
    pub at: Duration,
    pub down_for: Duration,
}

/// The chaos monkey: until stopped, every `every` (a random duration in
/// the range) it SIGKILLs a random running replica, leaves it down for a
/// random `down` and starts it again with the same config. Replicas that
/// exited by themselves are started again too (and stay recorded as
/// crashes).
pub struct Monkey {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Vec<Kill>>,
}

#[derive(Debug, Clone)]
pub struct MonkeyPlan {
    pub seed: u64,
    pub every: (Duration, Duration),
    pub down: (Duration, Duration),
}

fn between(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo {
        return lo;
    }
    lo + Duration::from_millis(rng.random_range(0..=(hi - lo).as_millis() as u64))
}

impl Monkey {
    pub fn spawn(cluster: SharedCluster, plan: MonkeyPlan) -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(plan.seed);
            let started = Instant::now();
            let mut kills = Vec::new();
            loop {
                let wait = between(&mut rng, plan.every);
                tokio::select! {
                    _ = token.cancelled() => return kills,
                    _ = tokio::time::sleep(wait) => {}
                }
                let victim = {
                    let mut c = cluster.lock();
                    let up: Vec<usize> = (0..c.len()).filter(|&i| c.running(i)).collect();
                    let victim = (!up.is_empty()).then(|| up[rng.random_range(0..up.len())]);
                    if let Some(v) = victim {
                        c.kill(v);
                    }
                    victim
                };
                let down = between(&mut rng, plan.down);
                if let Some(v) = victim {
                    kills.push(Kill {
                        replica: cluster.lock().replica(v).name.clone(),
                        at: started.elapsed(),
                        down_for: down,
                    });
                }
                tokio::time::sleep(down).await;
                let mut c = cluster.lock();
                for i in 0..c.len() {
                    if !c.running(i) {
                        c.start(i);
                    }
                }
            }
        });
        Self { stop, task }
    }

    /// Stops the monkey (after its current kill and restart) and returns
    /// what it did.
    pub async fn stop(self) -> Vec<Kill> {
        self.stop.cancel();
        self.task.await.expect("the monkey's task")
    }
}
