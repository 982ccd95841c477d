//! The storage contract. A store keeps resources as attribute documents plus the few
//! columns the protocol needs indexed, keeps group membership as rows, and answers
//! filtered, sorted, paged queries. Every call is one transaction.

pub use crate::events::Record;
use async_trait::async_trait;
use scimd_proto::ScimError;
use scimd_proto::filter::Filter;
use scimd_proto::messages::SortOrder;
use scimd_proto::schema::ResourceSchema;
use scimd_proto::value::json_text;
use serde_json::{Map, Value};

pub use crate::kinds::{Kind, Relation, ResourceKind, UniqueAttribute};

/// A resource as stored: its canonical attributes and server metadata. For groups with
/// members loaded, `attributes["members"]` holds `{value, type, display}` objects; for
/// users, `attributes["groups"]` holds `{value, display}` objects.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub id: String,
    pub attributes: Map<String, Value>,
    pub created: String,
    pub last_modified: String,
    pub version: i64,
}

/// A resource as stored, its attributes left as their JSON text: what a read that returns
/// them as they are needs (`Store::get_text`), without building them as a map.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredText {
    pub id: String,
    /// The attributes' JSON object, without the related values.
    pub document: String,
    /// The related values, as `StoredResource` holds them; None when there are none.
    pub relations: Option<Value>,
    pub created: String,
    pub last_modified: String,
    pub version: i64,
}

impl StoredText {
    /// The text of a resource read as a map (a store that keeps no text).
    pub fn of(kind: Kind, mut stored: StoredResource) -> StoredText {
        let relations = kind.take_relation(&mut stored.attributes);
        StoredText {
            id: stored.id,
            document: json_text(&stored.attributes),
            relations,
            created: stored.created,
            last_modified: stored.last_modified,
            version: stored.version,
        }
    }

    /// The attributes as a map, the related values in their attribute.
    pub fn parsed(self, kind: Kind) -> Result<StoredResource, StoreError> {
        Ok(StoredResource {
            attributes: attributes_of(kind, &self.document, self.relations)?,
            id: self.id,
            created: self.created,
            last_modified: self.last_modified,
            version: self.version,
        })
    }
}

/// The attributes of a stored JSON document, with the related values (if any) in their
/// attribute.
pub fn attributes_of(kind: Kind, document: &str, relations: Option<Value>) -> Result<Map<String, Value>, StoreError> {
    let mut attributes: Map<String, Value> =
        serde_json::from_str(document).map_err(|e| StoreError::Backend(format!("corrupt attributes: {e}")))?;
    if let (Some(name), Some(related)) = (kind.relation(), relations) {
        attributes.insert(name.into(), related);
    }
    Ok(attributes)
}

/// The most related values (a group's `members`, a user's `groups`) that come with a
/// resource from `get`, `list` and `modify`. A resource with more comes with
/// `INLINE_RELATIONS + 1` of them, which tells the engine to answer it from
/// `Store::open_relations` instead, in batches, so that a group of any size is answered in
/// bounded memory.
pub const INLINE_RELATIONS: usize = 1000;

/// A resource (without its relation attribute) and its related values in batches, read
/// from one snapshot of the database.
pub struct RelationStream {
    pub resource: StoredResource,
    pub batches: Box<dyn RelationBatches>,
}

/// Related values in order, a batch at a time (`{value, type?, display?}` objects, as in
/// `StoredResource`).
#[async_trait]
pub trait RelationBatches: Send {
    /// The next batch; None once all were given.
    async fn next(&mut self) -> Result<Option<Vec<Map<String, Value>>>, StoreError>;
}

/// All of them at once, for stores that read relations whole.
struct Whole(Option<Vec<Map<String, Value>>>);

#[async_trait]
impl RelationBatches for Whole {
    async fn next(&mut self) -> Result<Option<Vec<Map<String, Value>>>, StoreError> {
        Ok(self.0.take())
    }
}

/// A member reference: the member's SCIM id and, once the store has looked it up, its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub value: String,
}

