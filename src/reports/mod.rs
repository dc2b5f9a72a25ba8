//! The runbook's routine operations as reports: the daily health check, the
//! weekly scaling-policy review and the monthly capacity plan.
//!
//! A report is a function of what the [`Cloud`] answers: one message with a
//! verdict line and the figures, and its charts, which go into the
//! message's thread. Each part (metrics, targets, activities, costs) is read
//! on its own, so a part that fails (a missing permission, an AWS error) is
//! shown as that part's error and the rest of the report still stands.
//! Scheduling, the store lease and posting live in `service.rs`; policy
//! snapshots (taken daily here, and before every change) in `snapshot.rs`.

mod daily;
mod monthly;
mod service;
pub mod snapshot;
mod weekly;

pub use service::{ReportError, ReportParts, ReportService};

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::chart::{ChartData, ChartError, SeriesData, Threshold};
use crate::chat::{Chat, ChatError, Image, Message, MessageRef, Tone};
use crate::cloud::{Cloud, Series};
use crate::config::Settings;

use crate::chart::plan::series_color as color;

/// A lighter shade of a colour, for a series' companion (maximum beside average).
fn light(c: (u8, u8, u8)) -> (u8, u8, u8) {
    let mix = |v: u8| ((u16::from(v) + 2 * 255) / 3) as u8;
    (mix(c.0), mix(c.1), mix(c.2))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// Daily health check.
    Daily,
    /// Weekly scaling-policy review.
    Weekly,
    /// Monthly capacity plan.
    Monthly,
}

impl ReportKind {
    pub const ALL: [ReportKind; 3] = [ReportKind::Daily, ReportKind::Weekly, ReportKind::Monthly];

    /// The key in the store and in command files.
    pub fn key(self) -> &'static str {
        match self {
            ReportKind::Daily => "daily",
            ReportKind::Weekly => "weekly",
            ReportKind::Monthly => "monthly",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    pub fn title(self) -> &'static str {
        match self {
            ReportKind::Daily => "Daily health check",
            ReportKind::Weekly => "Weekly scaling-policy review",
            ReportKind::Monthly => "Monthly capacity plan",
        }
    }

    /// When the report is due, from `[reports]`.
    pub fn schedule(self, settings: &Settings) -> crate::schedule::Schedule {
        use crate::schedule::{Days, Schedule};
        let r = &settings.reports;
        let (days, at) = match self {
            ReportKind::Daily => (Days::Every, r.daily_at),
            ReportKind::Weekly => (Days::Weekly(r.weekly_day), r.weekly_at),
            ReportKind::Monthly => (Days::FirstOfMonth(r.weekly_day), r.monthly_at),
        };
        Schedule {
            days,
            at,
            tz: r.timezone,
        }
    }
}

/// What a report is about, from the settings.
#[derive(Debug, Clone)]
pub struct Scope {
    pub functions: Vec<String>,
    pub database: String,
    pub cache_clusters: Vec<String>,
    /// The alias that carries provisioned concurrency.
    pub alias: String,
    pub region: String,
    /// The display time zone.
    pub tz: Tz,
}

impl Scope {
    pub fn from_settings(settings: &Settings) -> Self {
        let r = &settings.reports;
        let functions = if r.functions.is_empty() {
            &settings.runbook.functions
        } else {
            &r.functions
        };
        let functions = functions.iter().map(ToString::to_string).collect();
        let database = if r.database.is_empty() {
            settings.runbook.database.clone()
        } else {
            r.database.clone()
        };
        // Empty: the report service reads the group's members.
        let cache_clusters = r.cache_clusters.clone();
        Self {
            functions,
            database,
            cache_clusters,
            alias: settings.runbook.default_alias.clone(),
            region: settings.aws.region.clone(),
            tz: settings.display.timezone,
        }
    }
}

/// A finished report: the message and the charts for its thread.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: ReportKind,
    pub message: Message,
    pub images: Vec<Image>,
}

/// What a report found, sorted into what needs a look and what is fine.
#[derive(Debug, Default)]
struct Findings {
    /// Needs a look: each names the figure it rests on.
    concerns: Vec<String>,
    /// Parts that could not be read.
    failed: Vec<String>,
    /// All-good facts for the verdict line.
    fine: Vec<String>,
}

