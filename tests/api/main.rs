//! Integration tests: the real server over HTTP, AWS through moto, Slack
//! through the local fake in `tests/support`, the store on SQLite and
//! PostgreSQL. One test binary, so that it links once.

#[path = "../support/mod.rs"]
mod support;

mod aws_errors;
mod browser;
mod browser_drills;
mod buttons;
mod chaos;
mod check_cli;
mod cloud_aws;
mod confirm;
mod deploy;
mod discord;
mod escalation;
mod ingress;
mod layers;
mod readonly;
mod reports;
mod runbook;
mod sns;
mod sns_fixture;
mod sns_moto;
mod socket_mode;
mod store;
mod throttles;
mod web_chat;
