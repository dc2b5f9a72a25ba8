//! `/scale throttles <function>`.
//!
//! Replaces the runbook's *Lambda Throttling Emergency*, step 1 ("check
//! current throttles": `Throttles`, Sum, 5-minute periods, last 10 minutes)
//! and adds what the on-call engineer looks at next: the throttle rate, peak
//! concurrency and reserved concurrency, and a 3-hour chart of throttles,
//! invocations and concurrency with the reserved limit drawn in.
//!
//! The count is the exact window from 1-minute data. The runbook's
//! 5-minute buckets are shown beside it, each that overlaps the window, for
//! what they are: summing only the buckets that start inside the window
//! leaves out the part of the one that started before it (40 a minute for
//! 10 minutes read as 200).
//!
//! One `GetFunctionConcurrency` call (which also tells whether the function
//! exists) and one `GetMetricData` exchange for the figures and the chart.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};

use crate::catalog::Invocation;
use crate::chart::plan::{ChartPlan, QuerySet, by_id, image};
use crate::chat::{Button, ButtonAction, ButtonStyle, Message, Tone};
use crate::cloud::Series;
use crate::engine::request::{ActionError, Outcome, Reply};

use super::ActionContext;
use super::raise::{self, Raise};
use crate::format::{number, percent, time_of_day};

/// The query ids of the figures, in one `GetMetricData` request.
struct Ids {
    throttles: String,
    throttles_1m: String,
    invocations_1m: String,
    concurrency_1m: String,
}

/// What the reply says.
struct Figures {
    /// The configured-period buckets that overlap the window.
    buckets: Vec<(DateTime<Utc>, f64)>,
    /// The window's throttles, from the 1-minute data.
    throttles: f64,
    rate: f64,
    peak_recent: Option<f64>,
    peak_all: Option<f64>,
    /// The peak of `runbook.reserved_peak_window_minutes`, for a raise.
    peak_for_raise: Option<f64>,
    /// The raise offered, when the function reserves less than it.
    offer: Option<Raise>,
}

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let function = inv
        .function("function")
        .ok_or_else(|| ActionError::Spec("a `function` argument".into()))?;
    let window = Duration::minutes(inv.spec.param_i64("window_minutes", 10).clamp(1, 1440));
    let period = inv.spec.param_i64("period_seconds", 300).clamp(60, 86_400) as u32;

    let reserved = cx.cloud.reserved_concurrency(function).await?;

    let now = cx.clock.now();
    let dims = || vec![("FunctionName".to_owned(), function.to_string())];
    let mut queries = QuerySet::default();
    let ids = Ids {
        throttles: queries.add("AWS/Lambda", "Throttles", dims(), "Sum", period),
        throttles_1m: queries.add("AWS/Lambda", "Throttles", dims(), "Sum", 60),
        invocations_1m: queries.add("AWS/Lambda", "Invocations", dims(), "Sum", 60),
        concurrency_1m: queries.add("AWS/Lambda", "ConcurrentExecutions", dims(), "Maximum", 60),
    };
    let mut vars = BTreeMap::from([("function".to_owned(), function.to_string())]);
    if let Some(r) = reserved {
        vars.insert("reserved_concurrency".into(), r.to_string());
    }
    let chart = inv
        .spec
        .chart
        .as_deref()
        .and_then(|name| cx.charts.get(name))
        .map(|spec| ChartPlan::new(spec, &vars, now, &mut queries));
    let start = chart
        .as_ref()
        .map(|c| c.start)
        .unwrap_or(now - Duration::hours(3))
        .min(now - window - Duration::seconds(i64::from(period)));
    let results = by_id(
        cx.cloud
            .metric_data(&queries.into_request(start, now))
            .await?,
    );
    let peak_window =
        Duration::minutes(cx.settings.runbook.reserved_peak_window_minutes.min(1440) as i64);
    let mut figures = figures(&results, &ids, now - window, period, now - peak_window);
    figures.offer = offer(cx, function.as_str(), reserved, figures.peak_for_raise);

    let mut message = reply(
        cx,
        function.as_str(),
        window,
        period,
        reserved,
        &figures,
        now,
    );
    let mut images = Vec::new();
    if let Some(plan) = chart {
        let data = plan.data(&results, cx.tz);
        images.push(image(
            &data,
            format!("throttles-{function}-{}.png", now.format("%Y%m%dT%H%M")),
        )?);
    }
    if let Some(raise) = &figures.offer {
        message.buttons.push(Button {
            label: format!("Raise reserved concurrency to {}", raise.value),
            action: ButtonAction::Run {
                command: raise::raise_reserved_command(function.as_str()),
                incident: None,
            },
            style: ButtonStyle::Primary,
            confirm: None,
        });
    }
    Ok(Outcome::Reply(Reply { message, images }))
}

