//! The `scimd` server as a library: configuration and the wiring of store, engine and
//! HTTP stack, so that tests and embedders can build the exact application the binary runs.

pub mod cli;
pub mod config;
pub mod events;
pub mod http;
pub mod metrics;
pub mod schemas;
pub mod server;
pub mod upkeep;