/// A change to a group's membership, applied by the store as set operations on rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<MemberRef>),
    Remove(Vec<String>),
    RemoveAll,
    Replace(Vec<MemberRef>),
}

/// A new resource. `attributes` exclude `members` (given in `members`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewResource {
    pub id: String,
    pub attributes: Map<String, Value>,
    pub members: Vec<MemberRef>,
    pub now: String,
}

/// What a write does to an existing resource, decided from its current state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Change {
    /// The new attributes (without `members`/`groups`), if they changed.
    pub attributes: Option<Map<String, Value>>,
    pub members: Vec<MemberChange>,
}

/// Decides a change from the current state, inside the write's transaction, while the
/// resource is locked. Pure: it may refuse with a protocol error, never do IO.
pub type Decide<'a> = dyn Fn(&StoredResource) -> Result<Change, ScimError> + Send + Sync + 'a;

/// Options of `Store::modify`.
#[derive(Clone)]
pub struct Modify<'a> {
    /// Load `members`/`groups` into the state handed to `decide`.
    pub load_relations: bool,
    /// Load them into the state returned.
    pub return_relations: bool,
    pub now: &'a str,
    /// Turns what the write did into its events (recorded in its transaction).
    pub record: &'a Record<'a>,
}

/// How `Store::delete` deletes.
#[derive(Clone)]
pub struct Deletion<'a> {
    pub policy: DeletePolicy,
    /// Only this version is deleted (`If-Match`).
    pub expected_version: Option<i64>,
    pub now: &'a str,
    pub record: &'a Record<'a>,
}

/// What `DELETE` does to the data (RFC 7644 §3.6 says the resource is gone either way,
/// except under `Deactivate`, which mirrors the Django apps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeletePolicy {
    /// Keep the row, deactivated and hidden from SCIM.
    #[default]
    Retire,
    /// Remove the row.
    Erase,
    /// Only set `active=false`; the resource stays readable.
    Deactivate,
}

impl DeletePolicy {
    pub fn parse(text: &str) -> Option<DeletePolicy> {
        match text.to_ascii_lowercase().as_str() {
            "retire" => Some(DeletePolicy::Retire),
            "erase" => Some(DeletePolicy::Erase),
            "deactivate" => Some(DeletePolicy::Deactivate),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DeletePolicy::Retire => "retire",
            DeletePolicy::Erase => "erase",
            DeletePolicy::Deactivate => "deactivate",
        }
    }
}

/// A resolved sort key: the canonical attribute path (e.g. `name.familyName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub path: String,
    pub order: SortOrder,
}

/// A query for one page of one resource type.
#[derive(Debug, Clone)]
pub struct ListQuery<'a> {
    pub schema: &'a ResourceSchema<'a>,
    /// Checked against the schema already.
    pub filter: Option<&'a Filter>,
    pub sort: Option<SortKey>,
    /// Zero-based.
    pub offset: u64,
    pub count: u64,
    /// Whether to load `members` (groups) / `groups` (users).
    pub with_relations: bool,
    /// Start after this resource instead of at `offset`: keyset paging, for cursors.
    pub after: Option<After>,
}

impl<'a> ListQuery<'a> {
    /// `count` resources from `offset`, in the default order, unfiltered, without relations.
    pub fn page(schema: &'a ResourceSchema<'a>, offset: u64, count: u64) -> ListQuery<'a> {
        ListQuery { schema, filter: None, sort: None, offset, count, with_relations: false, after: None }
    }
}

/// A resource a page starts after: its order key (see `ListPage::keys`) and, in a `sort`
/// order, its sort value (see `ListPage::sort_values`).
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub key: i64,
    pub sort: Option<SortValue>,
}