/// Step 2 of the runbook, proposed from the figures, when the function
/// reserves less; the button makes the plan afresh (`auto`), which shows
/// the same arithmetic with the account's cap.
fn offer(
    cx: &ActionContext<'_>,
    function: &str,
    reserved: Option<i32>,
    peak: Option<f64>,
) -> Option<Raise> {
    let rb = &cx.settings.runbook;
    let raise = raise::propose(
        rb.throttles_raise_to,
        peak,
        rb.reserved_headroom,
        &[raise::guardrail_cap(cx, function)],
    );
    reserved.is_none_or(|r| r < raise.value).then_some(raise)
}

fn figures(
    results: &HashMap<String, Series>,
    ids: &Ids,
    since: DateTime<Utc>,
    period: u32,
    peak_since: DateTime<Utc>,
) -> Figures {
    let series = |id: &str| results.get(id).cloned().unwrap_or_default();
    let bucket = Duration::seconds(i64::from(period));
    let buckets: Vec<_> = series(&ids.throttles)
        .points
        .into_iter()
        .filter(|(t, _)| *t + bucket > since)
        .collect();
    let thr_1m = series(&ids.throttles_1m).sum_since(since);
    let inv_1m = series(&ids.invocations_1m).sum_since(since);
    let rate = if thr_1m + inv_1m > 0.0 {
        thr_1m / (thr_1m + inv_1m)
    } else {
        0.0
    };
    let conc = series(&ids.concurrency_1m);
    Figures {
        buckets,
        throttles: thr_1m,
        rate,
        peak_recent: raise::peak_since(&conc, since),
        peak_all: conc.max(),
        peak_for_raise: raise::peak_since(&conc, peak_since),
        offer: None,
    }
}

/// The window's count from the 1-minute data, the runbook's periods beside it.
fn headline(f: &Figures, minutes: i64, period: u32, tz: chrono_tz::Tz) -> (Tone, String) {
    let breakdown = if f.buckets.is_empty() {
        "no datapoints".to_owned()
    } else {
        f.buckets
            .iter()
            .map(|(t, v)| format!("{} from {}", number(*v), time_of_day(*t, tz)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let periods = format!(
        "{}-minute periods as the runbook reads them, the first may start before the window: {breakdown}",
        period / 60
    );
    if f.throttles > 0.0 {
        (
            Tone::Warning,
            format!(
                "*{} throttles* in the last {minutes} minutes (1-minute data; {periods}).",
                number(f.throttles)
            ),
        )
    } else {
        (
            Tone::Good,
            format!("No throttles in the last {minutes} minutes (1-minute data; {periods})."),
        )
    }
}

fn reply(
    cx: &ActionContext<'_>,
    function: &str,
    window: Duration,
    period: u32,
    reserved: Option<i32>,
    f: &Figures,
    now: DateTime<Utc>,
) -> Message {
    let tz = cx.tz;
    let minutes = window.num_minutes();
    let (tone, mut text) = headline(f, minutes, period, tz);
    if let (Some(r), Some(p)) = (reserved, f.peak_recent)
        && r > 0
        && p >= f64::from(r) * 0.9
    {
        text.push_str(&format!(
            "\nConcurrency is at {} of its reserved {}: raising reserved concurrency is the runbook's step 2.",
            number(p),
            r
        ));
    }
    if let Some(r) = &f.offer
        && f.throttles > 0.0
    {
        text.push_str(&format!(
            "\nProposed reserved concurrency: {}.{}",
            r.arithmetic,
            r.capped
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default()
        ));
    }
    let reserved_text = match reserved {
        Some(0) => "0 (the function is switched off)".to_owned(),
        Some(r) => number(f64::from(r)),
        None => "none (shares the account's unreserved pool)".to_owned(),
    };
    Message {
        title: Some(format!("Throttles: {function}")),
        tone,
        text: text.into(),
        footer: Some(
            format!(
                "CloudWatch AWS/Lambda · {} · {} · runbook: Lambda throttling emergency, step 1",
                cx.region,
                crate::format::stamp(now, tz)
            )
            .into(),
        ),
        ..Default::default()
    }
    .field(format!("Throttles ({minutes} min)"), number(f.throttles))
    .field(format!("Throttle rate ({minutes} min)"), percent(f.rate))
    .field(
        "Peak concurrency",
        format!(
            "{} (last {minutes} min) · {} (3 h)",
            f.peak_recent.map(number).unwrap_or_else(|| "n/a".into()),
            f.peak_all.map(number).unwrap_or_else(|| "n/a".into())
        ),
    )
    .field("Reserved concurrency", reserved_text)
}
