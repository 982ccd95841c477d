//! The SCIM operations (RFC 7644 §3.3–§3.6) on top of a `Store`: validation, PATCH with
//! optimistic concurrency, uniqueness and precondition errors, delete policy, queries.
//! This is the single write path: every change to a resource goes through `write`.

use crate::adapter::Adapter;
use crate::answer::{self, Body, Placeheld, Renderer};
use crate::cursor::CursorKey;
use crate::events::{Operation, Written};
use crate::paging::Paging;
use crate::recording::Recording;
use crate::store::{
    Change, Decide, DeletePolicy, Deletion, Kind, ListQuery, MemberChange, MemberRef, Modify, NewResource, SortKey,
    Store, StoreError, StoredResource,
};
use scimd_proto::filter::{self, Filter, FilterLimits};
use scimd_proto::messages::SortOrder;
use scimd_proto::patch::{self, RelationChange};
use scimd_proto::schema::{Mutability, ResourceSchema};
use scimd_proto::validate::validate_resource;
use scimd_proto::{AttrPath, Projection, Registry, ScimError};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Engine settings (the protocol-facing ones; transport limits live in the HTTP layer).
#[derive(Debug, Clone)]
pub struct Settings {
    pub delete_policy: DeletePolicy,
    /// `count` when a query gives none.
    pub default_page_size: u64,
    /// The largest `count` honoured; published as `filter.maxResults`.
    pub max_page_size: u64,
    pub filter_limits: FilterLimits,
    /// The most operations a `/Bulk` request may carry (published as `bulk.maxOperations`);
    /// 0 turns `/Bulk` off.
    pub bulk_max_operations: u64,
    /// Seals the cursors of RFC 9865 paging; processes sharing a database must share it.
    pub cursor_key: CursorKey,
    /// How long a cursor stays usable (published as `pagination.cursorTimeout`).
    pub cursor_timeout: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            delete_policy: DeletePolicy::Retire,
            default_page_size: 100,
            max_page_size: 1000,
            filter_limits: FilterLimits::default(),
            bulk_max_operations: 1000,
            cursor_key: CursorKey::random(),
            cursor_timeout: std::time::Duration::from_secs(3600),
        }
    }
}

/// Per-request context: whose data, the public URL of the SCIM root the request came in on
/// (for `meta.location` and `$ref`, without a trailing slash), the tenant's own delete
/// policy when it has one, and the request's id (named in the events it causes).
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub tenant: &'a str,
    pub base_url: &'a str,
    pub delete_policy: Option<DeletePolicy>,
    pub request_id: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    pub fn new(tenant: &'a str, base_url: &'a str) -> Ctx<'a> {
        Ctx { tenant, base_url, delete_policy: None, request_id: None }
    }
}

/// A single resource in its response form, with what the HTTP layer puts in headers.
pub struct Rendered {
    pub body: Body,
    pub location: String,
    pub version: i64,
}

/// The `attributes` / `excludedAttributes` parameters of a request that returns a resource.
#[derive(Debug, Clone, Copy, Default)]
pub struct Returning<'a> {
    pub attributes: Option<&'a str>,
    pub excluded_attributes: Option<&'a str>,
}

impl Returning<'_> {
    fn projection(&self, schema: &ResourceSchema<'_>) -> Result<Projection, ScimError> {
        Projection::parse(self.attributes, self.excluded_attributes, schema)
    }
}

/// Query parameters of a list or search, as received.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    /// RFC 9865 cursor paging: `Some("")` asks for the first page by cursor, any other
    /// value is a `nextCursor` handed back.
    pub cursor: Option<String>,
}