/// The value a resource is sorted by, as the database compares it: `type_name` is the
/// database's name for its type where the database needs it to compare a value with it
/// (PostgreSQL), empty otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Null,
    Int(i64),
    Real(f64),
    Text { text: String, type_name: String },
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListPage<R = StoredResource> {
    pub total: u64,
    pub resources: Vec<R>,
    /// The order key of each resource (a store's stable, increasing key of its default
    /// order, such as a row number), from which `ListQuery::after` continues.
    pub keys: Vec<i64>,
    /// In a `sort` order, each resource's sort value (empty otherwise).
    pub sort_values: Vec<SortValue>,
}

impl<R> ListPage<R> {
    /// No resources, of `total`.
    pub fn empty(total: u64) -> ListPage<R> {
        ListPage { total, resources: Vec::new(), keys: Vec::new(), sort_values: Vec::new() }
    }

    /// The same page, each resource in another form.
    pub fn try_map<S, E>(self, f: impl FnMut(R) -> Result<S, E>) -> Result<ListPage<S>, E> {
        let resources = self.resources.into_iter().map(f).collect::<Result<_, _>>()?;
        Ok(ListPage { total: self.total, resources, keys: self.keys, sort_values: self.sort_values })
    }
}

/// Failures a store reports. Client-caused ones carry enough to build a SCIM error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change was refused by the protocol rules (`Decide` returned an error).
    #[error("{0}")]
    Rejected(ScimError),
    /// A uniqueness constraint: the attribute's name.
    #[error("{0} is already taken")]
    Uniqueness(String),
    /// `expected_version` did not match.
    #[error("the resource changed since it was read")]
    VersionMismatch,
    #[error("not found")]
    NotFound,
    /// A member reference that cannot be: unknown, or the group itself.
    #[error("{0}")]
    InvalidMember(String),
    /// A filter or sort the store cannot answer exactly.
    #[error("{0}")]
    Unsupported(String),
    /// The database cannot serve this now; the same request may succeed later.
    #[error("{0}: {1}")]
    Unavailable(Outage, String),
    #[error("storage failure: {0}")]
    Backend(String),
}

/// Why a store cannot serve a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The database does not answer: refused, reset or timed-out connections, a server
    /// shutting down, a file that cannot be opened or written.
    Unreachable,
    /// The database cannot store more: its disk is full.
    StorageFull,
    /// The database answered, but no connection or lock became free in time.
    Busy,
    /// A transaction committed nothing and can run again (it met another, or lost its
    /// connection before its commit). Stores retry these themselves, a few times; what
    /// reaches the engine has exhausted that.
    Conflict(Conflict),
    /// The connection was lost while the transaction committed: the write may or may not
    /// have been made, and the client should read before it writes again.
    InDoubt,
}

/// Why a transaction committed nothing and can run again (`Outage::Conflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// PostgreSQL found transactions waiting for each other's rows and ended one.
    Deadlock,
    /// PostgreSQL could not order the transaction after the ones it overlapped.
    Serialization,
    /// SQLite's database stayed locked by another writer.
    Locked,
    /// The store found rows changed under the transaction by one it waited for.
    Changed,
    /// PostgreSQL: the transaction's connection was lost, or its backend terminated,
    /// before its commit.
    Interrupted,
}

impl Conflict {
    pub const ALL: [Conflict; 5] =
        [Conflict::Deadlock, Conflict::Serialization, Conflict::Locked, Conflict::Changed, Conflict::Interrupted];

    /// Its name in the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Conflict::Deadlock => "deadlock",
            Conflict::Serialization => "serialization",
            Conflict::Locked => "locked",
            Conflict::Changed => "changed",
            Conflict::Interrupted => "interrupted",
        }
    }
}

impl Outage {
    /// The status a client is answered with (507 for a full disk, else 503) and what it is
    /// told, `Retry-After` included.
    pub fn answer(self) -> (u16, String) {
        let (status, detail) = match self {
            Outage::StorageFull => (507, "the server's storage is full; nothing was changed"),
            Outage::Unreachable => (503, "the database is unavailable; nothing was changed"),
            Outage::Busy | Outage::Conflict(_) => (503, "the database is busy; nothing was changed"),
            Outage::InDoubt => (
                503,
                "the connection to the database was lost while the change was committed; it may or may not \
                 have been made: read the resource before sending the request again",
            ),
        };
        (status, format!("{detail}. Retry in {} s.", self.retry_after()))
    }

