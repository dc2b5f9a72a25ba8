//! `scalebot demo`: the web chat (its page, API and chat adapter, and the
//! checks that keep other web pages out of it: `origin.rs`), the
//! simulated AWS account with its drills, and the feed that turns the
//! simulation's alarm state changes into SNS-shaped notifications.

pub mod alarm_feed;
pub mod chat;
pub mod ingress;
pub mod origin;
pub mod settings;
pub mod sim;
