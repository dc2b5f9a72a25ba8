//! Turning chart definitions into metric queries and query results into
//! chart data, so that a command's figures and its chart share one
//! `GetMetricData` exchange.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;

use super::{
    ChartData, ChartError, ChartSpec, SeriesData, Threshold, render_png, spec::fill,
    spec::parse_color,
};
use crate::domain::metric::{MetricQuery, MetricRequest, Series};

/// A PNG to attach, with what a screen reader says of it.
#[derive(Debug, Clone)]
pub struct Image {
    pub filename: String,
    pub title: String,
    pub alt_text: String,
    pub png: Vec<u8>,
}

/// Line colours for charts with one line per function or service.
pub const PALETTE: &[(u8, u8, u8)] = &[
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
];

/// The `i`th line colour, repeating after the palette's end.
pub fn series_color(i: usize) -> (u8, u8, u8) {
    PALETTE[i % PALETTE.len()]
}

/// Queries for one request; identical queries share one id.
#[derive(Debug, Default)]
pub struct QuerySet {
    queries: Vec<MetricQuery>,
}

impl QuerySet {
    /// Adds a query (its `id` is ignored) and returns the id to look it up by.
    pub fn add(
        &mut self,
        namespace: &str,
        metric: &str,
        dimensions: Vec<(String, String)>,
        stat: &str,
        period_seconds: u32,
    ) -> String {
        if let Some(q) = self.queries.iter().find(|q| {
            q.namespace == namespace
                && q.metric == metric
                && q.dimensions == dimensions
                && q.stat == stat
                && q.period_seconds == period_seconds
        }) {
            return q.id.clone();
        }
        let id = format!("q{}", self.queries.len());
        self.queries.push(MetricQuery {
            id: id.clone(),
            namespace: namespace.into(),
            metric: metric.into(),
            dimensions,
            stat: stat.into(),
            period_seconds,
        });
        id
    }

    pub fn into_request(self, start: DateTime<Utc>, end: DateTime<Utc>) -> MetricRequest {
        MetricRequest {
            start,
            end,
            queries: self.queries,
        }
    }
}

/// Results by query id.
pub fn by_id(series: Vec<Series>) -> HashMap<String, Series> {
    series.into_iter().map(|s| (s.id.clone(), s)).collect()
}

/// A chart about to be fetched: its queries are in a [`QuerySet`].
#[derive(Debug, Clone)]
pub struct ChartPlan {
    pub title: String,
    pub y_label: String,
    pub y2_label: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    series: Vec<(String, super::SeriesSpec)>,
    thresholds: Vec<Threshold>,
}

impl ChartPlan {
    /// `vars` fill `{placeholders}` and supply threshold variables.
    pub fn new(
        spec: &ChartSpec,
        vars: &BTreeMap<String, String>,
        now: DateTime<Utc>,
        queries: &mut QuerySet,
    ) -> Self {
        let period = Duration::seconds(i64::from(spec.period_seconds.max(1)));
        let start = (now - Duration::minutes(i64::from(spec.window_minutes)))
            .duration_trunc(period)
            .unwrap_or(now);
        let series = spec
            .series
            .iter()
            .map(|s| {
                let dims = s
                    .dimensions
                    .iter()
                    .map(|(k, v)| (k.clone(), fill(v, vars)))
                    .collect();
                let id = queries.add(&s.namespace, &s.metric, dims, &s.stat, spec.period_seconds);
                (id, s.clone())
            })
            .collect();
        let thresholds = spec
            .thresholds
            .iter()
            .filter_map(|t| {
                let value = match (&t.value, &t.variable) {
                    (Some(v), _) => Some(*v),
                    (None, Some(var)) => vars.get(var).and_then(|v| v.parse::<f64>().ok()),
                    (None, None) => None,
                }?;
                Some(Threshold {
                    label: t.label.clone(),
                    value,
                    color: parse_color(&t.color).unwrap_or((85, 85, 85)),
                })
            })
            .collect();
        Self {
            title: fill(&spec.title, vars),
            y_label: spec.y_label.clone(),
            y2_label: spec.y2_label.clone(),
            start,
            end: now,
            series,
            thresholds,
        }
    }

    pub fn data(&self, results: &HashMap<String, Series>, tz: Tz) -> ChartData {
        ChartData {
            title: self.title.clone(),
            y_label: self.y_label.clone(),
            y2_label: self.y2_label.clone(),
            start: self.start,
            end: self.end,
            tz,
            series: self
                .series
                .iter()
                .map(|(id, s)| SeriesData {
                    label: s.label.clone(),
                    color: parse_color(&s.color).unwrap_or((0, 0, 0)),
                    axis: s.axis,
                    points: results
                        .get(id)
                        .map(|r| r.points.clone())
                        .unwrap_or_default(),
                })
                .collect(),
            thresholds: self.thresholds.clone(),
            width: 1000,
            height: 500,
        }
    }
}

/// Renders chart data as an attachable PNG, titled after the chart.
pub fn image(data: &ChartData, filename: String) -> Result<Image, ChartError> {
    Ok(Image {
        filename,
        title: data.title.clone(),
        alt_text: alt_text(data),
        png: render_png(data)?,
    })
}

/// A one-line description of a chart for screen readers and Slack's alt text.
pub fn alt_text(data: &ChartData) -> String {
    let parts: Vec<String> = data
        .series
        .iter()
        .map(|s| {
            let max = s.points.iter().map(|p| p.1).fold(f64::NAN, f64::max);
            if max.is_nan() {
                format!("{}: no data", s.label)
            } else {
                format!("{}: peak {}", s.label, crate::format::number(max))
            }
        })
        .collect();
    format!("{}. {}", data.title, parts.join("; "))
}
