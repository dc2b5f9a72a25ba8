//! `/scale cost [days]`.
//!
//! Replaces the runbook's *Cost Runaway Emergency*, step 1 (`aws ce
//! get-cost-and-usage … --granularity DAILY --metrics BlendedCost` for one
//! day). The bash prints one ungrouped figure for a day computed in the
//! shell's local time zone, which is not the UTC day Cost Explorer uses;
//! this reads whole UTC days grouped by service, so the reply can say how
//! yesterday compares with the day before, which service moved most, and
//! where the money goes, with a chart of the daily cost per service.
//!
//! One `GetCostAndUsage` exchange (one call unless AWS pages the answer).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::catalog::Invocation;
use crate::chart::plan::{image, series_color};
use crate::chart::{Axis, ChartData, SeriesData};
use crate::chat::{Message, Tone};
use crate::cloud::DailyCost;
use crate::engine::request::{ActionError, Outcome, Reply};

use super::ActionContext;
use crate::format::{Change, change, signed_usd, stamp, usd};

/// After the top services' palette colours, "other" in grey.
const OTHER_COLOR: (u8, u8, u8) = (127, 127, 127);

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let days = inv.integer("days").unwrap_or(7).clamp(1, 90);
    let now = cx.clock.now();
    // Cost Explorer's days are UTC days; today is incomplete, so it is the
    // exclusive end.
    let end = now.date_naive();
    let start = end - Duration::days(days);
    // Yesterday against the day before needs two days even for `cost 1`.
    let fetch_start = start.min(end - Duration::days(2));
    let costs = cx.cloud.daily_costs(fetch_start, end).await?;

    let report = CostReport::new(&costs, fetch_start, start, end);
    let top_fields =
        usize::try_from(inv.spec.param_i64("top_services", 8).clamp(1, 20)).unwrap_or(8);
    let chart_services =
        usize::try_from(inv.spec.param_i64("chart_services", 5).clamp(1, 8)).unwrap_or(5);
    let alert = inv.spec.param_i64("alert_increase_percent", 20) as f64 / 100.0;

    let tz = cx.tz;
    let mut message = report.message(days, top_fields, alert);
    message.footer = Some(format!(
        "Cost Explorer BlendedCost by service, UTC days (recent days are estimates and can lag up to a day) · {} · {} · runbook: cost runaway emergency, step 1",
        cx.region,
        stamp(now, tz)
    ).into());

    let mut images = Vec::new();
    if !report.services.is_empty() {
        let data = report.chart(chart_services);
        images.push(image(
            &data,
            format!(
                "cost-{}-days-{}.png",
                report.days.len(),
                end.format("%Y%m%d")
            ),
        )?);
    }
    Ok(Outcome::Reply(Reply { message, images }))
}

/// The costs arranged for the reply: per day, per service and in total.
#[derive(Debug)]
struct CostReport {
    /// Every day fetched, oldest first; days without costs are zero.
    days: Vec<NaiveDate>,
    /// Service → day → amount.
    by_service: BTreeMap<String, BTreeMap<NaiveDate, f64>>,
    /// Services by their total over the asked period, largest first.
    services: Vec<(String, f64)>,
    total: f64,
    yesterday: f64,
    day_before: f64,
    start: NaiveDate,
    end: NaiveDate,
    /// Units other than USD, which the dollar formatting would misstate.
    other_units: BTreeSet<String>,
}

