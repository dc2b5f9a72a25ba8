//! Test fixtures shared by the integration tests.

pub mod app;
pub mod cbor_proxy;
pub mod clock;
pub mod counting_cloud;
pub mod counting_proxy;
pub mod demo;
pub mod discord;
pub mod moto;
pub mod partial_cloud;
pub mod replicas;
pub mod rr_proxy;
pub mod slack;
pub mod sns;
pub mod webdriver;
