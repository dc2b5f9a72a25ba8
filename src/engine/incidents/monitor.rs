//! After a change that should move a metric, the runbook's step 3
//! ("monitor for improvement", `watch -n 30`): the bot re-reads the metric
//! every `monitor_interval_seconds` for up to `monitor_max_minutes` and
//! posts a before/after chart when it settles, or says that it did not.
//! A reserved-concurrency change is followed by the function's
//! `Throttles`; a raise of provisioned concurrency by the alias's
//! `ProvisionedConcurrencySpilloverInvocations` (invocations the
//! provisioned environments could not take).
//!
//! "Settled" rests only on datapoints from after the change. Lambda
//! publishes nothing for a minute without invocations and CloudWatch lags
//! by minutes, so a watch that sees no datapoint after the change by its
//! last check says exactly that, and what to check, instead of a verdict.
//!
//! The watch is a row in the store (`store::watches`), each check claimed
//! by one replica, so a restart does not end it silently.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::IncidentService;
use crate::chart::plan::{ChartPlan, QuerySet, by_id, image};
use crate::chat::{Image, Message, MessageRef, Tone};
use crate::domain::FunctionName;
use crate::engine::request::ActionError;
use crate::format::{number, time_of_day};
use crate::store::{IncidentRow, WatchRow};

/// How long one replica may take over a check before another may.
const CHECK_LEASE_MS: i64 = 60_000;

/// The metrics a watch follows, with the words its verdict uses for them.
const THROTTLES: &str = "Throttles";
const SPILLOVER: &str = "ProvisionedConcurrencySpilloverInvocations";

