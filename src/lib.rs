//! scalebot: the auto-scaling runbook, live in chat.
//!
//! The engine ([`engine`]) is platform-neutral: it talks to chat through the
//! [`chat::Chat`] trait, to AWS through the [`cloud::Cloud`] trait, and keeps
//! everything that matters in the [`store::Store`]. The ingress ([`ingress`])
//! verifies and parses what arrives over HTTP or Socket Mode and hands it on.

pub mod alarm;
pub mod aws;
pub mod catalog;
pub mod chart;
pub mod chat;
pub mod check;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod demo;
pub mod discord;
pub mod domain;
pub mod drills;
pub mod engine;
pub mod format;
pub mod metrics;
pub mod pager;
pub mod pagerduty;
pub mod reports;
pub mod schedule;
pub mod server;
pub mod settings_file;
pub mod slack;
pub mod sns;
pub mod startup;
pub mod store;
pub mod telemetry;
