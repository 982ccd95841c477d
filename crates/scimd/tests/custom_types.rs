//! Custom resource types and schema extensions from schema files, over real HTTP on both
//! databases: a `Widget` type whose schema has an attribute of every type and
//! characteristic, the Okta Identity Governance example's types and User extension, and
//! refusals of schema changes that would orphan stored data.
//! The PostgreSQL tests need `SCIMD_TEST_POSTGRES_URL`; without it they are reported as
//! ignored.

mod common;

use common::{Db, TestServer, urlencode};
use reqwest::Method;
use scimd_core::tenants::{FoundData, Tenant, TenantState};
use scimd_core::tokens::{Scope, TokenRequest, create_token};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const WIDGET: &str = "urn:example:scim:schemas:core:1.0:Widget";
const PLANT: &str = "urn:example:scim:schemas:extension:plant:1.0:Widget";
const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn widget_schema() -> Value {
    json!([
        {"id": WIDGET, "name": "Widget", "attributes": [
            {"name": "displayName", "type": "string", "required": true},
            {"name": "serial", "type": "string", "caseExact": true, "uniqueness": "server", "mutability": "immutable"},
            {"name": "sku", "type": "string", "uniqueness": "server"},
            {"name": "size", "type": "integer"},
            {"name": "price", "type": "decimal"},
            {"name": "enabled", "type": "boolean"},
            {"name": "launched", "type": "dateTime"},
            {"name": "secret", "type": "string", "mutability": "writeOnly", "returned": "never"},
            {"name": "notes", "type": "string", "returned": "request"},
            {"name": "code", "type": "string", "returned": "always"},
            {"name": "computed", "type": "string", "mutability": "readOnly"},
            {"name": "tags", "type": "string", "multiValued": true},
            {"name": "parts", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "value", "type": "string"}, {"name": "count", "type": "integer"}]},
            {"name": "owner", "type": "complex", "subAttributes": [
                {"name": "value", "type": "string", "required": true}, {"name": "display", "type": "string"}]}
        ]},
        {"id": PLANT, "name": "Plant", "attributes": [{"name": "plant", "type": "string"}]},
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "Widget", "name": "Widget",
         "endpoint": "/Widgets", "schema": WIDGET, "schemaExtensions": [{"schema": PLANT, "required": false}]}
    ])
}

/// The example configuration's schema directory.
fn okta_iga() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/okta-iga")
}

/// Schema files in a directory of their own; `widget` is written there.
fn schema_dir(widget: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("widget.json"), widget.to_string()).unwrap();
    dir
}

async fn server(db: Db, test: &str, files: &tempfile::TempDir) -> TestServer {
    let dir = files.path().to_path_buf();
    let iga = okta_iga().join("schemas/*.json").display().to_string();
    TestServer::on_db(db, test, move |c| {
        c.schemas = vec!["widget.json".into(), iga];
        c.config_dir = dir;
    })
    .await
}

fn widget(name: &str, serial: &str, sku: &str, size: i64) -> Value {
    json!({"schemas": [WIDGET], "displayName": name, "serial": serial, "sku": sku, "size": size})
}

