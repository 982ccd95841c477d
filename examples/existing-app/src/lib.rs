//! An application that had users and groups long before SCIM: a B2B application whose
//! customers are organisations, each with its users and groups in the application's own
//! tables, and its own `/users` endpoint. SCIM is added with a mapping onto those tables,
//! mounted at `/scim/v2`: each organisation's identity provider sends the organisation's
//! token and reads and writes that organisation's rows only. The rows stay the
//! application's.
#![doc = include_str!("../../../docs/embedding.md")]

pub mod access;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::routing::get;
use scimd_axum::auth::{AuthError, Authenticator, Principal, bearer};
use scimd_axum::{ScimConfig, ScimService};
use scimd_core::events::EventLog;
use scimd_core::tokens::{hash_secret, hashes_match};
use scimd_core::{Adapter, Engine, Kind, Settings, Store};
use scimd_proto::Registry;
use scimd_sql::{
    MappedStore, Mapping, MembershipMap, PgPools, PostgresSettings, SqlitePools, SqliteSettings, TableMap, Tenancy,
};
use serde_json::{Map, Value, json};
use sqlx::Row;
use std::sync::Arc;

/// The extension the application publishes for its own attribute.
pub const APP_EXTENSION: &str = "urn:example:params:scim:schemas:extension:existing-app:1.0:User";

/// How SCIM maps onto the application's tables: each organisation is a tenant.
pub fn mapping() -> Mapping {
    Mapping {
        users: TableMap::new("users", "id")
            .map("userName", "email")
            .map("name.givenName", "first_name")
            .map("name.familyName", "last_name")
            .map("active", "is_active")
            // `is_active` is NOT NULL: a user provisioned without `active` is active.
            .default_value("active", json!(true))
            // Users the application created show their email as a SCIM email too.
            .initial_email("email"),
        groups: TableMap::new("groups", "id").map("displayName", "name"),
        members: MembershipMap::new("group_members", "group_id", "user_id"),
        // Every users and groups row carries its organisation; the authenticator names the
        // organisation of each request (`OrganizationTokens`).
        tenancy: Tenancy::Column("organization_id".into()),
    }
}

/// The schemas: RFC 7643's, plus the application's own extension. Its `slackHandle` has no
/// column in the application's tables, so scimd keeps it in the side table.
pub fn registry() -> Registry {
    let mut registry = Registry::standard();
    registry
        .add_schema_json(&format!(
            r#"{{"id": "{APP_EXTENSION}", "name": "ExistingAppUser", "description": "What this application adds",
                "attributes": [{{"name": "slackHandle", "type": "string", "description": "The user's chat handle"}}]}}"#
        ))
        .expect("the extension schema is valid");
    registry.add_extension("User", APP_EXTENSION, false).expect("User exists");
    registry
}

/// An adapter that adds a computed attribute: the user's page in the application, as
/// `urn:example:…:existing-app:1.0:User:profilePage` (declare it in the schema, read-only,
/// to publish it). Used by the tests and shown in the guide.
pub struct ProfileLinks {
    pub base: String,
}

impl Adapter for ProfileLinks {
    fn to_scim(&self, kind: Kind, id: &str, attributes: &mut Map<String, Value>) {
        if kind == Kind::User {
            let ext = attributes.entry(APP_EXTENSION).or_insert_with(|| json!({}));
            ext["profilePage"] = json!(format!("{}/users/{id}", self.base));
        }
    }
}