impl CostReport {
    fn new(costs: &[DailyCost], fetch_start: NaiveDate, start: NaiveDate, end: NaiveDate) -> Self {
        let days: Vec<NaiveDate> = fetch_start.iter_days().take_while(|d| *d < end).collect();
        let mut by_service: BTreeMap<String, BTreeMap<NaiveDate, f64>> = BTreeMap::new();
        let mut other_units = BTreeSet::new();
        // Only the days asked for count, whatever else the answer holds.
        for c in costs.iter().filter(|c| c.day >= fetch_start && c.day < end) {
            let service = if c.service.is_empty() {
                "(no service)".to_owned()
            } else {
                c.service.clone()
            };
            *by_service
                .entry(service)
                .or_default()
                .entry(c.day)
                .or_default() += c.amount;
            if !c.unit.is_empty() && c.unit != "USD" {
                other_units.insert(c.unit.clone());
            }
        }
        let in_period = |d: &NaiveDate| *d >= start && *d < end;
        let mut services: Vec<(String, f64)> = by_service
            .iter()
            .map(|(s, per_day)| {
                (
                    s.clone(),
                    per_day
                        .iter()
                        .filter(|(d, _)| in_period(d))
                        .map(|p| p.1)
                        .sum(),
                )
            })
            .collect();
        // Not total_cmp: an empty sum is -0.0, which would sort below 0.0.
        services.sort_by(|a, b| {
            b.1.partial_cmp(&a.1)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.0.cmp(&b.0))
        });
        let on = |day: NaiveDate| -> f64 {
            by_service
                .values()
                .filter_map(|per_day| per_day.get(&day))
                .sum()
        };
        Self {
            total: services.iter().map(|s| s.1).sum(),
            yesterday: on(end - Duration::days(1)),
            day_before: on(end - Duration::days(2)),
            days,
            by_service,
            services,
            start,
            end,
            other_units,
        }
    }

    fn service_on(&self, service: &str, day: NaiveDate) -> f64 {
        self.by_service
            .get(service)
            .and_then(|per_day| per_day.get(&day))
            .copied()
            .unwrap_or(0.0)
    }

    /// The service whose cost rose most from the day before to yesterday.
    fn largest_increase(&self) -> Option<(&str, f64, f64)> {
        let (y, b) = (self.end - Duration::days(1), self.end - Duration::days(2));
        self.by_service
            .keys()
            .map(|s| (s.as_str(), self.service_on(s, y), self.service_on(s, b)))
            .filter(|(_, y, b)| y > b)
            .max_by(|a, b| (a.1 - a.2).total_cmp(&(b.1 - b.2)))
    }

    fn message(&self, days: i64, top: usize, alert: f64) -> Message {
        let last = self.end - Duration::days(1);
        let period = if days == 1 {
            format!("{} UTC", last.format("%Y-%m-%d"))
        } else {
            format!(
                "{} – {}, UTC days",
                self.start.format("%Y-%m-%d"),
                last.format("%Y-%m-%d")
            )
        };
        let plural = if days == 1 { "" } else { "s" };
        if self.by_service.is_empty() {
            return Message {
                title: Some(format!("AWS cost: last {days} day{plural}")),
                tone: Tone::Neutral,
                text: format!(
                    "Cost Explorer has no costs for {period}: the account is new, or Cost Explorer \
                     has not processed these days yet."
                )
                .into(),
                ..Default::default()
            };
        }
        let overall = change(self.yesterday, self.day_before);
        let rising =
            matches!(overall, Change::Ratio(r) if r >= alert) || matches!(overall, Change::New);
        let text = self.summary(days, &period, overall, rising);
        let mut message = Message {
            title: Some(format!("AWS cost: last {days} day{plural}")),
            tone: if rising { Tone::Warning } else { Tone::Neutral },
            text: text.into(),
            ..Default::default()
        }
        .field(format!("Total ({days} day{plural})"), usd(self.total))
        .field(
            format!("Yesterday ({})", last.format("%d.%m.")),
            format!("{} ({})", usd(self.yesterday), overall.describe()),
        );
        for (label, value) in self.service_fields(top) {
            message = message.field(label, value);
        }
        message
    }

    /// The totals, yesterday against the day before, the largest increase
    /// and, when costs rise, the runbook's next step.
    fn summary(&self, days: i64, period: &str, overall: Change, rising: bool) -> String {
        let plural = if days == 1 { "" } else { "s" };
        let mut text = format!(
            "*{}* over the last {days} day{plural} ({period}).\nYesterday {} vs. {} the day before: *{}*.",
            usd(self.total),
            usd(self.yesterday),
            usd(self.day_before),
            overall.describe()
        );
        if let Some((service, y, b)) = self.largest_increase() {
            text.push_str(&format!(
                "\nLargest increase: {service} {} ({}).",
                signed_usd(y - b),
                change(y, b).describe()
            ));
        }
        if rising {
            text.push_str(
                "\nIf the rise is scaling, `/scale cost-runaway` proposes the runbook's steps 2 and 3 \
                 (cap provisioned and reserved concurrency), after confirmation.",
            );
        }
        if !self.other_units.is_empty() {
            let units: Vec<String> = self.other_units.iter().cloned().collect();
            text.push_str(&format!(
                "\nSome amounts are in {}, not USD; they are added as they are.",
                units.join(", ")
            ));
        }
        text
    }

    /// The `top` services by cost and the rest as one field. Cost Explorer
    /// lists services that cost nothing in the period (or only on the extra
    /// day fetched for the comparison); they would be fields saying $0.00.
    fn service_fields(&self, top: usize) -> Vec<(String, String)> {
        let listed: Vec<&(String, f64)> = self
            .services
            .iter()
            .filter(|(_, amount)| amount.abs() >= 0.005)
            .collect();
        let mut fields: Vec<(String, String)> = listed
            .iter()
            .take(top)
            .map(|(service, amount)| (service.clone(), self.share(*amount)))
            .collect();
        let rest = &listed[listed.len().min(top)..];
        if !rest.is_empty() {
            let amount: f64 = rest.iter().map(|s| s.1).sum();
            let label = match rest.len() {
                1 => "1 other service".to_owned(),
                n => format!("{n} other services"),
            };
            fields.push((label, self.share(amount)));
        }
        fields
    }

    fn share(&self, amount: f64) -> String {
        if self.total > 0.0 {
            format!("{} ({:.1} %)", usd(amount), amount / self.total * 100.0)
        } else {
            usd(amount)
        }
    }

    /// Daily cost per service for the top `n` services, the rest as one
    /// "other" line; a point at 00:00 UTC of each day.
    fn chart(&self, n: usize) -> ChartData {
        let midnight =
            |d: NaiveDate| -> DateTime<Utc> { d.and_time(chrono::NaiveTime::MIN).and_utc() };
        let line = |label: String, color: (u8, u8, u8), services: &[(String, f64)]| SeriesData {
            label,
            color,
            axis: Axis::Left,
            points: self
                .days
                .iter()
                .map(|d| {
                    (
                        midnight(*d),
                        services.iter().map(|(s, _)| self.service_on(s, *d)).sum(),
                    )
                })
                .collect(),
        };
        let split = self.services.len().min(n);
        let (top, rest) = self.services.split_at(split);
        let mut series: Vec<SeriesData> = top
            .iter()
            .enumerate()
            .map(|(i, s)| line(s.0.clone(), series_color(i), std::slice::from_ref(s)))
            .collect();
        if !rest.is_empty() {
            let label = match rest.len() {
                1 => "Other (1 service)".to_owned(),
                n => format!("Other ({n} services)"),
            };
            series.push(line(label, OTHER_COLOR, rest));
        }
        ChartData {
            title: format!("Daily cost by service, last {} days (UTC)", self.days.len()),
            y_label: "USD per day".into(),
            y2_label: String::new(),
            start: self.days.first().copied().map(midnight).unwrap_or_default(),
            // The exclusive end, so that a two-day chart still spans two
            // days and its axis shows dates.
            end: midnight(self.end),
            // The days are UTC days; in another zone the points would sit
            // between the axis's midnights.
            tz: chrono_tz::UTC,
            series,
            thresholds: Vec::new(),
            width: 1000,
            height: 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::render_png;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn cost(day: &str, service: &str, amount: f64) -> DailyCost {
        DailyCost {
            day: d(day),
            service: service.into(),
            amount,
            unit: "USD".into(),
        }
    }

    #[test]
    fn dollars() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(1234.5), "$1,234.50");
        assert_eq!(usd(0.005), "$0.01");
        assert_eq!(usd(-12.345), "-$12.35");
        assert_eq!(usd(-0.001), "$0.00");
        assert_eq!(usd(999.999), "$1,000.00");
        assert_eq!(signed_usd(40.0), "+$40.00");
    }

    #[test]
    fn a_report_totals_the_period_and_compares_the_last_two_days() {
        let costs = vec![
            cost("2026-11-23", "AWS Lambda", 10.0),
            cost("2026-11-24", "AWS Lambda", 20.0),
            cost("2026-11-24", "Amazon RDS", 50.0),
            cost("2026-11-25", "AWS Lambda", 60.0),
            cost("2026-11-25", "Amazon RDS", 50.0),
            cost("2026-11-25", "Amazon S3", 1.25),
            // Outside the range asked for: not counted.
            cost("2026-11-26", "AWS Lambda", 999.0),
        ];
        let r = CostReport::new(&costs, d("2026-11-23"), d("2026-11-23"), d("2026-11-26"));
        assert_eq!(r.days.len(), 3);
        assert_eq!(r.total, 191.25);
        assert_eq!((r.yesterday, r.day_before), (111.25, 70.0));
        assert_eq!(
            r.services,
            vec![
                ("Amazon RDS".to_owned(), 100.0),
                ("AWS Lambda".to_owned(), 90.0),
                ("Amazon S3".to_owned(), 1.25)
            ]
        );
        assert_eq!(r.largest_increase(), Some(("AWS Lambda", 60.0, 20.0)));
        let m = r.message(3, 2, 0.2);
        assert_eq!(m.tone, Tone::Warning);
        assert!(
            m.text
                .plain()
                .contains("*$191.25* over the last 3 days (2026-11-23 – 2026-11-25, UTC days)"),
            "{}",
            m.text.plain()
        );
        assert!(
            m.text
                .plain()
                .contains("Yesterday $111.25 vs. $70.00 the day before: *+58.9 %*"),
            "{}",
            m.text.plain()
        );
        assert!(
            m.text
                .plain()
                .contains("Largest increase: AWS Lambda +$40.00 (+200.0 %)"),
            "{}",
            m.text.plain()
        );
        let fields: Vec<(String, String)> = m
            .fields
            .iter()
            .map(|f| (f.label.clone(), f.value.clone()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("Total (3 days)".to_owned(), "$191.25".to_owned()),
                (
                    "Yesterday (25.11.)".to_owned(),
                    "$111.25 (+58.9 %)".to_owned()
                ),
                ("Amazon RDS".to_owned(), "$100.00 (52.3 %)".to_owned()),
                ("AWS Lambda".to_owned(), "$90.00 (47.1 %)".to_owned()),
                ("1 other service".to_owned(), "$1.25 (0.7 %)".to_owned()),
            ]
        );
    }

    #[test]
    fn one_day_still_compares_with_the_day_before_but_totals_one_day() {
        let costs = vec![
            cost("2026-11-24", "AWS Lambda", 20.0),
            cost("2026-11-25", "AWS Lambda", 18.0),
        ];
        let r = CostReport::new(&costs, d("2026-11-24"), d("2026-11-25"), d("2026-11-26"));
        assert_eq!(r.total, 18.0);
        let m = r.message(1, 8, 0.2);
        assert_eq!(m.tone, Tone::Neutral);
        assert!(
            m.text
                .plain()
                .contains("*$18.00* over the last 1 day (2026-11-25 UTC)"),
            "{}",
            m.text.plain()
        );
        assert!(m.text.plain().contains("*-10.0 %*"), "{}", m.text.plain());
        assert!(
            !m.text.plain().contains("Largest increase"),
            "{}",
            m.text.plain()
        );
    }

    #[test]
    fn services_that_cost_nothing_in_the_period_are_not_listed() {
        let costs = vec![
            cost("2026-11-24", "Amazon S3", 4.0),
            cost("2026-11-25", "AWS Lambda", 18.0),
            cost("2026-11-25", "Tax", 0.0),
        ];
        let r = CostReport::new(&costs, d("2026-11-24"), d("2026-11-25"), d("2026-11-26"));
        let m = r.message(1, 8, 0.2);
        let labels: Vec<&str> = m.fields.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(
            labels,
            vec!["Total (1 day)", "Yesterday (25.11.)", "AWS Lambda"]
        );
        // The chart still shows S3 falling to nothing.
        let data = r.chart(5);
        assert_eq!(data.series.len(), 3);
        assert_eq!(data.series[2].label, "Tax");
    }

    #[test]
    fn no_costs_is_said_in_words() {
        let r = CostReport::new(&[], d("2026-11-19"), d("2026-11-19"), d("2026-11-26"));
        let m = r.message(7, 8, 0.2);
        assert!(
            m.text
                .plain()
                .starts_with("Cost Explorer has no costs for 2026-11-19 – 2026-11-25"),
            "{}",
            m.text.plain()
        );
        assert!(m.fields.is_empty());
    }

    #[test]
    fn the_chart_has_the_top_services_and_one_other_line() {
        let mut costs = Vec::new();
        for (i, s) in ["a", "b", "c", "d", "e", "f", "g"].iter().enumerate() {
            costs.push(cost("2026-11-24", s, 10.0 * (i + 1) as f64));
            costs.push(cost("2026-11-25", s, 1.0));
        }
        let r = CostReport::new(&costs, d("2026-11-24"), d("2026-11-24"), d("2026-11-26"));
        let data = r.chart(5);
        let labels: Vec<&str> = data.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, vec!["g", "f", "e", "d", "c", "Other (2 services)"]);
        let other = &data.series[5].points;
        assert_eq!(other.len(), 2);
        assert_eq!(other[0].1, 30.0, "b and a on the first day");
        assert_eq!(other[1].1, 2.0);
        assert_eq!(
            other[0].0,
            d("2026-11-24").and_time(chrono::NaiveTime::MIN).and_utc()
        );
        assert!(render_png(&data).is_ok());
    }
}
