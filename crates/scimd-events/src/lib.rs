//! # scimd-events
//!
//! scimd's change events as RFC 9967 Security Event Tokens: rendered from the durable log
//! (`set`), signed (`jws`), pushed to receivers (RFC 8935, `push`) or fetched by them
//! (RFC 8936, `poll`).

pub mod jws;
pub mod set;