    /// Seconds a client should wait before trying again.
    pub fn retry_after(self) -> u64 {
        match self {
            Outage::Unreachable | Outage::StorageFull | Outage::InDoubt => 5,
            Outage::Busy | Outage::Conflict(_) => 1,
        }
    }
}

impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outage::Unreachable => "database unreachable",
            Outage::StorageFull => "storage full",
            Outage::Busy => "database busy",
            Outage::Conflict(_) => "transaction conflict",
            Outage::InDoubt => "connection lost during commit",
        })
    }
}

/// The adapter contract. Implementations: `scimd-sql` (SQLite, PostgreSQL, and mapped
/// application tables).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a resource; `record` turns what was written into the events recorded with it.
    async fn create(
        &self,
        tenant: &str,
        kind: Kind,
        new: NewResource,
        record: &Record<'_>,
    ) -> Result<StoredResource, StoreError>;
    async fn get(
        &self,
        tenant: &str,
        kind: Kind,
        id: &str,
        with_relations: bool,
    ) -> Result<Option<StoredResource>, StoreError>;
    /// `get`, the attributes as their stored JSON text. A store that keeps the text
    /// overrides it; this one reads a map and writes it out.
    async fn get_text(
        &self,
        tenant: &str,
        kind: Kind,
        id: &str,
        with_relations: bool,
    ) -> Result<Option<StoredText>, StoreError> {
        Ok(self.get(tenant, kind, id, with_relations).await?.map(|stored| StoredText::of(kind, stored)))
    }
    /// Read-modify-write in one transaction: locks the resource, hands its current state
    /// to `decide`, applies the change (bumping the version only if something changed) and
    /// returns the resulting state. Concurrent writers of one resource are serialised, so
    /// no acknowledged write is lost.
    async fn modify(
        &self,
        tenant: &str,
        kind: Kind,
        id: &str,
        opts: Modify<'_>,
        decide: &Decide<'_>,
    ) -> Result<StoredResource, StoreError>;
    /// Deletes under a policy other than `Deactivate` (which the engine does with `modify`).
    /// Returns false when there was nothing to delete.
    async fn delete(&self, tenant: &str, kind: Kind, id: &str, how: Deletion<'_>) -> Result<bool, StoreError>;
    async fn list(&self, tenant: &str, kind: Kind, query: &ListQuery<'_>) -> Result<ListPage, StoreError>;
    /// `list`, the attributes as their stored JSON text (see `get_text`).
    async fn list_text(
        &self,
        tenant: &str,
        kind: Kind,
        query: &ListQuery<'_>,
    ) -> Result<ListPage<StoredText>, StoreError> {
        self.list(tenant, kind, query).await?.try_map(|stored| Ok(StoredText::of(kind, stored)))
    }
    /// A live resource and all its related values in batches, from one snapshot, for an
    /// answer too large to hold (see `INLINE_RELATIONS`); None when there is no such
    /// resource. By default, what `get` reads, as one batch: right for a store whose
    /// `get` returns relations whole.
    async fn open_relations(&self, tenant: &str, kind: Kind, id: &str) -> Result<Option<RelationStream>, StoreError> {
        let Some(mut resource) = self.get(tenant, kind, id, true).await? else { return Ok(None) };
        let values = match kind.take_relation(&mut resource.attributes) {
            Some(Value::Array(items)) => items.into_iter().filter_map(|v| v.as_object().cloned()).collect(),
            _ => vec![],
        };
        Ok(Some(RelationStream { resource, batches: Box::new(Whole(Some(values))) }))
    }
    /// Whether the store is reachable (for `/readyz`).
    /// The database connections' use, for the metrics (nothing, where unknown).
    fn db_stats(&self) -> crate::stats::DbStats {
        crate::stats::DbStats::default()
    }
    async fn ping(&self) -> Result<(), StoreError>;
}