impl Findings {
    fn concern(&mut self, s: impl Into<String>) {
        self.concerns.push(s.into());
    }
    fn fine(&mut self, s: impl Into<String>) {
        self.fine.push(s.into());
    }
    fn failed(&mut self, part: &str, e: &impl std::fmt::Display) {
        self.failed.push(format!("{part} could not be read ({e})"));
    }

    fn tone(&self) -> Tone {
        if !self.concerns.is_empty() || !self.failed.is_empty() {
            Tone::Warning
        } else {
            Tone::Good
        }
    }

    /// The verdict line: all good, or what needs a look.
    fn verdict(&self) -> String {
        if self.concerns.is_empty() && self.failed.is_empty() {
            let detail = if self.fine.is_empty() {
                String::new()
            } else {
                format!(": {}", self.fine.join("; "))
            };
            format!("{} *All good*{detail}.", Tone::Good.emoji())
        } else {
            let all: Vec<&str> = self
                .concerns
                .iter()
                .chain(self.failed.iter())
                .map(String::as_str)
                .collect();
            format!(
                "{} *Needs a look*: {}.",
                Tone::Warning.emoji(),
                all.join("; ")
            )
        }
    }
}

/// A report being put together: what it found, its fields in order and the
/// charts for its thread. Each part of a report adds to it on its own.
#[derive(Debug, Default)]
struct Draft {
    findings: Findings,
    fields: Vec<(String, String)>,
    charts: Vec<(ChartData, &'static str)>,
}

impl Draft {
    fn field(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.fields.push((label.into(), value.into()));
    }

    /// A part that could not be read: `part` in the verdict line, and a
    /// field `label` with the error in place of the part's figures.
    fn failed(&mut self, part: &str, label: &str, e: &impl std::fmt::Display) {
        self.findings.failed(part, e);
        self.fields.push(failed_field(label, e));
    }

    fn chart(&mut self, data: ChartData, name: &'static str) {
        self.charts.push((data, name));
    }

    /// Draws the charts collected so far; one that cannot be drawn becomes
    /// a finding.
    fn render(&mut self, now: DateTime<Utc>) -> Vec<Image> {
        render_all(std::mem::take(&mut self.charts), now, &mut self.findings)
    }

    fn finish(
        self,
        kind: ReportKind,
        subtitle: String,
        images: Vec<Image>,
        footer: String,
    ) -> Report {
        assemble(kind, subtitle, self.findings, self.fields, images, footer)
    }
}

/// The time a report's charts span and the zone their axis is drawn in.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    tz: Tz,
}

impl Window {
    /// A report chart (1000 × 500, one axis) over the window.
    fn chart(
        &self,
        title: impl Into<String>,
        y_label: &str,
        series: Vec<SeriesData>,
        thresholds: Vec<Threshold>,
    ) -> ChartData {
        ChartData {
            title: title.into(),
            y_label: y_label.into(),
            y2_label: String::new(),
            start: self.start,
            end: self.end,
            tz: self.tz,
            series,
            thresholds,
            width: 1000,
            height: 500,
        }
    }
}

/// The series a query id answered, empty when it answered nothing.
fn series_of(results: &HashMap<String, Series>, id: &str) -> Series {
    results.get(id).cloned().unwrap_or_default()
}

/// A field for a part that failed: its error in place of its figures.
fn failed_field(part: &str, e: &impl std::fmt::Display) -> (String, String) {
    (format!("⚠️ {part}"), format!("could not be read: {e}"))
}

/// The message: title, the verdict line, the fields, the footer; the
/// charts go into its thread.
fn assemble(
    kind: ReportKind,
    subtitle: String,
    findings: Findings,
    fields: Vec<(String, String)>,
    images: Vec<Image>,
    footer: String,
) -> Report {
    let mut message = Message {
        title: Some(format!("{} · {subtitle}", kind.title())),
        tone: findings.tone(),
        text: findings.verdict().into(),
        footer: Some(footer.into()),
        ..Default::default()
    };
    for (label, value) in fields {
        message = message.field(label, value);
    }
    if !images.is_empty() {
        message.text.push_markup("\nCharts in the thread.");
    }
    Report {
        kind,
        message,
        images,
    }
}