/// The application's own database handle.
#[derive(Clone)]
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Connects and applies the application's own migrations (not scimd's).
    pub async fn open(url: &str) -> Result<Db> {
        if url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(url).await.context("connecting to PostgreSQL")?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Ok(Db::Postgres(pool))
        } else {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            let pool = sqlx::SqlitePool::connect_with(
                options.create_if_missing(true).foreign_keys(true).busy_timeout(std::time::Duration::from_secs(5)),
            )
            .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Ok(Db::Sqlite(pool))
        }
    }

    /// Adds an organisation whose identity provider will send `scim_token`; its id.
    pub async fn add_organization(&self, name: &str, scim_token: &str) -> Result<i64> {
        const SQL: &str =
            "INSERT INTO organizations (name, scim_token_hash) VALUES ($1, $2) RETURNING CAST(id AS BIGINT)";
        let hash = hash_secret(scim_token);
        Ok(match self {
            Db::Sqlite(p) => sqlx::query(SQL).bind(name).bind(hash).fetch_one(p).await?.get(0),
            Db::Postgres(p) => sqlx::query(SQL).bind(name).bind(hash).fetch_one(p).await?.get(0),
        })
    }

    /// Sets the token an organisation's identity provider sends.
    pub async fn set_scim_token(&self, organization: i64, scim_token: &str) -> Result<()> {
        const SQL: &str = "UPDATE organizations SET scim_token_hash = $1 WHERE id = $2";
        let hash = hash_secret(scim_token);
        match self {
            Db::Sqlite(p) => sqlx::query(SQL).bind(hash).bind(organization).execute(p).await.map(|_| ())?,
            Db::Postgres(p) => sqlx::query(SQL).bind(hash).bind(organization as i32).execute(p).await.map(|_| ())?,
        }
        Ok(())
    }

    /// The organisation whose token hashes to `hash`, if any.
    async fn organization_by_token(&self, hash: &str) -> Result<Option<(i64, String)>> {
        const SQL: &str = "SELECT CAST(id AS BIGINT), scim_token_hash FROM organizations WHERE scim_token_hash = $1";
        let row = match self {
            Db::Sqlite(p) => sqlx::query(SQL).bind(hash).fetch_optional(p).await?.map(|r| (r.get(0), r.get(1))),
            Db::Postgres(p) => sqlx::query(SQL).bind(hash).fetch_optional(p).await?.map(|r| (r.get(0), r.get(1))),
        };
        Ok(row)
    }

    async fn exec(&self, sql: &'static str) -> Result<()> {
        match self {
            Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ())?,
            Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ())?,
        }
        Ok(())
    }

    /// A few rows of the application's own, written before SCIM was ever added.
    pub async fn seed(&self) -> Result<()> {
        let count: i64 = match self {
            Db::Sqlite(p) => sqlx::query("SELECT COUNT(*) FROM users").fetch_one(p).await?.get(0),
            Db::Postgres(p) => sqlx::query("SELECT COUNT(*) FROM users").fetch_one(p).await?.get(0),
        };
        if count > 0 {
            return Ok(());
        }
        self.exec("INSERT INTO organizations (id, name) VALUES (1, 'Acme')").await?;
        self.exec(
            "INSERT INTO users (id, organization_id, email, first_name, last_name, is_active) VALUES \
             (1, 1, 'ada@app.example', 'Ada', 'Lovelace', TRUE), (2, 1, 'grace@app.example', 'Grace', 'Hopper', TRUE), \
             (3, 1, 'alan@app.example', 'Alan', 'Turing', FALSE)",
        )
        .await?;
        self.exec("INSERT INTO groups (id, organization_id, name) VALUES (1, 1, 'Founders')").await?;
        self.exec("INSERT INTO group_members (group_id, user_id) VALUES (1, 1), (1, 2)").await?;
        if let Db::Postgres(_) = self {
            // Explicit ids above: move the identity sequences past them.
            self.exec("SELECT setval(pg_get_serial_sequence('organizations', 'id'), 1)").await?;
            self.exec("SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT MAX(id) FROM users))").await?;
            self.exec("SELECT setval(pg_get_serial_sequence('groups', 'id'), (SELECT MAX(id) FROM groups))").await?;
        }
        Ok(())
    }

    /// The application's own view of its users.
    pub async fn users(&self) -> Result<Vec<Value>> {
        const SQL: &str = "SELECT u.id, u.email, u.first_name, u.last_name, u.is_active, \
             (SELECT COUNT(*) FROM group_members m WHERE m.user_id = u.id), CAST(u.organization_id AS BIGINT) \
             FROM users u ORDER BY u.id";
        let rows: Vec<Value> = match self {
            Db::Sqlite(p) => sqlx::query(SQL)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| {
                    json!({"id": r.get::<i64, _>(0), "email": r.get::<String, _>(1), "first_name": r.get::<Option<String>, _>(2),
                           "last_name": r.get::<Option<String>, _>(3), "is_active": r.get::<bool, _>(4), "groups": r.get::<i64, _>(5),
                           "organization_id": r.get::<i64, _>(6)})
                })
                .collect(),
            Db::Postgres(p) => sqlx::query(SQL)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| {
                    json!({"id": r.get::<i32, _>(0), "email": r.get::<String, _>(1), "first_name": r.get::<Option<String>, _>(2),
                           "last_name": r.get::<Option<String>, _>(3), "is_active": r.get::<bool, _>(4), "groups": r.get::<i64, _>(5),
                           "organization_id": r.get::<i64, _>(6)})
                })
                .collect(),
        };
        Ok(rows)
    }
}

