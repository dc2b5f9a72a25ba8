//! After a concurrency change, the runbook's step 3 ("monitor for
//! improvement", `watch -n 30`): the bot re-reads the function's throttles
//! every `monitor_interval_seconds` for up to `monitor_max_minutes`, and
//! posts a before/after chart when they settle, or says that they did not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::IncidentService;
use crate::chart::plan::{ChartPlan, QuerySet, by_id, image};
use crate::chat::{Image, Message, MessageRef, Tone};
use crate::domain::FunctionName;
use crate::format::number;
use crate::store::IncidentRow;

impl IncidentService {
    pub(crate) fn spawn_monitor(
        self: &Arc<Self>,
        incident: IncidentRow,
        function: String,
        reserved: Option<i32>,
        changed_at: DateTime<Utc>,
    ) {
        let engine = self.clone();
        let stop = self.shutdown.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = engine.monitor(incident, function, reserved, changed_at) => {}
            }
        });
    }

    async fn monitor(
        &self,
        incident: IncidentRow,
        function: String,
        reserved: Option<i32>,
        changed_at: DateTime<Utc>,
    ) {
        let Ok(f) = FunctionName::parse(&function) else {
            return;
        };
        let interval = Duration::from_secs(self.settings.runbook.monitor_interval_seconds.max(1));
        let checks = (self.settings.runbook.monitor_max_minutes * 60 / interval.as_secs()).max(1);
        let mut last = Watch::default();
        for check in 1..=checks {
            tokio::time::sleep(interval).await;
            match self.throttles_around(&function, changed_at).await {
                Some(w) => last = w.judged(check),
                None => continue,
            }
            if last.settled {
                break;
            }
        }
        let message = self.watch_result(&function, &last);
        if let Err(e) = self
            .thread(&incident, "scalebot", "monitor", &message)
            .await
        {
            tracing::warn!(error = %e, "monitor result not posted");
            return;
        }
        if let Some(image) = self.before_after_chart(&f, reserved).await {
            let root = incident.root_message.as_ref().map(|ts| MessageRef {
                channel: incident.channel.clone(),
                id: ts.clone(),
            });
            if let Err(e) = self
                .chat
                .upload_png(&incident.channel, root.as_ref(), &image)
                .await
            {
                tracing::warn!(error = %e, "monitor chart not uploaded");
            }
        }
    }

    /// Throttles per minute from 10 minutes before the change until now;
    /// `None` when CloudWatch could not be read this time.
    async fn throttles_around(&self, function: &str, changed_at: DateTime<Utc>) -> Option<Watch> {
        let window = chrono::Duration::minutes(10);
        let mut queries = QuerySet::default();
        let dims = vec![("FunctionName".into(), function.to_owned())];
        let id = queries.add("AWS/Lambda", "Throttles", dims, "Sum", 60);
        let request = queries.into_request(changed_at - window, self.now());
        let series = match self.cloud.metric_data(&request).await {
            Ok(s) => by_id(s).remove(&id).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "monitor read failed");
                return None;
            }
        };
        let (before, after): (Vec<&(DateTime<Utc>, f64)>, Vec<_>) =
            series.points.iter().partition(|(t, _)| *t < changed_at);
        Some(Watch {
            before: before.iter().map(|p| p.1).sum(),
            after: after.iter().map(|p| p.1).collect(),
            settled: false,
        })
    }

    fn watch_result(&self, function: &str, w: &Watch) -> Message {
        let (before, after) = (w.before, w.after.iter().sum::<f64>());
        let text = if w.settled {
            format!(
                "📉 `{function}` settled: {} throttles in the 10 minutes before the change, {} since.",
                number(before),
                number(after)
            )
        } else {
            format!(
                "⚠️ `{function}` has not settled after {} minutes: {} throttles since the change \
                 ({} in the 10 minutes before). Consider the next runbook step or escalate.",
                self.settings.runbook.monitor_max_minutes,
                number(after),
                number(before)
            )
        };
        Message {
            tone: if w.settled { Tone::Good } else { Tone::Warning },
            text: text.into(),
            ..Default::default()
        }
    }

    async fn before_after_chart(
        &self,
        function: &FunctionName,
        reserved: Option<i32>,
    ) -> Option<Image> {
        let spec = self.charts.get("lambda-throttles")?;
        let mut vars = BTreeMap::from([("function".to_owned(), function.to_string())]);
        if let Some(r) = reserved {
            vars.insert("reserved_concurrency".into(), r.to_string());
        }
        let now = self.now();
        let mut queries = QuerySet::default();
        let plan = ChartPlan::new(spec, &vars, now, &mut queries);
        let results = self
            .cloud
            .metric_data(&queries.into_request(plan.start, now))
            .await
            .ok()?;
        let data = plan.data(&by_id(results), self.tz);
        image(
            &data,
            format!("after-{function}-{}.png", now.format("%Y%m%dT%H%M")),
        )
        .ok()
    }
}

/// Throttles around a change: the sum before it, the minutes after it.
#[derive(Debug, Default)]
struct Watch {
    before: f64,
    after: Vec<f64>,
    settled: bool,
}

impl Watch {
    /// Settled: the last two minutes since the change are free of
    /// throttles, or no throttle was reported since the change.
    fn judged(mut self, check: u64) -> Self {
        let after = &self.after;
        let sum: f64 = after.iter().sum();
        self.settled = (after.len() >= 2 && after[after.len() - 2..].iter().all(|v| *v == 0.0))
            || (after.is_empty() && check >= 2)
            || (sum == 0.0 && check >= 2);
        self
    }
}
