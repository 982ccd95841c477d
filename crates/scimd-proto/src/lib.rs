//! # scimd-proto
//!
//! The SCIM 2.0 rules as a pure library (no IO, no async): the schema registry of RFC 7643,
//! attribute paths, the filter grammar of RFC 7644 §3.4.2.2 with an evaluator, PATCH
//! (§3.5.2) including identity-provider dialects, `attributes`/`excludedAttributes`
//! projection, input validation, and the protocol messages.
//!
//! Resources travel as `serde_json` objects in canonical form: attribute names spelled as
//! their schema spells them, extension attributes inside an object keyed by the
//! extension's schema URN.

pub mod bulk;
pub mod error;
pub mod filter;
pub mod messages;
mod object_text;
pub mod patch;
pub mod path;
pub mod project;
pub mod resource;
pub mod schema;
pub mod schema_files;
pub mod validate;
pub mod value;

pub use error::{ErrorBody, Result, ScimError, ScimType};
pub use filter::{Filter, FilterLimits};
pub use path::AttrPath;
pub use project::Projection;
pub use schema::{Registry, ResourceSchema};

pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
pub const SERVICE_PROVIDER_CONFIG_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