/// An average line and its maximum in a lighter shade of the same colour.
fn avg_max_lines(
    label: &str,
    i: usize,
    avg: crate::cloud::Series,
    max: crate::cloud::Series,
) -> [crate::chart::SeriesData; 2] {
    let line = |label: String, color, points| crate::chart::SeriesData {
        label,
        color,
        axis: crate::chart::Axis::Left,
        points,
    };
    [
        line(format!("{label} avg"), color(i), avg.points),
        line(format!("{label} max"), light(color(i)), max.points),
    ]
}

fn footer(kind: ReportKind, scope: &Scope, now: DateTime<Utc>, sources: &str) -> String {
    format!(
        "{sources} · {} · {} · runbook: routine operations, {}",
        scope.region,
        crate::format::stamp(now, scope.tz),
        kind.title().to_lowercase()
    )
}

fn chart_image(data: &ChartData, name: &str, now: DateTime<Utc>) -> Result<Image, ChartError> {
    crate::chart::plan::image(data, format!("{name}-{}.png", now.format("%Y%m%d-%H%M")))
}

/// Builds a report from what AWS answers now.
pub async fn build(
    kind: ReportKind,
    cloud: &dyn Cloud,
    scope: &Scope,
    now: DateTime<Utc>,
) -> Report {
    match kind {
        ReportKind::Daily => daily::build(cloud, scope, now).await,
        ReportKind::Weekly => weekly::build(cloud, scope, now).await,
        ReportKind::Monthly => monthly::build(cloud, scope, now).await,
    }
}

/// Posts the message, then its charts into the message's thread. Fails
/// only when the message itself was not posted (so that a scheduled report
/// can be tried again without a second copy); a chart that cannot be
/// attached is said in the thread instead.
pub async fn post(
    chat: &dyn Chat,
    channel: &str,
    report: &Report,
) -> Result<MessageRef, ChatError> {
    let root = chat.post(channel, None, &report.message).await?;
    for image in &report.images {
        if let Err(e) = chat.upload_png(channel, Some(&root), image).await {
            tracing::warn!(chart = %image.title, error = %e, "report chart not attached");
            let note = Message::text(format!(
                "{} The chart “{}” could not be attached: {e}",
                Tone::Warning.emoji(),
                image.title
            ));
            if let Err(e) = chat.post(channel, Some(&root), &note).await {
                tracing::warn!(error = %e, "could not say so in the thread either");
            }
        }
    }
    Ok(root)
}

/// Renders charts, turning a chart that cannot be drawn into a finding
/// rather than losing the report.
fn render_all(
    charts: Vec<(ChartData, &str)>,
    now: DateTime<Utc>,
    findings: &mut Findings,
) -> Vec<Image> {
    let mut images = Vec::new();
    for (data, name) in charts {
        // A chart without a single point says nothing the fields do not
        // ("no datapoints"); it is left out of the thread.
        if !data.has_data() {
            continue;
        }
        match chart_image(&data, name, now) {
            Ok(img) => images.push(img),
            Err(e) => findings.failed(&format!("chart {}", data.title), &e),
        }
    }
    images
}

/// Least-squares line through `(x, y)`: (intercept, slope).
fn trend(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    Some((my - slope * mx, slope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_is_its_own_trend() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 5.0 + 2.0 * f64::from(i)))
            .collect();
        let (a, b) = trend(&pts).unwrap_or_default();
        assert!((a - 5.0).abs() < 1e-9 && (b - 2.0).abs() < 1e-9, "{a} {b}");
        assert_eq!(trend(&pts[..1]), None);
    }

    #[test]
    fn verdicts() {
        let mut f = Findings::default();
        f.fine("no throttles");
        assert_eq!(f.verdict(), "✅ *All good*: no throttles.");
        f.concern("persona-api throttled 200 times");
        f.failed("RDS metrics", &"access denied");
        assert_eq!(
            f.verdict(),
            "⚠️ *Needs a look*: persona-api throttled 200 times; RDS metrics could not be read (access denied)."
        );
        assert_eq!(f.tone(), Tone::Warning);
    }
}
