//! `/scale throttles <function>`.
//!
//! Replaces the runbook's *Lambda Throttling Emergency*, step 1 ("check
//! current throttles": `Throttles`, Sum, 5-minute periods, last 10 minutes)
//! and adds what the on-call engineer looks at next: the throttle rate, peak
//! concurrency and reserved concurrency, and a 3-hour chart of throttles,
//! invocations and concurrency with the reserved limit drawn in.
//!
//! One `GetFunctionConcurrency` call (which also tells whether the function
//! exists) and one `GetMetricData` exchange for the figures and the chart.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::catalog::Invocation;
use crate::chart::plan::{ChartPlan, QuerySet, by_id, image};
use crate::chat::{Button, ButtonAction, ButtonStyle, Message, Tone};
use crate::engine::{ActionError, Engine, Outcome, Reply};
use crate::format::{number, percent, time_of_day};

pub(super) async fn run(engine: &Engine, inv: &Invocation) -> Result<Outcome, ActionError> {
    let function = inv
        .function("function")
        .ok_or_else(|| ActionError::Spec("a `function` argument".into()))?;
    let window = Duration::minutes(inv.spec.param_i64("window_minutes", 10).clamp(1, 1440));
    let period = inv.spec.param_i64("period_seconds", 300).clamp(60, 86_400) as u32;

    let reserved = engine.cloud.reserved_concurrency(function).await?;

    let now = engine.clock.now();
    let dims = || vec![("FunctionName".to_owned(), function.to_string())];
    let mut queries = QuerySet::default();
    let q_throttles = queries.add("AWS/Lambda", "Throttles", dims(), "Sum", period);
    let q_thr_1m = queries.add("AWS/Lambda", "Throttles", dims(), "Sum", 60);
    let q_inv_1m = queries.add("AWS/Lambda", "Invocations", dims(), "Sum", 60);
    let q_conc_1m = queries.add("AWS/Lambda", "ConcurrentExecutions", dims(), "Maximum", 60);

    let mut vars = BTreeMap::from([("function".to_owned(), function.to_string())]);
    if let Some(r) = reserved {
        vars.insert("reserved_concurrency".into(), r.to_string());
    }
    let chart = inv
        .spec
        .chart
        .as_deref()
        .and_then(|name| engine.charts.get(name))
        .map(|spec| ChartPlan::new(spec, &vars, now, &mut queries));
    let start = chart
        .as_ref()
        .map(|c| c.start)
        .unwrap_or(now - Duration::hours(3))
        .min(now - window - Duration::seconds(i64::from(period)));
    let results = by_id(
        engine
            .cloud
            .metric_data(&queries.into_request(start, now))
            .await?,
    );
    let series = |id: &str| results.get(id).cloned().unwrap_or_default();

    let since = now - window;
    let buckets: Vec<_> = series(&q_throttles)
        .points
        .into_iter()
        .filter(|(t, _)| *t >= since)
        .collect();
    let throttles: f64 = buckets.iter().map(|p| p.1).sum();
    let thr_1m = series(&q_thr_1m).sum_since(since);
    let inv_1m = series(&q_inv_1m).sum_since(since);
    let rate = if thr_1m + inv_1m > 0.0 {
        thr_1m / (thr_1m + inv_1m)
    } else {
        0.0
    };
    let conc = series(&q_conc_1m);
    let peak_recent = conc
        .points
        .iter()
        .filter(|(t, _)| *t >= since)
        .map(|p| p.1)
        .reduce(f64::max);
    let peak_all = conc.max();

    let tz = engine.tz;
    let minutes = window.num_minutes();
    let breakdown = if buckets.is_empty() {
        "no datapoints".to_owned()
    } else {
        buckets
            .iter()
            .map(|(t, v)| format!("{} from {}", number(*v), time_of_day(*t, tz)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (tone, headline) = if throttles > 0.0 {
        (
            Tone::Warning,
            format!(
                "*{} throttles* in the last {minutes} minutes ({}-minute periods: {breakdown}).",
                number(throttles),
                period / 60
            ),
        )
    } else {
        (
            Tone::Good,
            format!(
                "No throttles in the last {minutes} minutes ({}-minute periods).",
                period / 60
            ),
        )
    };
    let reserved_text = match reserved {
        Some(0) => "0 (the function is switched off)".to_owned(),
        Some(r) => number(f64::from(r)),
        None => "none (shares the account's unreserved pool)".to_owned(),
    };
    let mut text = headline;
    if let (Some(r), Some(p)) = (reserved, peak_recent)
        && r > 0
        && p >= f64::from(r) * 0.9
    {
        text.push_str(&format!(
            "\nConcurrency is at {} of its reserved {}: raising reserved concurrency is the runbook's step 2.",
            number(p),
            r
        ));
    }
    let message = Message {
        title: Some(format!("Throttles: {function}")),
        tone,
        text,
        fields: Vec::new(),
        footer: Some(format!(
            "CloudWatch AWS/Lambda · {} · {} · runbook: Lambda throttling emergency, step 1",
            engine.region,
            crate::format::stamp(now, tz)
        )),
        buttons: Vec::new(),
        broadcast: false,
        answers: None,
    }
    .field(format!("Throttles ({minutes} min)"), number(throttles))
    .field(format!("Throttle rate ({minutes} min)"), percent(rate))
    .field(
        "Peak concurrency",
        format!(
            "{} (last {minutes} min) · {} (3 h)",
            peak_recent.map(number).unwrap_or_else(|| "n/a".into()),
            peak_all.map(number).unwrap_or_else(|| "n/a".into())
        ),
    )
    .field("Reserved concurrency", reserved_text);

    let mut images = Vec::new();
    if let Some(plan) = chart {
        let data = plan.data(&results, tz);
        images.push(image(
            &data,
            format!("throttles-{function}-{}.png", now.format("%Y%m%dT%H%M")),
        )?);
    }
    // Step 2 of the runbook, one click away; it still goes through a plan
    // and a confirmation.
    let raise_to = inv.spec.param_i64(
        "raise_to",
        i64::from(engine.settings.runbook.throttles_raise_to),
    );
    let mut message = message;
    if reserved.is_none_or(|r| i64::from(r) < raise_to) {
        message.buttons.push(Button {
            label: format!("Raise reserved concurrency to {raise_to}"),
            action: ButtonAction::Run {
                command: format!("concurrency {function} {raise_to}"),
                incident: None,
            },
            style: ButtonStyle::Primary,
            confirm: None,
        });
    }
    Ok(Outcome::Reply(Reply { message, images }))
}
