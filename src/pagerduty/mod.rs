//! PagerDuty: the Events API v2 client that pages (`events.rs`, the
//! `PagerDutyEvents` adapter) and the v3 webhook that tells the bot what
//! people did in PagerDuty (`webhook.rs`, `POST /pagerduty/webhook`).

pub mod events;
pub mod webhook;