/// The SCIM store over the application's tables (its own connections to the same database),
/// and the log of the changes it made.
pub async fn scim_store(url: &str, registry: &Registry) -> Result<(Arc<dyn Store>, Arc<dyn EventLog>)> {
    Ok(if url.starts_with("postgres") {
        let pools = PgPools::connect(url, &PostgresSettings::default()).await?;
        let store = Arc::new(MappedStore::new(pools, mapping(), registry).await?);
        (store.clone(), store)
    } else {
        let pools = SqlitePools::connect(url, &SqliteSettings::default()).await?;
        let store = Arc::new(MappedStore::new(pools, mapping(), registry).await?);
        (store.clone(), store)
    })
}

/// SCIM requests authenticated by the token of an organisation, stored hashed in the
/// application's own `organizations` table: the organisation is the request's tenant.
pub struct OrganizationTokens {
    pub db: Db,
}

#[async_trait::async_trait]
impl Authenticator for OrganizationTokens {
    async fn authenticate(&self, parts: &Parts) -> Result<Principal, AuthError> {
        let hash = hash_secret(bearer(parts)?);
        match self.db.organization_by_token(&hash).await {
            // Found by hash; compared again in constant time.
            Ok(Some((id, stored))) if hashes_match(&stored, &hash) => {
                Ok(Principal::new(id.to_string(), format!("organization:{id}")))
            }
            Ok(_) => Err(AuthError::Invalid),
            Err(e) => Err(AuthError::Unavailable(e.to_string())),
        }
    }
}

/// The whole application: its own routes, and SCIM at `/scim/v2`. `scim_token` is what the
/// identity provider of the first organisation (Acme) sends.
pub async fn app(database_url: &str, scim_token: &str) -> Result<(Router, Db)> {
    let db = Db::open(database_url).await?;
    db.seed().await?;
    db.set_scim_token(1, scim_token).await?;
    let registry = registry();
    let (store, log) = scim_store(database_url, &registry).await?;
    let engine = Engine::new(Arc::new(registry), store, Settings::default());
    // Acme's deactivated and deleted users lose their access as soon as the change commits.
    access::follow(db.clone(), log, engine.changes(), 1);
    let auth = OrganizationTokens { db: db.clone() };
    let scim = ScimService::new(Arc::new(engine), Arc::new(auth), ScimConfig::default());
    let router = Router::new()
        .route("/users", get(list_users))
        .route("/access-revocations", get(list_revocations))
        .with_state(db.clone())
        .nest("/scim/v2", scim.router());
    Ok((router, db))
}

async fn list_revocations(State(db): State<Db>) -> Result<axum::Json<Vec<Value>>, (axum::http::StatusCode, String)> {
    db.revocations().await.map(axum::Json).map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn list_users(State(db): State<Db>) -> Result<axum::Json<Vec<Value>>, (axum::http::StatusCode, String)> {
    db.users().await.map(axum::Json).map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
