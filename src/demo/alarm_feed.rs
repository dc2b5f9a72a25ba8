//! Alarms from the simulated account, on the same path as `/sns`: each
//! state change is stored as an SNS notification (deduplicated on its
//! message id), parsed by `alarm.rs` and taken in by the engine like any
//! stored SNS message, by the work queue (`engine::inbox`). Only the
//! signature check is skipped: the message never left the process.

use std::sync::Arc;
use std::time::Duration;

use crate::alarm::Alarm;
use crate::cloud::AlarmState;
use crate::demo::sim::SimCloud;
use crate::demo::sim::alarms::{Evaluator, Transition, runbook_alarms, sns_envelope};
use crate::engine::inbox::Decoder;
use crate::engine::{Engine, Inbound};

/// Evaluates the simulated alarms every second of wall-clock time until
/// the engine drains.
pub fn spawn(engine: Arc<Engine>, sim: Arc<SimCloud>) {
    let stop = engine.shutdown_token();
    let region = engine.settings().aws.region.clone();
    let mut evaluator = Evaluator::new(runbook_alarms(&sim.traffic()), &region);
    let e = engine.clone();
    engine.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let now = e.now();
            for t in evaluator.evaluate(&sim.traffic(), now) {
                sim.set_alarm_state(
                    &t.name,
                    AlarmState {
                        name: t.name.clone(),
                        state: t.new.as_str().into(),
                        reason: t.reason.clone(),
                    },
                );
                deliver(&e, &region, t).await;
            }
        }
    });
}

async fn deliver(engine: &Arc<Engine>, region: &str, t: Transition) {
    let now = engine.now();
    let id = uuid::Uuid::new_v4().to_string();
    let body = sns_envelope(&id, &t, now, region);
    let topic = format!("arn:aws:sns:{region}:000000000000:scalebot-demo-alarms");
    let (alarm_key, changed_ms) =
        Alarm::order_of(&t.message).map_or((None, None), |(k, c)| (Some(k), c));
    if let Err(e) = engine
        .store()
        .record_sns(crate::store::SnsRecord {
            message_id: id,
            topic,
            kind: "Notification".into(),
            body,
            received_ms: now.timestamp_millis(),
            alarm_key,
            changed_ms,
        })
        .await
    {
        tracing::warn!(alarm = %t.name, error = %e, "simulated alarm not stored");
        return;
    }
    tracing::info!(alarm = %t.name, state = t.new.as_str(), "simulated alarm");
    engine.wake_inbox();
}

/// The simulated account's stored notifications, read back like SNS's
/// (never a subscription confirmation: nothing subscribes here).
pub struct SimDecoder;

#[async_trait::async_trait]
impl Decoder for SimDecoder {
    async fn decode(&self, body: &str) -> Result<Inbound, String> {
        // Unsigned, so not an `SnsMessage`: only its `Message` matters.
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("Message").and_then(|m| m.as_str()).map(str::to_owned));
        match message.map(|m| Alarm::from_message(&m)) {
            Some(Ok(alarm)) => Ok(Inbound::Alarm(Box::new(alarm))),
            Some(Err(e)) => Err(format!("a simulated alarm is not alarm JSON: {e}")),
            None => Err("a simulated notification has no Message".into()),
        }
    }
}
