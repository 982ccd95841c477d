//! # scimd-core
//!
//! The engine of scimd: the `Store` contract that storage adapters implement, the token
//! machinery behind bearer authentication, and the SCIM operations (`Engine`), which apply
//! the rules of `scimd-proto` and know nothing of HTTP or SQL; and the change events every
//! write records (`events`).

pub mod activity;
pub mod adapter;
pub mod answer;
mod bulk;
pub mod cursor;
pub mod engine;
pub mod events;
pub mod kinds;
mod paging;
pub mod recording;
pub mod schema_change;
pub mod stats;
pub mod store;
pub mod streams;
pub mod tenants;
pub mod token_cache;
pub mod tokens;

pub use adapter::Adapter;
pub use answer::Body;
pub use engine::{Ctx, Engine, EngineError, EngineResult, Query, Rendered, Returning, Settings};
pub use store::{DeletePolicy, Kind, Outage, Store, StoreError};
