//! The stores the store tests run against, each on a fresh database: scimd's own tables on
//! SQLite and PostgreSQL, and the mapped mode over an application's tables on each, with
//! one tenant or with a tenant column.
#![allow(dead_code)]

use scimd_core::events::EventLog;
use scimd_core::store::Store;
use scimd_proto::Registry;
use scimd_sql::{
    MappedStore, Mapping, MembershipMap, PgPools, PostgresSettings, PostgresStore, SqlitePools, SqliteSettings,
    SqliteStore, TableMap, Tenancy,
};
use serde_json::json;
use std::sync::Arc;

pub enum Under {
    Sqlite(Arc<SqliteStore>, tempfile::TempDir),
    /// The store, the server URL, the schema.
    Postgres(Arc<PostgresStore>, String, String),
    /// The store, its directory, whether its tables carry a tenant column.
    MappedSqlite(Arc<MappedStore<SqlitePools>>, tempfile::TempDir, bool),
    MappedPostgres(Arc<MappedStore<PgPools>>, String, String, bool),
}

/// What a test sees of a store.
pub struct Env<'a> {
    pub store: &'a dyn Store,
    /// The same store's event log.
    pub log: &'a dyn EventLog,
    /// Over an application's tables.
    pub mapped: bool,
    /// Holds several tenants (the mapped mode without a tenant column serves one).
    pub tenants: bool,
    /// Groups can be members of groups (the mapped mode's membership table holds users).
    pub nested_groups: bool,
    /// Members are listed in the order they were added (the mapped mode lists them by key:
    /// an application's membership table keeps no order).
    pub insertion_order: bool,
    under: &'a Under,
}

impl Under {
    /// The store, to share (an engine holds it).
    pub fn shared(&self) -> Arc<dyn Store> {
        match self {
            Under::Sqlite(s, _) => s.clone(),
            Under::Postgres(s, _, _) => s.clone(),
            Under::MappedSqlite(s, _, _) => s.clone(),
            Under::MappedPostgres(s, _, _, _) => s.clone(),
        }
    }

    pub fn env(&self) -> Env<'_> {
        let (store, log, mapped, tenants): (&dyn Store, &dyn EventLog, bool, bool) = match self {
            Under::Sqlite(s, _) => (&**s, &**s, false, true),
            Under::Postgres(s, _, _) => (&**s, &**s, false, true),
            Under::MappedSqlite(s, _, column) => (&**s, &**s, true, *column),
            Under::MappedPostgres(s, _, _, column) => (&**s, &**s, true, *column),
        };
        Env { store, log, mapped, tenants, nested_groups: !mapped, insertion_order: !mapped, under: self }
    }

    pub async fn finish(self) {
        let (url, schema) = match self {
            Under::Postgres(store, url, schema) => {
                store.close().await;
                (url, schema)
            }
            Under::MappedPostgres(store, url, schema, _) => {
                drop(store);
                (url, schema)
            }
            _ => return,
        };
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&pool).await.unwrap();
    }
}

impl Env<'_> {
    /// In the mapped mode, adds users the application wrote itself (SCIM never touched
    /// them): they are part of what SCIM reads and filters. Elsewhere, nothing.
    pub async fn application_rows(&self) {
        const ROWS: &str = "INSERT INTO users (email, first_name, last_name, is_active) VALUES \
            ('app-a@x', 'a', 'É', TRUE), ('App-AB@x', NULL, 'ab', FALSE), ('é-app@x', 'É', NULL, TRUE), \
            ('b@app', 'b', 'b', FALSE)";
        match self.under {
            Under::MappedSqlite(_, dir, _) => {
                let conn = rusqlite::Connection::open(dir.path().join("app.db")).unwrap();
                conn.execute_batch(ROWS).unwrap();
            }
            Under::MappedPostgres(_, url, schema, _) => {
                let pool = pg_pool_in(url, schema).await;
                sqlx::query(ROWS).execute(&pool).await.unwrap();
                pool.close().await;
            }
            _ => {}
        }
    }
}

pub fn postgres_url() -> String {
    std::env::var("SCIMD_TEST_POSTGRES_URL").expect("SCIMD_TEST_POSTGRES_URL names a PostgreSQL database")
}

/// A fresh schema name for one test in this process.
pub fn fresh_schema(test: &str, kind: &str) -> String {
    format!("t_{kind}_{test}_{}", std::process::id())
}

pub async fn pg_pool_in(url: &str, schema: &str) -> sqlx::PgPool {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).unwrap().options([("search_path", schema)]);
    sqlx::PgPool::connect_with(options).await.unwrap()
}

pub async fn recreate_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.expect("SCIMD_TEST_POSTGRES_URL is set but PostgreSQL is unreachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&pool).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&pool).await.unwrap();
    pool.close().await;
}

pub async fn sqlite() -> Under {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    Under::Sqlite(Arc::new(SqliteStore::open(&url, &SqliteSettings::default()).await.unwrap()), dir)
}

pub async fn postgres(test: &str) -> Under {
    let url = postgres_url();
    let schema = fresh_schema(test, "own");
    recreate_schema(&url, &schema).await;
    let settings = PostgresSettings { schema: Some(schema.clone()), max_connections: 4, ..PostgresSettings::default() };
    Under::Postgres(Arc::new(PostgresStore::open(&url, &settings).await.unwrap()), url, schema)
}