/// Engine failures: protocol errors for the client, or internal ones (logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The store cannot serve now (see `Outage`); the cause is for the log.
    #[error("{0}: {1}")]
    Unavailable(crate::store::Outage, String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Uniqueness(attr) => {
                ScimError::uniqueness(format!("a resource with this {attr} already exists")).into()
            }
            StoreError::VersionMismatch => {
                ScimError::precondition_failed("the resource has changed; its version no longer matches If-Match")
                    .into()
            }
            StoreError::NotFound => ScimError::not_found("resource not found").into(),
            StoreError::InvalidMember(why) => ScimError::invalid_value(why).into(),
            StoreError::Unsupported(why) => ScimError::invalid_filter(why).into(),
            StoreError::Rejected(e) => e.into(),
            StoreError::Unavailable(outage, why) => EngineError::Unavailable(outage, why),
            StoreError::Backend(why) => EngineError::Internal(why),
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

pub struct Engine {
    registry: Arc<Registry>,
    /// The registry's resource types, built-in ones first.
    kinds: Vec<Kind>,
    store: Arc<dyn Store>,
    settings: Settings,
    adapter: Arc<dyn Adapter>,
    changes: Arc<tokio::sync::Notify>,
}

use scimd_proto::value::{json_text, now};

impl Engine {
    pub fn new(registry: Arc<Registry>, store: Arc<dyn Store>, settings: Settings) -> Engine {
        Engine {
            kinds: crate::kinds::kinds_of(&registry),
            registry,
            store,
            settings,
            adapter: Arc::new(crate::adapter::Identity),
            changes: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Reshapes resources on their way in and out (see `Adapter`).
    pub fn with_adapter(mut self, adapter: Arc<dyn Adapter>) -> Engine {
        self.adapter = adapter;
        self
    }

    /// Wakes `changes` after every write (see `changes`): a notifier shared with the event
    /// workers built before the engine.
    pub fn with_changes(mut self, changes: Arc<tokio::sync::Notify>) -> Engine {
        self.changes = changes;
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every resource type served, built-in ones first (the order of `POST /.search`).
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    /// The resource type served at `/{endpoint}` (any case).
    pub fn kind_at(&self, endpoint: &str) -> Option<Kind> {
        self.kinds.iter().copied().find(|k| k.endpoint().eq_ignore_ascii_case(endpoint))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Woken after every write this engine commits: what event delivery and event tails
    /// wait on, so that a change goes out at once.
    pub fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.changes.clone()
    }

    fn changed(&self) {
        self.changes.notify_waiters();
    }

    fn schema(&self, kind: Kind) -> EngineResult<ResourceSchema<'_>> {
        self.registry
            .resource(kind.name())
            .ok_or_else(|| EngineError::Internal(format!("no schema for {}", kind.name())))
    }

    /// What rendering needs for this request.
    fn renderer(&self, ctx: &Ctx<'_>) -> Renderer {
        Renderer {
            registry: self.registry.clone(),
            store: self.store.clone(),
            adapter: self.adapter.clone(),
            tenant: ctx.tenant.to_string(),
            base_url: ctx.base_url.to_string(),
        }
    }

    /// The answer for a stored resource: whole, or, when the read capped its related values
    /// (`INLINE_RELATIONS`), streamed from a snapshot of its own.
    async fn answer(
        &self,
        ctx: &Ctx<'_>,
        kind: Kind,
        schema: &ResourceSchema<'_>,
        stored: StoredResource,
        projection: &Projection,
    ) -> EngineResult<Rendered> {
        let r = self.renderer(ctx);
        let location = answer::location(ctx.base_url, kind, &stored.id);
        if answer::is_capped(kind, &stored) {
            let stream = self
                .store
                .open_relations(ctx.tenant, kind, &stored.id)
                .await?
                .ok_or_else(|| ScimError::not_found(format!("{} {} not found", kind.name(), stored.id)))?;
            let version = stream.resource.version;
            return Ok(Rendered { body: r.streamed_one(kind, stream, projection.clone())?, location, version });
        }
        let version = stored.version;
        Ok(Rendered { body: Body::Json(Value::Object(r.render(kind, schema, stored, projection))), location, version })
    }

    fn wants_relation(kind: Kind, schema: &ResourceSchema<'_>, projection: &Projection) -> bool {
        kind.relation().and_then(|r| schema.core.attribute(r)).is_some_and(|d| projection.may_return(d))
    }

    async fn load(&self, ctx: &Ctx<'_>, kind: Kind, id: &str, with_relations: bool) -> EngineResult<StoredResource> {
        known_id(kind, id)?;
        self.store.get(ctx.tenant, kind, id, with_relations).await?.ok_or_else(|| missing(kind, id))
    }

    async fn load_rendered(
        &self,
        ctx: &Ctx<'_>,
        kind: Kind,
        id: &str,
        projection: &Projection,
    ) -> EngineResult<Rendered> {
        let schema = self.schema(kind)?;
        let stored = self.load(ctx, kind, id, Self::wants_relation(kind, &schema, projection)).await?;
        self.answer(ctx, kind, &schema, stored, projection).await
    }

    /// `GET /{Users|Groups}/{id}`: the resource is answered from its stored JSON text
    /// where the projection keeps or drops each attribute whole (without `attributes`, and
    /// a group without its `members`: the reads identity providers send).
    pub async fn get(&self, ctx: &Ctx<'_>, kind: Kind, id: &str, returning: Returning<'_>) -> EngineResult<Rendered> {
        let schema = self.schema(kind)?;
        let projection = returning.projection(&schema)?;
        if !self.adapter.reads_as_stored() {
            return self.load_rendered(ctx, kind, id, &projection).await;
        }
        known_id(kind, id)?;
        let with_relations = Self::wants_relation(kind, &schema, &projection);
        let stored =
            self.store.get_text(ctx.tenant, kind, id, with_relations).await?.ok_or_else(|| missing(kind, id))?;
        match self.renderer(ctx).render_stored(kind, &schema, &stored, &projection) {
            Some(text) => Ok(Rendered {
                body: Body::Text(text),
                location: answer::location(ctx.base_url, kind, &stored.id),
                version: stored.version,
            }),
            None => self.answer(ctx, kind, &schema, stored.parsed(kind)?, &projection).await,
        }
    }

    /// Splits a group's `members` out of its attributes (stores keep them as rows).
    fn take_members(kind: Kind, attributes: &mut Map<String, Value>) -> Option<Vec<MemberRef>> {
        if !kind.has_members() {
            return None;
        }
        let members = kind.take_relation(attributes)?;
        Some(member_refs(members.as_array().map(Vec::as_slice).unwrap_or_default()))
    }

    /// `POST /{Users|Groups}`.
    pub async fn create(
        &self,
        ctx: &Ctx<'_>,
        kind: Kind,
        body: &Value,
        returning: Returning<'_>,
    ) -> EngineResult<Rendered> {
        let schema = self.schema(kind)?;
        let projection = returning.projection(&schema)?;
        let mut attrs = validate_resource(body, &schema)?;
        self.adapter.from_scim(kind, &mut attrs)?;
        strip_write_only(&mut attrs, &schema);
        let members = Self::take_members(kind, &mut attrs).unwrap_or_default();
        let has_members = !members.is_empty();
        let new = NewResource { id: uuid::Uuid::now_v7().to_string(), attributes: attrs, members, now: now() };
        let renderer = self.renderer(ctx);
        let rec = Recording { op: Operation::Create, request_id: ctx.request_id, renderer: &renderer, schema: &schema };
        let stored = self.store.create(ctx.tenant, kind, new, &|w: &Written<'_>| rec.events(w)).await?;
        self.changed();
        if has_members {
            return self.load_rendered(ctx, kind, &stored.id, &projection).await;
        }
        self.answer(ctx, kind, &schema, stored, &projection).await
    }

    /// The single write path for existing resources: `decide` runs on the locked current
    /// state inside the store's transaction; the response is the state this write produced.
    #[allow(clippy::too_many_arguments)]
    async fn modify(
        &self,
        ctx: &Ctx<'_>,
        op: Operation,
        kind: Kind,
        id: &str,
        load_relations: bool,
        projection: &Projection,
        decide: &Decide<'_>,
    ) -> EngineResult<Rendered> {
        known_id(kind, id)?;
        let schema = self.schema(kind)?;
        let now = now();
        let renderer = self.renderer(ctx);
        let rec = Recording { op, request_id: ctx.request_id, renderer: &renderer, schema: &schema };
        let record = |w: &Written<'_>| rec.events(w);
        let opts = Modify {
            load_relations,
            return_relations: Self::wants_relation(kind, &schema, projection),
            now: &now,
            record: &record,
        };
        let stored = self.store.modify(ctx.tenant, kind, id, opts, decide).await.map_err(|e| match e {
            StoreError::NotFound => ScimError::not_found(format!("{} {id} not found", kind.name())).into(),
            other => EngineError::from(other),
        })?;
        self.changed();
        self.answer(ctx, kind, &schema, stored, projection).await
    }

    /// `PUT /{Users|Groups}/{id}` (RFC 7644 §3.5.1). A group's members are replaced when the
    /// body has `members` and left alone when it does not.
    pub async fn replace(
        &self,
        ctx: &Ctx<'_>,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<i64>,
        returning: Returning<'_>,
    ) -> EngineResult<Rendered> {
        let schema = self.schema(kind)?;
        let projection = returning.projection(&schema)?;
        let mut attrs = validate_resource(body, &schema)?;
        self.adapter.from_scim(kind, &mut attrs)?;
        strip_write_only(&mut attrs, &schema);
        let members = Self::take_members(kind, &mut attrs);
        let decide = |current: &StoredResource| -> Result<Change, ScimError> {
            check_precondition(if_match, current.version)?;
            check_immutable(&current.attributes, &attrs, &schema)?;
            let mut base = current.attributes.clone();
            kind.take_relation(&mut base);
            Ok(Change {
                attributes: (base != attrs).then(|| attrs.clone()),
                members: members.clone().map(MemberChange::Replace).into_iter().collect(),
            })
        };
        self.modify(ctx, Operation::Replace, kind, id, false, &projection, &decide).await
    }

    /// `PATCH /{Users|Groups}/{id}` (RFC 7644 §3.5.2), all or nothing, on the locked current
    /// state: concurrent PATCHes and PUTs of one resource never lose each other's changes.
    pub async fn patch(
        &self,
        ctx: &Ctx<'_>,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<i64>,
        returning: Returning<'_>,
    ) -> EngineResult<Rendered> {
        let schema = self.schema(kind)?;
        let projection = returning.projection(&schema)?;
        let ops = patch::parse_request(body, self.settings.filter_limits)?;
        let (ops, relation) = match kind.relation() {
            Some(r) if kind.has_members() => patch::split_relation(ops, &schema, r)?,
            _ => (ops, Vec::new()),
        };
        let members_def = kind.relation().and_then(|r| schema.core.attribute(r));
        // Only a remove by a filter other than `value eq …` needs the members loaded.
        let needs_members =
            relation.iter().any(|c| matches!(c, RelationChange::RemoveWhere(f) if f.eq_strings("value").is_none()));
        let decide = |current: &StoredResource| -> Result<Change, ScimError> {
            check_precondition(if_match, current.version)?;
            let mut base = current.attributes.clone();
            // A group's loaded members (the relation of other types is read-only).
            let loaded_members = kind.take_relation(&mut base);
            let mut next = if ops.is_empty() { base.clone() } else { patch::apply(&base, &schema, &ops)? };
            if next != base {
                self.adapter.from_scim(kind, &mut next)?;
            }
            strip_write_only(&mut next, &schema);
            let members = relation.iter().map(|c| member_change(c, members_def, loaded_members.as_ref())).collect();
            // Re-adding a value that is there changes nothing and makes no new version.
            Ok(Change { attributes: (next != base).then_some(next), members })
        };
        self.modify(ctx, Operation::Patch, kind, id, needs_members, &projection, &decide).await
    }

    /// `DELETE /{Users|Groups}/{id}` under the configured policy.
    pub async fn delete(&self, ctx: &Ctx<'_>, kind: Kind, id: &str, if_match: Option<i64>) -> EngineResult<()> {
        match (ctx.delete_policy.unwrap_or(self.settings.delete_policy), kind) {
            (DeletePolicy::Deactivate, k) if k.has_active() => {
                let decide = |current: &StoredResource| -> Result<Change, ScimError> {
                    check_precondition(if_match, current.version)?;
                    let mut attrs = current.attributes.clone();
                    kind.take_relation(&mut attrs);
                    let changed = attrs.insert("active".into(), Value::Bool(false)) != Some(Value::Bool(false));
                    Ok(Change { attributes: changed.then_some(attrs), members: vec![] })
                };
                self.modify(ctx, Operation::Deactivate, kind, id, false, &Projection::default(), &decide)
                    .await
                    .map(|_| ())
            }
            // A group has no `active`: deactivating one means retiring it.
            (policy, _) => {
                known_id(kind, id)?;
                let policy = if policy == DeletePolicy::Deactivate { DeletePolicy::Retire } else { policy };
                let schema = self.schema(kind)?;
                let renderer = self.renderer(ctx);
                let rec = Recording {
                    op: Operation::Delete,
                    request_id: ctx.request_id,
                    renderer: &renderer,
                    schema: &schema,
                };
                let now = now();
                let how = Deletion {
                    policy,
                    expected_version: if_match,
                    now: &now,
                    record: &|w: &Written<'_>| rec.events(w),
                };
                if self.store.delete(ctx.tenant, kind, id, how).await? {
                    self.changed();
                    Ok(())
                } else {
                    Err(ScimError::not_found(format!("{} {id} not found", kind.name())).into())
                }
            }
        }
    }

    /// `GET /{Users|Groups}` and `POST …/.search`; with `kind` None, `POST /.search` across
    /// every resource type (Users first, then Groups, paged as one list). Paged by index
    /// (RFC 7644 §3.4.2.4), or by cursor (RFC 9865) when the query has `cursor`.
    /// A resource with capped related values (see `INLINE_RELATIONS`) is streamed in its
    /// place in the list.
    pub async fn list(&self, ctx: &Ctx<'_>, kind: Option<Kind>, query: &Query) -> EngineResult<Body> {
        let filter = match query.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(filter::parse_filter(text, self.settings.filter_limits)?),
        };
        let order = SortOrder::parse(query.sort_order.as_deref())?;
        let kinds: Vec<Kind> = match kind {
            Some(k) => vec![k],
            None => self.kinds.clone(),
        };
        let sort_text = query.sort_by.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let mut paging = Paging::plan(&self.settings, ctx, &kinds, query, filter.as_ref(), sort_text, order)?;
        let renderer = self.renderer(ctx);
        let mut total = 0u64;
        let mut resources = Vec::new();
        let mut streamed = Vec::new();
        let mut texts = answer::Held::default();
        let mut first_error = None;
        let mut answered = false;
        for (index, kind) in kinds.iter().copied().enumerate() {
            let schema = self.schema(kind)?;
            if let Some(f) = &filter
                && let Err(e) = filter::check(f, &schema)
            {
                // Across types, a filter naming another type's attribute matches nothing here.
                first_error.get_or_insert(e);
                continue;
            }
            let sort = match sort_text {
                None => None,
                Some(text) => sort_key(text, order, &schema, kinds.len() > 1)?,
            };
            answered = true;
            let projection =
                Projection::parse(query.attributes.as_deref(), query.excluded_attributes.as_deref(), &schema)?;
            let (offset, after, count) = paging.window(index, total, resources.len() as u64);
            let q = ListQuery {
                schema: &schema,
                filter: filter.as_ref(),
                sort,
                offset,
                count,
                with_relations: count > 0 && Self::wants_relation(kind, &schema, &projection),
                after,
            };
            // The long way: a resource as a map, rendered, or streamed when its related
            // values were capped.
            let mut render = |mut r: StoredResource, resources: &mut Vec<Value>| {
                if !answer::is_capped(kind, &r) {
                    resources.push(Value::Object(renderer.render(kind, &schema, r, &projection)));
                    return;
                }
                // Stands in for it, should it be deleted before its turn comes.
                kind.take_relation(&mut r.attributes);
                let id = r.id.clone();
                let fallback = json_text(&renderer.render(kind, &schema, r, &projection));
                let mark = format!("\u{0}scimd:resource:{}\u{0}", streamed.len());
                resources.push(Value::String(mark.clone()));
                streamed.push(Placeheld { mark, kind, id, projection: projection.clone(), fallback });
            };
            if !self.adapter.reads_as_stored() {
                let mut result = self.store.list(ctx.tenant, kind, &q).await?;
                total += result.total;
                paging.served(index, &q, &mut result)?;
                result.resources.into_iter().for_each(|r| render(r, &mut resources));
                continue;
            }
            let mut result = self.store.list_text(ctx.tenant, kind, &q).await?;
            total += result.total;
            paging.served(index, &q, &mut result)?;
            for r in result.resources {
                match renderer.render_stored(kind, &schema, &r, &projection) {
                    Some(text) => resources.push(texts.hold(text)),
                    None => render(r.parsed(kind)?, &mut resources),
                }
            }
        }
        if !answered {
            return Err(first_error
                .map(EngineError::from)
                .unwrap_or_else(|| EngineError::Internal("no resource type".into())));
        }
        let list = paging.response(total, resources)?;
        match (texts.is_empty(), streamed.is_empty()) {
            (true, true) => Ok(Body::Json(list)),
            (false, true) => Ok(Body::Text(texts.place(&json_text(&list)))),
            (true, false) => Ok(renderer.streamed_list(json_text(&list), streamed)),
            (false, false) => Ok(renderer.streamed_list(texts.place(&json_text(&list)), streamed)),
        }
    }
}

fn missing(kind: Kind, id: &str) -> EngineError {
    ScimError::not_found(format!("{} {id} not found", kind.name())).into()
}

/// Ids are made by stores (UUIDs, or an application's keys): text with a control character
/// (NUL among them, which PostgreSQL cannot even compare) names no resource, and is
/// answered 404 without asking the store.
fn known_id(kind: Kind, id: &str) -> EngineResult<()> {
    if id.is_empty() || id.chars().any(char::is_control) {
        return Err(ScimError::not_found(format!("{} {id:?} not found", kind.name())).into());
    }
    Ok(())
}

/// A group member reference from a coerced `members` value.
fn member_refs(values: &[Value]) -> Vec<MemberRef> {
    RelationChange::values_of(values).into_iter().map(|v| MemberRef { value: v.to_string() }).collect()
}

/// Turns a proto-level relation change into a store-level one; a removal by an arbitrary
/// filter is resolved against the loaded members.
fn member_change(
    change: &RelationChange,
    def: Option<&scimd_proto::schema::AttributeDef>,
    loaded: Option<&Value>,
) -> MemberChange {
    match change {
        RelationChange::Add(v) => MemberChange::Add(member_refs(v)),
        RelationChange::Replace(v) => MemberChange::Replace(member_refs(v)),
        RelationChange::Remove(v) => MemberChange::Remove(v.clone()),
        RelationChange::RemoveAll => MemberChange::RemoveAll,
        RelationChange::RemoveWhere(f) => match f.eq_strings("value") {
            Some(values) => MemberChange::Remove(values.into_iter().map(str::to_string).collect()),
            None => MemberChange::Remove(matching_members(f, def, loaded)),
        },
    }
}

fn matching_members(
    f: &Filter,
    def: Option<&scimd_proto::schema::AttributeDef>,
    loaded: Option<&Value>,
) -> Vec<String> {
    let (Some(def), Some(Value::Array(items))) = (def, loaded) else {
        return vec![];
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .filter(|m| filter::matches_element(f, def, m))
        .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn check_precondition(if_match: Option<i64>, current: i64) -> Result<(), ScimError> {
    match if_match {
        Some(v) if v != current => Err(ScimError::precondition_failed(format!(
            "If-Match names version {v}; the resource is at version {current}"
        ))),
        _ => Ok(()),
    }
}

/// writeOnly attributes (`password`) are accepted but never stored by the engine.
fn strip_write_only(attrs: &mut Map<String, Value>, schema: &ResourceSchema<'_>) {
    for def in schema.core.attributes.iter().filter(|d| d.mutability == Mutability::WriteOnly) {
        attrs.remove(&def.name);
    }
}

/// RFC 7643 §2.2: an immutable attribute, once set, keeps its value on replace.
fn check_immutable(
    current: &Map<String, Value>,
    next: &Map<String, Value>,
    schema: &ResourceSchema<'_>,
) -> Result<(), ScimError> {
    for def in schema.core.attributes.iter().filter(|d| d.mutability == Mutability::Immutable) {
        if let (Some(old), Some(new)) = (current.get(&def.name), next.get(&def.name))
            && old != new
        {
            return Err(ScimError::mutability(format!("'{}' is immutable", def.name)));
        }
    }
    Ok(())
}

/// Resolves `sortBy` to its canonical path (RFC 7644 §3.4.2.3).
fn sort_key(
    text: &str,
    order: SortOrder,
    schema: &ResourceSchema<'_>,
    lenient: bool,
) -> Result<Option<SortKey>, ScimError> {
    let path = AttrPath::parse(text).map_err(ScimError::invalid_value)?;
    match schema.resolve_attribute(&path) {
        Ok(r) => Ok(Some(SortKey { path: r.canonical(), order })),
        Err(_) if lenient => Ok(None),
        Err(e) => Err(ScimError::invalid_value(format!("cannot sort by '{text}': {}", e.detail))),
    }
}
