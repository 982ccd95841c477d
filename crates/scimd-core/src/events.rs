//! Change events: what each committed write did, recorded in the write's own transaction
//! (a transactional outbox), so that a committed change always has its events and a refused
//! or rolled-back one never does.
//!
//! The store reports what a write did (`Written`: the resource before and after, the
//! members a group gained and lost, the groups a deleted resource left); the engine turns
//! that into events (`NewEvent`: one JSON payload each, the resource projected as a GET
//! would show it) through a `Record` closure the store calls inside the transaction; the
//! store appends them to the log. Every rendering (RFC 9967 SETs, the JSON feed, events in
//! process) is made from the payload.

use crate::store::{Kind, StoreError, StoredResource};
use async_trait::async_trait;
use serde_json::Value;

/// The SCIM operation behind an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    /// `PUT`.
    Replace,
    Patch,
    /// `DELETE` (the resource is gone).
    Delete,
    /// `DELETE` under `delete_policy = deactivate`: only `active` became false.
    Deactivate,
    /// A group's members changed because a member was deleted.
    MembershipOnly,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Replace => "put",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
            Operation::Deactivate => "deactivate",
            Operation::MembershipOnly => "patch",
        }
    }
}

/// The members a group gained and lost in one write, in the order they were given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberDelta {
    /// (member id, member type: `User` or `Group`).
    pub added: Vec<(String, String)>,
    pub removed: Vec<String>,
}

impl MemberDelta {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// What a write did, as the store saw it inside the transaction.
#[derive(Debug)]
pub struct Written<'a> {
    pub kind: Kind,
    pub id: &'a str,
    /// The state before (updates and deletes; without relations).
    pub before: Option<&'a StoredResource>,
    /// The state after (creates and updates; without relations). None when deleted.
    pub after: Option<&'a StoredResource>,
    /// A group's members gained and lost.
    pub members: &'a MemberDelta,
    /// The groups a deleted resource was removed from: (group id, its new version).
    pub left_groups: &'a [(String, i64)],
    pub now: &'a str,
}

/// An event to append to the log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The resource type (`User`) and id the event is about.
    pub resource_type: String,
    pub resource_id: String,
    /// What every rendering is made from (see `payload`).
    pub payload: Value,
}

/// Turns what a write did into its events; called by the store inside the transaction.
/// It must not fail and must not do IO.
pub type Record<'a> = dyn Fn(&Written<'_>) -> Vec<NewEvent> + Send + Sync + 'a;

/// For writes that record nothing (tests of the store itself, tools).
pub fn no_events(_: &Written<'_>) -> Vec<NewEvent> {
    Vec::new()
}

/// An event as the log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    /// Grows with every event, in the order their writes committed; never reused.
    pub seq: i64,
    pub tenant: String,
    /// The write's transaction: the same for every event one write recorded.
    pub txn: String,
    pub time: String,
    pub resource_type: String,
    pub resource_id: String,
    pub payload: Value,
}

/// The durable log.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// A tenant's events after `after`, oldest first, at most `limit`.
    async fn events_after(&self, tenant: &str, after: i64, limit: u32) -> Result<Vec<LoggedEvent>, StoreError>;
    /// The newest event's sequence number of a tenant (0 when it has none).
    async fn last_seq(&self, tenant: &str) -> Result<i64, StoreError>;
    /// How many of a tenant's events come after `after`.
    async fn count_after(&self, tenant: &str, after: i64) -> Result<u64, StoreError>;
    /// Removes events recorded before `before` that every stream of their tenant has
    /// received; returns how many.
    async fn prune_events(&self, before: &str) -> Result<u64, StoreError>;
}

/// The payload of an event, as `Record` closures build it and renderings read it.
pub mod payload {
    /// `create`, `put`, `patch`, `delete`, `deactivate`.
    pub const OP: &str = "op";
    /// `User`, `Group`.
    pub const RESOURCE_TYPE: &str = "resourceType";
    /// The resource's endpoint, e.g. `Users` (its relative URI is `/Users/{id}`).
    pub const ENDPOINT: &str = "endpoint";
    pub const ID: &str = "id";
    pub const EXTERNAL_ID: &str = "externalId";
    /// The resource's ETag after the change (`W/"3"`); absent for a deletion.
    pub const VERSION: &str = "version";
    pub const TIME: &str = "time";
    pub const REQUEST_ID: &str = "requestId";
    /// Attribute paths added, changed or removed.
    pub const ATTRIBUTES: &str = "attributes";
    /// The top-level attributes (names, extension URNs) among them.
    pub const TOP_LEVEL: &str = "topLevel";
    /// A create: the whole resource. A replace or patch: the changed attributes' new values
    /// (a removed one is absent). Never a group's members.
    pub const DATA: &str = "data";
    /// `activate` or `deactivate`, when `active` changed.
    pub const ACTIVATION: &str = "activation";
    /// `{"added": [{"value", "type"}…], "removed": [{"value"}…]}`, when members changed.
    pub const MEMBERS: &str = "members";
}