fn counted(metric: &str) -> &'static str {
    if metric == SPILLOVER {
        "invocations beyond provisioned concurrency"
    } else {
        "throttles"
    }
}

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
        self.add_watch(incident, function, reserved, THROTTLES, None, changed_at)
            .await
    }

    /// Starts the watch after provisioned concurrency on
    /// `function:qualifier` was raised: its spillover should fall to zero.
    pub(crate) async fn start_provisioned_watch(
        &self,
        incident: &IncidentRow,
        function: &str,
        qualifier: &str,
        changed_at: DateTime<Utc>,
    ) -> Result<(), ActionError> {
        let resource = Some(format!("{function}:{qualifier}"));
        self.add_watch(incident, function, None, SPILLOVER, resource, changed_at)
            .await
    }

    async fn add_watch(
        &self,
        incident: &IncidentRow,
        function: &str,
        reserved: Option<i32>,
        metric: &str,
        resource: Option<String>,
        changed_at: DateTime<Utc>,
    ) -> Result<(), ActionError> {
        let watch = WatchRow {
            id: uuid::Uuid::new_v4().to_string(),
            incident_id: incident.id.clone(),
            function: function.to_owned(),
            reserved: reserved.map(i64::from),
            metric: metric.to_owned(),
            resource,
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
    /// metric settled or the watch ran its time, else the next check is
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
        let reading = self.read_around(w, changed_at).await;
        let verdict = match reading.as_ref().map(|r| r.verdict(check, check >= checks)) {
            Some(Some(v)) => v,
            _ if check < checks => return Ok(false),
            _ => Verdict::Unread,
        };
        let message = self.watch_result(w, changed_at, reading.unwrap_or_default(), verdict);
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

    /// The watched metric per minute from 10 minutes before the change
    /// until now; `None` when CloudWatch could not be read this time.
    async fn read_around(&self, w: &WatchRow, changed_at: DateTime<Utc>) -> Option<Watch> {
        let window = chrono::Duration::minutes(10);
        let mut queries = QuerySet::default();
        let mut dims = vec![("FunctionName".into(), w.function.clone())];
        dims.extend(w.resource.clone().map(|r| ("Resource".to_owned(), r)));
        let id = queries.add("AWS/Lambda", &w.metric, dims, "Sum", 60);
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
        })
    }

    fn watch_result(
        &self,
        w: &WatchRow,
        changed_at: DateTime<Utc>,
        reading: Watch,
        verdict: Verdict,
    ) -> Message {
        let what = counted(&w.metric);
        let subject = w.resource.as_deref().unwrap_or(&w.function);
        let (before, after) = (number(reading.before), number(reading.after.iter().sum()));
        let minutes = self.settings.runbook.monitor_max_minutes;
        let at = time_of_day(changed_at, self.tz);
        let (tone, text) = match verdict {
            Verdict::Settled => (
                Tone::Good,
                format!(
                    "📉 `{subject}` settled: {before} {what} in the 10 minutes before the change, \
                     {after} in the {} of data since.",
                    match reading.after.len() {
                        1 => "minute".to_owned(),
                        n => format!("{n} minutes"),
                    }
                ),
            ),
            Verdict::NotSettled => (
                Tone::Warning,
                format!(
                    "⚠️ `{subject}` has not settled after {minutes} minutes: {after} {what} since the \
                     change ({before} in the 10 minutes before). Consider the next runbook step or escalate."
                ),
            ),
            Verdict::NoData => (
                Tone::Warning,
                format!(
                    "❔ CloudWatch had no `{}` data for `{subject}` after the change at {at} by the last \
                     check, {minutes} minutes later ({before} {what} in the 10 minutes before), so \
                     this is no verdict. Lambda publishes nothing for a minute without invocations, \
                     and CloudWatch can lag: check that `{}` is receiving traffic (its Invocations, \
                     `/scale throttles {}`) before calling it settled.",
                    w.metric, w.function, w.function
                ),
            ),
            Verdict::Unread => (
                Tone::Warning,
                format!(
                    "❔ CloudWatch could not be read at the last check of `{subject}` after the change \
                     at {at}, so this is no verdict: check `/scale throttles {}` by hand.",
                    w.function
                ),
            ),
        };
        Message {
            tone,
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

/// The watched metric around a change: the sum before it, the minutes after it.
#[derive(Debug, Default)]
struct Watch {
    before: f64,
    after: Vec<f64>,
}

/// What the last check of a watch says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Datapoints after the change show the metric at zero.
    Settled,
    /// Datapoints after the change, and not at zero, by the last check.
    NotSettled,
    /// No datapoint after the change by the last check.
    NoData,
    /// CloudWatch could not be read at the last check.
    Unread,
}

impl Watch {
    /// Settled: the last two minutes after the change are zero, or from
    /// the second check on every minute seen after it is. Never on minutes
    /// CloudWatch has not published. `None` until there is a verdict.
    fn verdict(&self, check: u64, last: bool) -> Option<Verdict> {
        let after = &self.after;
        let quiet_tail = after.len() >= 2 && after[after.len() - 2..].iter().all(|v| *v == 0.0);
        let all_quiet = !after.is_empty() && after.iter().all(|v| *v == 0.0) && check >= 2;
        if quiet_tail || all_quiet {
            Some(Verdict::Settled)
        } else if !last {
            None
        } else if after.is_empty() {
            Some(Verdict::NoData)
        } else {
            Some(Verdict::NotSettled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Verdict, Watch};

    fn watch(after: &[f64]) -> Watch {
        Watch {
            before: 120.0,
            after: after.to_vec(),
        }
    }

    #[test]
    fn settled_needs_datapoints_after_the_change() {
        assert_eq!(watch(&[]).verdict(5, false), None);
        assert_eq!(watch(&[]).verdict(20, true), Some(Verdict::NoData));
        assert_eq!(watch(&[0.0]).verdict(1, false), None);
        assert_eq!(watch(&[0.0]).verdict(2, false), Some(Verdict::Settled));
        assert_eq!(
            watch(&[7.0, 0.0, 0.0]).verdict(1, false),
            Some(Verdict::Settled)
        );
        assert_eq!(watch(&[7.0, 0.0]).verdict(3, false), None);
        assert_eq!(
            watch(&[7.0, 0.0]).verdict(20, true),
            Some(Verdict::NotSettled)
        );
    }
}
