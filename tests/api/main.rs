//! Integration tests: the real server over HTTP, AWS through moto, Slack
//! through the local fake in `tests/support`, the store on SQLite and
//! PostgreSQL. One test binary, so that it links once.

#[path = "../support/mod.rs"]
mod support;

mod aws_errors;
mod browser;
mod browser_drills;
mod buttons;
mod cache_nodes;
mod chaos;
mod check_cli;
mod cloud_aws;
mod confirm;
mod demo_origin;
mod deploy;
mod discord;
mod edge;
mod escalation;
mod iam;
mod ingress;
mod layers;
mod metrics_listener;
mod paging;
mod permissions;
mod postgres_nodelay;
mod rds;
mod readonly;
mod replay;
mod reports;
mod runbook;
mod severity;
mod silences;
mod sns;
mod sns_fixture;
mod sns_flood;
mod sns_moto;
mod socket_mode;
mod store;
mod throttles;
mod watch;
mod web_chat;
