//! # scimd-sql
//!
//! The scimd store on SQL databases: SQLite (the embedded default) and PostgreSQL, one code
//! path (`store`) over a per-dialect transaction (`conn`). Filters, sorting and paging
//! compile to SQL with bound parameters (`compile`); membership is a table of rows.

mod activity;
pub mod compile;
mod conn;
mod events;
mod health;
mod keyset;
pub mod layout;
pub mod mapped;
mod pg_lease;
mod pg_upkeep;
pub mod postgres;
mod replicas;
mod retry;
mod rows;
mod schema_state;
pub mod sql;
pub mod sqlite;
pub mod store;
mod streams;
mod tenants;
mod tokens;

pub use mapped::{MappedStore, Mapping, MembershipMap, TableMap, Tenancy};
pub use postgres::{PgPools, PostgresSettings, PostgresStore};
pub use sqlite::{Durability, SqlitePools, SqliteSettings, SqliteStore};
pub use store::{Pools, SqlStore};