async fn create(s: &TestServer, body: Value) -> String {
    let r = s.post("/Widgets", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn ids(s: &TestServer, query: &str) -> Vec<String> {
    let r = s.get(&format!("/Widgets?{query}")).await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.body["Resources"]
        .as_array()
        .map_or_else(Vec::new, |a| a.iter().map(|w| w["id"].as_str().unwrap().to_string()).collect())
}

fn q(filter: &str) -> String {
    format!("filter={}", urlencode(filter))
}

async fn full_crud(db: Db) {
    let files = schema_dir(&widget_schema());
    let s = server(db, "custom_crud", &files).await;

    // Discovery: published like the built-in types.
    let rt = s.get("/ResourceTypes/Widget").await;
    assert_eq!(
        (rt.body["endpoint"].as_str(), rt.body["schema"].as_str()),
        (Some("/Widgets"), Some(WIDGET)),
        "{}",
        rt.body
    );
    assert_eq!(rt.body["schemaExtensions"], json!([{"schema": PLANT, "required": false}]));
    let schema = s.get(&format!("/Schemas/{WIDGET}")).await;
    assert_eq!(schema.body["attributes"][1]["uniqueness"], "server", "{}", schema.body);
    let types = s.get("/ResourceTypes").await;
    let names: Vec<&str> =
        types.body["Resources"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["User", "Group", "Widget", "Role", "Entitlement"],
        "built-in types first, then as the files give them"
    );

    // Create: characteristics as the schema says.
    let r = s
        .post(
            "/Widgets",
            json!({"schemas": [WIDGET, PLANT], "displayName": "Widget One", "serial": "AB-1", "sku": "sku-1", "size": 3,
                   "price": 9.5, "enabled": "True", "launched": "2026-03-01T10:00:00Z", "secret": "s3cret",
                   "notes": "handle with care", "code": "W1", "computed": "ignored", "tags": ["red", "blue"],
                   "parts": [{"value": "bolt", "count": 2}], "owner": {"value": "ops"},
                   PLANT: {"plant": "Leeds"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let one = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"].to_str().unwrap(), format!("{}/Widgets/{one}", s.base));
    assert_eq!(r.body["meta"]["resourceType"], "Widget");
    assert_eq!(r.body["meta"]["location"], format!("{}/Widgets/{one}", s.base));
    assert_eq!(r.body["enabled"], true, "booleans sent as strings are kept as booleans");
    assert!(r.body.get("secret").is_none() && r.body.get("notes").is_none(), "never / request: {}", r.body);
    assert!(r.body.get("computed").is_none(), "readOnly values sent are ignored: {}", r.body);
    assert_eq!(r.body[PLANT]["plant"], "Leeds");
    assert_eq!(r.body["schemas"], json!([WIDGET, PLANT]));
    let two = create(&s, widget("widget two", "ab-1", "sku-2", 7)).await;
    let three = create(
        &s,
        json!({"schemas": [WIDGET], "displayName": "Gadget", "size": 12, "enabled": false,
        "launched": "2025-01-01T00:00:00Z", "parts": [{"value": "nut", "count": 5}]}),
    )
    .await;

    // Refusals.
    s.post("/Widgets", json!({"schemas": [WIDGET], "sku": "x"})).await.assert_error(400, Some("invalidValue"));
    s.post("/Widgets", json!({"schemas": [WIDGET], "displayName": "d", "size": "big"}))
        .await
        .assert_error(400, Some("invalidValue"));
    s.post("/Widgets", json!({"schemas": [WIDGET], "displayName": "d", "owner": {"display": "no value"}}))
        .await
        .assert_error(400, Some("invalidValue"));
    s.post("/Widgets", widget("dup", "other", "SKU-1", 1)).await.assert_error(409, Some("uniqueness"));
    s.post("/Widgets", widget("dup", "AB-1", "other", 1)).await.assert_error(409, Some("uniqueness"));

    // Read with projections.
    let r = s.get(&format!("/Widgets/{one}?attributes=notes")).await;
    assert_eq!(r.body["notes"], "handle with care", "{}", r.body);
    assert_eq!(r.body["code"], "W1", "returned: always comes with any projection");
    assert!(r.body.get("size").is_none(), "{}", r.body);
    let r = s.get(&format!("/Widgets/{one}?excludedAttributes=code,size")).await;
    assert_eq!(r.body["code"], "W1");
    assert!(r.body.get("size").is_none());

    // Filters, pushed down to SQL, with each attribute's type and caseExact.
    assert_eq!(ids(&s, &q(r#"displayName eq "WIDGET ONE""#)).await, [one.as_str()], "displayName is not case-exact");
    assert_eq!(ids(&s, &q(r#"serial eq "ab-1""#)).await, [two.as_str()], "serial is case-exact");
    assert_eq!(ids(&s, &q("size gt 5")).await, [two.as_str(), three.as_str()]);
    assert_eq!(ids(&s, &q("price ge 9")).await, [one.as_str()]);
    assert_eq!(ids(&s, &q("enabled eq false")).await, [three.as_str()]);
    assert_eq!(ids(&s, &q(r#"launched gt "2026-01-01T00:00:00Z""#)).await, [one.as_str()]);
    assert_eq!(ids(&s, &q("parts[count ge 3]")).await, [three.as_str()]);
    assert_eq!(ids(&s, &q(r#"tags eq "BLUE""#)).await, [one.as_str()]);
    assert_eq!(ids(&s, &q(&format!(r#"{PLANT}:plant sw "lee""#))).await, [one.as_str()]);
    assert_eq!(ids(&s, &q("notes pr")).await, [one.as_str()]);
    assert_eq!(ids(&s, &q(r#"not (displayName co "widget")"#)).await, [three.as_str()]);
    s.get(&format!("/Widgets?{}", q(r#"nope eq "x""#))).await.assert_error(400, Some("invalidFilter"));
    // Sorted and paged.
    assert_eq!(ids(&s, "sortBy=size&sortOrder=descending").await, [three.as_str(), two.as_str(), one.as_str()]);
    assert_eq!(
        ids(&s, "sortBy=displayName&startIndex=2&count=1").await,
        [one.as_str()],
        "Gadget, Widget One, widget two"
    );
    let page = s.get("/Widgets?cursor&count=2").await;
    assert_eq!(page.body["Resources"].as_array().unwrap().len(), 2, "{}", page.body);
    let next = page.body["nextCursor"].as_str().unwrap();
    assert_eq!(ids(&s, &format!("cursor={next}&count=2")).await, [three.as_str()]);
    // Across types: the root search lists widgets after users and groups.
    let r = s.post("/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "displayName sw \"Gad\""})).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["meta"]["resourceType"], "Widget");

    // Replace: immutable attributes keep their value.
    let mut put = widget("Widget One", "AB-1", "sku-1", 4);
    put["id"] = json!(one);
    let r = s.call(Method::PUT, &format!("/Widgets/{one}"), Some(put.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["size"].as_i64(), r.body["meta"]["version"].as_str()), (Some(4), Some("W/\"2\"")));
    assert!(r.body.get(PLANT).is_none() && r.body.get("tags").is_none(), "a PUT replaces: {}", r.body);
    put["serial"] = json!("AB-2");
    s.call(Method::PUT, &format!("/Widgets/{one}"), Some(put)).await.assert_error(400, Some("mutability"));

    // Patch: values, filtered multi-valued complex values, extension attributes.
    let r = s
        .patch(
            &format!("/Widgets/{three}"),
            json!([{"op": "add", "path": "parts", "value": [{"value": "washer", "count": 1}]},
                   {"op": "replace", "path": "parts[value eq \"nut\"].count", "value": 6},
                   {"op": "add", "path": format!("{PLANT}:plant"), "value": "York"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["parts"], json!([{"value": "nut", "count": 6}, {"value": "washer", "count": 1}]));
    assert_eq!(r.body[PLANT]["plant"], "York");
    // A taken value refuses the whole PATCH.
    let r = s
        .patch(
            &format!("/Widgets/{three}"),
            json!([{"op": "add", "path": "tags", "value": ["new"]}, {"op": "replace", "path": "sku", "value": "SKU-1"}]),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    assert!(r.body["detail"].as_str().unwrap().contains("sku"), "{}", r.body);
    let r = s.get(&format!("/Widgets/{three}")).await;
    assert!(r.body.get("tags").is_none() && r.body.get("sku").is_none(), "nothing of it was written: {}", r.body);
    assert_eq!(ids(&s, &q(r#"sku eq "SKU-1""#)).await, [one.as_str()]);
    let r = s.patch(&format!("/Widgets/{three}"), json!([{"op": "replace", "path": "sku", "value": "sku-3"}])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Immutable: set once (the gadget had none), then kept.
    let r = s.patch(&format!("/Widgets/{three}"), json!([{"op": "add", "path": "serial", "value": "Z"}])).await;
    assert_eq!(r.body["serial"], "Z", "{}", r.body);
    s.patch(&format!("/Widgets/{two}"), json!([{"op": "replace", "path": "serial", "value": "Z2"}]))
        .await
        .assert_error(400, Some("mutability"));
    let r = s.patch(&format!("/Widgets/{three}"), json!([{"op": "remove", "path": "parts[value eq \"nut\"]"}])).await;
    assert_eq!(r.body["parts"], json!([{"value": "washer", "count": 1}]), "{}", r.body);

    // Delete: gone, and its unique values are free again.
    assert_eq!(s.delete(&format!("/Widgets/{one}")).await.status, 204);
    s.get(&format!("/Widgets/{one}")).await.assert_error(404, None);
    s.delete(&format!("/Widgets/{one}")).await.assert_error(404, None);
    create(&s, widget("again", "AB-1", "SKU-1", 1)).await;
    // An id of another type is no widget, and a widget is no user.
    s.get(&format!("/Widgets/{}", s.user("alice").await)).await.assert_error(404, None);
    s.get(&format!("/Users/{two}")).await.assert_error(404, None);

    // Bulk works on the custom endpoint.
    let r = s
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                {"method": "POST", "path": "/Widgets", "bulkId": "w", "data": widget("bulk", "B", "sku-b", 1)},
                {"method": "PATCH", "path": "/Widgets/bulkId:w", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "size", "value": 2}]}}]}),
        )
        .await;
    let statuses: Vec<&str> =
        r.body["Operations"].as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "200"], "{}", r.body);
    assert_eq!(ids(&s, &q(r#"sku eq "sku-b" and size eq 2"#)).await.len(), 1);
}

#[tokio::test]
async fn full_crud_sqlite() {
    full_crud(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn full_crud_postgres() {
    full_crud(Db::Postgres).await;
}

/// Concurrent creates with one unique value: exactly one wins; and each tenant has its own
/// values.
async fn unique_values_under_concurrency_and_per_tenant(db: Db) {
    let files = schema_dir(&widget_schema());
    let s = server(db, "custom_unique", &files).await;
    let tries = (0..16).map(|i| s.post("/Widgets", widget(&format!("w{i}"), &format!("s{i}"), "same", i)));
    let statuses: Vec<u16> = futures_util::future::join_all(tries).await.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");

    let tenant = Tenant {
        slug: "other".into(),
        name: "Other".into(),
        state: TenantState::Active,
        settings: Default::default(),
        created: "2026-01-01T00:00:00Z".into(),
        last_request: None,
    };
    s.backend.tenants.create_tenant(&tenant, FoundData::Erase).await.unwrap();
    let req = TokenRequest { scope: Scope::Scim, tenant: "other", name: "t", secret: None, expires: None };
    let other = create_token(s.backend.tokens.as_ref(), req, "2026-01-01T00:00:00Z").await.unwrap().secret;
    let url = format!("{}/t/other/scim/v2/Widgets", s.root);
    let r = s.at(Method::POST, &url, &other, Some(widget("w", "s0", "same", 1))).await;
    assert_eq!(r.status, 201, "another tenant's values do not collide: {}", r.body);
    let r = s.at(Method::GET, &url, &other, None).await;
    assert_eq!(r.body["totalResults"], 1, "and it sees only its own: {}", r.body);
    assert_eq!(s.get("/Widgets").await.body["totalResults"], 1);
}

#[tokio::test]
async fn unique_values_under_concurrency_and_per_tenant_sqlite() {
    unique_values_under_concurrency_and_per_tenant(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn unique_values_under_concurrency_and_per_tenant_postgres() {
    unique_values_under_concurrency_and_per_tenant(Db::Postgres).await;
}

/// The example's User extension: a unique badge number and a cost centre, filtered in SQL.
async fn user_extension(db: Db) {
    let files = schema_dir(&widget_schema());
    let s = server(db, "custom_user_ext", &files).await;
    let user = |name: &str, badge: i64| json!({"schemas": [USER, ACME], "userName": name, ACME: {"badgeNumber": badge, "costCenter": "CC-7"}});
    let r = s.post("/Users", user("ann", 1001)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ann = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body[ACME]["badgeNumber"], 1001);
    let r = s.post("/Users", user("bob", 1001)).await;
    r.assert_error(409, Some("uniqueness"));
    assert!(r.body["detail"].as_str().unwrap().contains("badgeNumber"), "{}", r.body);
    let bob = {
        let r = s.post("/Users", user("bob", 1002)).await;
        r.body["id"].as_str().unwrap().to_string()
    };
    let found = s.get(&format!("/Users?{}", q(&format!("{ACME}:badgeNumber eq 1002")))).await;
    assert_eq!(found.body["Resources"][0]["id"], json!(bob), "{}", found.body);
    // The number follows the user: freed by a change, then by a delete.
    let r = s
        .patch(
            &format!("/Users/{ann}"),
            json!([{"op": "replace", "path": format!("{ACME}:badgeNumber"), "value": 1003}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let carl = s.post("/Users", user("carl", 1001)).await;
    assert_eq!(carl.status, 201, "{}", carl.body);
    assert_eq!(s.delete(&format!("/Users/{ann}")).await.status, 204);
    assert_eq!(s.post("/Users", user("dora", 1003)).await.status, 201);
}

#[tokio::test]
async fn user_extension_sqlite() {
    user_extension(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn user_extension_postgres() {
    user_extension(Db::Postgres).await;
}

/// A start whose schemas drop an attribute stored resources hold is refused, naming it;
/// forced, it starts; dropping one nobody holds needs no force.
async fn orphaning_changes(db: Db) {
    let files = schema_dir(&widget_schema());
    let s = server(db, "custom_orphans", &files).await;
    create(&s, widget("w", "s", "k", 5)).await;
    let (mut config, _data) = s.stop().await;
    let without = |names: &[&str]| {
        let mut w = widget_schema();
        w[0]["attributes"].as_array_mut().unwrap().retain(|a| !names.contains(&a["name"].as_str().unwrap()));
        std::fs::write(files.path().join("widget.json"), w.to_string()).unwrap();
    };
    let open = |config: scimd::config::Config| async move { scimd::server::open_store(&config).await.map(|_| ()) };

    without(&["price"]);
    open(config.clone()).await.expect("no widget has a price");
    without(&["price", "size"]);
    let e = format!("{:#}", open(config.clone()).await.unwrap_err());
    assert!(e.contains("Widget: attribute 'size' was removed") && e.contains("force_schema_change"), "{e}");
    let mut retyped = widget_schema();
    retyped[0]["attributes"][3]["type"] = json!("string");
    std::fs::write(files.path().join("widget.json"), retyped.to_string()).unwrap();
    let e = format!("{:#}", open(config.clone()).await.unwrap_err());
    assert!(e.contains("'size': its type changed"), "{e}");
    std::fs::write(files.path().join("widget.json"), json!([]).to_string()).unwrap();
    let e = format!("{:#}", open(config.clone()).await.unwrap_err());
    assert!(e.contains("Widget: the resource type was removed"), "{e}");
    config.force_schema_change = true;
    without(&["size"]);
    open(config.clone()).await.expect("forced");
    config.force_schema_change = false;
    open(config).await.expect("the forced state is the new state");
}

#[tokio::test]
async fn orphaning_changes_sqlite() {
    orphaning_changes(Db::Sqlite).await;
}

#[tokio::test]
#[cfg_attr(not(scimd_postgres), ignore = "needs SCIMD_TEST_POSTGRES_URL")]
async fn orphaning_changes_postgres() {
    orphaning_changes(Db::Postgres).await;
}

#[tokio::test]
async fn an_invalid_schema_file_stops_the_start_naming_file_attribute_and_problem() {
    let mut bad = widget_schema();
    bad[0]["attributes"][12]["subAttributes"][1]["type"] = json!("number");
    let files = schema_dir(&bad);
    let dir = files.path().to_path_buf();
    let config = scimd::config::Config {
        schemas: vec!["*.json".into()],
        config_dir: dir,
        database_url: format!("sqlite://{}", files.path().join("db").display()),
        ..Default::default()
    };
    let e = format!("{:#}", scimd::server::open_store(&config).await.err().expect("refused"));
    assert!(e.contains("widget.json") && e.contains("'parts.count'") && e.contains("number"), "{e}");
}

/// The metrics and the activity log name a custom type's requests by the type.
#[tokio::test]
async fn metrics_and_activity_name_custom_types() {
    let files = schema_dir(&widget_schema());
    let dir = files.path().to_path_buf();
    let s = TestServer::with(move |c| {
        c.schemas = vec!["widget.json".into()];
        c.config_dir = dir;
        c.activity_log = true;
    })
    .await;
    let id = create(&s, widget("w", "s", "k", 1)).await;
    assert_eq!(s.get(&format!("/Widgets/{id}")).await.status, 200);
    assert_eq!(s.get("/Widgets/nope").await.status, 404);
    let req = TokenRequest { scope: Scope::Admin, tenant: "", name: "ops", secret: None, expires: None };
    let admin = create_token(s.backend.tokens.as_ref(), req, "2026-01-01T00:00:00.000000Z").await.unwrap().secret;
    let text = s.at(Method::GET, &format!("{}/metrics", s.root), &admin, None).await.body.as_str().unwrap().to_string();
    for (series, n) in [
        (r#"scimd_requests_total{tenant="default",resource="Widget",method="POST",status="2xx"} "#, "1"),
        (r#"scimd_requests_total{tenant="default",resource="Widget",method="GET",status="2xx"} "#, "1"),
        (r#"scimd_requests_total{tenant="default",resource="Widget",method="GET",status="4xx"} "#, "1"),
    ] {
        assert!(text.lines().any(|l| l.strip_prefix(series) == Some(n)), "{series}{n} in\n{text}");
    }
    let url = format!("{}/admin/v1/tenants/default/activity?resource_id={id}", s.root);
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = s.at(Method::GET, &url, &admin, None).await.body;
        if seen["activity"].as_array().is_some_and(|a| a.len() >= 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let records = seen["activity"].as_array().expect("activity");
    assert_eq!(records.len(), 2, "the create and the read: {seen}");
    assert!(records.iter().all(|r| r["resource_type"] == "Widget"), "{seen}");
}
