//! # scimd-sql
//!
//! The scimd store on SQL databases. SQLite is the embedded default; filters, sorting and
//! paging compile to SQL with bound parameters (`compile`), membership is a table of rows.

pub mod compile;
mod fold;
pub mod layout;
mod rows;
pub mod sql;
pub mod sqlite;

pub use sqlite::{Durability, SqliteSettings, SqliteStore};
