//! Test fixtures shared by the integration tests.

pub mod app;
pub mod aws_standin;
pub mod cbor_proxy;
pub mod clock;
pub mod counting_cloud;
pub mod counting_proxy;
pub mod demo;
pub mod discord;
pub mod forward;
pub mod moto;
pub mod pagerduty;
pub mod partial_cloud;
pub mod replicas;
pub mod rr_proxy;
pub mod slack;
pub mod sns;
pub mod webdriver;
