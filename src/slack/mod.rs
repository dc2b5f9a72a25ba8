//! Slack: slash commands and button clicks over HTTP (signed) or Socket
//! Mode, and the chat adapter that renders messages as Block Kit and calls
//! the Web API through slack-morphism.

pub mod chat;
pub mod ingress;
pub mod settings;
pub mod socket_mode;