/// The application's tables, as an application had them before SCIM (the same shape as
/// `examples/existing-app`): its own keys, a case-sensitive unique email, a NOT NULL flag.
const APP_SQLITE: &str = "
    CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, first_name TEXT,
                        last_name TEXT, is_active BOOLEAN NOT NULL);
    CREATE TABLE groups (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
    CREATE TABLE group_members (group_id INTEGER NOT NULL REFERENCES groups (id),
                                user_id INTEGER NOT NULL REFERENCES users (id));";
const APP_POSTGRES: &[&str] = &[
    "CREATE TABLE users (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email TEXT UNIQUE NOT NULL, \
     first_name TEXT, last_name TEXT, is_active BOOLEAN NOT NULL)",
    "CREATE TABLE groups (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT UNIQUE NOT NULL)",
    "CREATE TABLE group_members (group_id INTEGER NOT NULL REFERENCES groups (id), \
     user_id INTEGER NOT NULL REFERENCES users (id))",
];

/// The same, for an application of many organisations: each row carries its tenant, and
/// names are unique per tenant. Rows the application writes without one are tenant 't''s.
const APP_TENANTS_SQLITE: &str = "
    CREATE TABLE users (id INTEGER PRIMARY KEY, org TEXT NOT NULL DEFAULT 't', email TEXT NOT NULL,
                        first_name TEXT, last_name TEXT, is_active BOOLEAN NOT NULL, UNIQUE (org, email));
    CREATE TABLE groups (id INTEGER PRIMARY KEY, org TEXT NOT NULL DEFAULT 't', name TEXT NOT NULL,
                         UNIQUE (org, name));
    CREATE TABLE group_members (group_id INTEGER NOT NULL REFERENCES groups (id),
                                user_id INTEGER NOT NULL REFERENCES users (id));";
const APP_TENANTS_POSTGRES: &[&str] = &[
    "CREATE TABLE users (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, org TEXT NOT NULL DEFAULT 't',      email TEXT NOT NULL, first_name TEXT, last_name TEXT, is_active BOOLEAN NOT NULL, UNIQUE (org, email))",
    "CREATE TABLE groups (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, org TEXT NOT NULL DEFAULT 't',      name TEXT NOT NULL, UNIQUE (org, name))",
    "CREATE TABLE group_members (group_id INTEGER NOT NULL REFERENCES groups (id),      user_id INTEGER NOT NULL REFERENCES users (id))",
];

pub fn mapping() -> Mapping {
    Mapping {
        users: TableMap::new("users", "id")
            .map("userName", "email")
            .map("name.givenName", "first_name")
            .map("name.familyName", "last_name")
            .map("active", "is_active")
            .default_value("active", json!(true))
            .initial_email("email"),
        groups: TableMap::new("groups", "id").map("displayName", "name"),
        members: MembershipMap::new("group_members", "group_id", "user_id"),
        tenancy: Tenancy::Single("t".into()),
    }
}

fn tenant_mapping() -> Mapping {
    Mapping { tenancy: Tenancy::Column("org".into()), ..mapping() }
}

pub async fn mapped_sqlite() -> Under {
    mapped_sqlite_with(false).await
}

pub async fn mapped_postgres(test: &str) -> Under {
    mapped_postgres_with(test, false).await
}

/// The mapped mode over tables with a tenant column.
pub async fn mapped_tenants_sqlite() -> Under {
    mapped_sqlite_with(true).await
}

pub async fn mapped_tenants_postgres(test: &str) -> Under {
    mapped_postgres_with(test, true).await
}

async fn mapped_sqlite_with(tenants: bool) -> Under {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let pools = SqlitePools::connect(&url, &SqliteSettings::default()).await.unwrap();
    let ddl = if tenants { APP_TENANTS_SQLITE } else { APP_SQLITE };
    pools.with_writer(move |c| c.execute_batch(ddl)).await.unwrap();
    let mapping = if tenants { tenant_mapping() } else { mapping() };
    let store = MappedStore::new(pools, mapping, &Registry::standard()).await.unwrap();
    Under::MappedSqlite(Arc::new(store), dir, tenants)
}

async fn mapped_postgres_with(test: &str, tenants: bool) -> Under {
    let url = postgres_url();
    let schema = fresh_schema(test, if tenants { "mt" } else { "mapped" });
    recreate_schema(&url, &schema).await;
    let app = pg_pool_in(&url, &schema).await;
    for ddl in if tenants { APP_TENANTS_POSTGRES } else { APP_POSTGRES } {
        sqlx::query(*ddl).execute(&app).await.unwrap();
    }
    app.close().await;
    let settings = PostgresSettings { schema: Some(schema.clone()), max_connections: 4, ..PostgresSettings::default() };
    let pools = PgPools::connect(&url, &settings).await.unwrap();
    let mapping = if tenants { tenant_mapping() } else { mapping() };
    let store = MappedStore::new(pools, mapping, &Registry::standard()).await.unwrap();
    Under::MappedPostgres(Arc::new(store), url, schema, tenants)
}
