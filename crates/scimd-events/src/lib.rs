//! # scimd-events
//!
//! scimd's change events as RFC 9967 Security Event Tokens: rendered from the durable log
//! (`set`), signed (`jws`, `keys`), pushed to receivers (RFC 8935, `push`) or fetched by them
//! (RFC 8936, `poll`); and as a plain JSON feed, or in process (`feed`).

pub mod feed;
pub mod http;
pub mod jws;
pub mod keys;
pub mod manage;
pub mod poll;
pub mod push;
pub mod set;
