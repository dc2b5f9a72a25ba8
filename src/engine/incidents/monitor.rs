//! After a concurrency change, the runbook's step 3 ("monitor for
//! improvement", `watch -n 30`): the bot re-reads the function's throttles
//! every `monitor_interval_seconds` for up to `monitor_max_minutes`, and
//! posts a before/after chart when they settle, or says that they did not.
//! The watch is a row in the store (`store::watches`), each check claimed
//! by one replica, so a restart does not end it silently.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::IncidentService;
use crate::chart::plan::{ChartPlan, QuerySet, by_id, image};
use crate::chat::{Image, Message, MessageRef, Tone};
use crate::domain::FunctionName;
use crate::engine::request::ActionError;
use crate::format::number;
use crate::store::{IncidentRow, WatchRow};

/// How long one replica may take over a check before another may.
const CHECK_LEASE_MS: i64 = 60_000;

impl IncidentService {
    /// Starts the watch after a change to `function`'s reserved
    /// concurrency; the watches sweep checks it (`check_due_watches`).
    pub(crate) async fn start_watch(
        &self,
        incident: &IncidentRow,
        function: &str,
        reserved: Option<i32>,
        changed_at: DateTime<Utc>,
    ) -> Result<(), ActionError> {
        let watch = WatchRow {
            id: uuid::Uuid::new_v4().to_string(),
            incident_id: incident.id.clone(),
            function: function.to_owned(),
            reserved: reserved.map(i64::from),
            changed_ms: changed_at.timestamp_millis(),
            checks_done: 0,
        };
        let first = crate::store::now_ms() + self.check_interval_ms();
        self.store.add_watch(&watch, first).await?;
        Ok(())
    }

    fn check_interval_ms(&self) -> i64 {
        self.settings.runbook.monitor_interval_seconds.max(1) as i64 * 1000
    }

    /// One check of every watch that is due: its verdict is posted when the
    /// throttles settled or the watch ran its time, else the next check is
    /// scheduled.
    pub(crate) async fn check_due_watches(&self) -> Result<(), ActionError> {
        let now = crate::store::now_ms();
        for w in self
            .store
            .claim_due_watches(now, now + CHECK_LEASE_MS, 16)
            .await?
        {
            let next = crate::store::now_ms() + self.check_interval_ms();
            match self.check_watch(&w).await {
                Ok(true) => self.store.watch_done(&w.id).await?,
                Ok(false) => {
                    self.store
                        .watch_checked(&w.id, w.checks_done + 1, next)
                        .await?
                }
                Err(e) => {
                    // The check is not counted; tried again next interval.
                    tracing::warn!(watch = %w.id, error = %e, "watch verdict not posted");
                    self.store.watch_checked(&w.id, w.checks_done, next).await?;
                }
            }
        }
        Ok(())
    }

    /// One check; `true` once its verdict is posted (or its incident is gone).
    async fn check_watch(&self, w: &WatchRow) -> Result<bool, ActionError> {
        let Some(incident) = self.store.incident(&w.incident_id).await? else {
            return Ok(true);
        };
        let (Ok(f), Some(changed_at)) = (
            FunctionName::parse(&w.function),
            DateTime::<Utc>::from_timestamp_millis(w.changed_ms),
        ) else {
            return Ok(true);
        };
        let interval = self.settings.runbook.monitor_interval_seconds.max(1);
        let checks = (self.settings.runbook.monitor_max_minutes * 60 / interval).max(1);
        let check = u64::try_from(w.checks_done + 1).unwrap_or(u64::MAX);
        let reading = self
            .throttles_around(&w.function, changed_at)
            .await
            .map(|r| r.judged(check));
        let last = match reading {
            Some(r) if r.settled => r,
            _ if check < checks => return Ok(false),
            r => r.unwrap_or_default(),
        };
        let message = self.watch_result(&w.function, &last);
        self.thread(&incident, "scalebot", "monitor", &message)
            .await?;
        let reserved = w.reserved.and_then(|r| i32::try_from(r).ok());
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
        Ok(true)
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
