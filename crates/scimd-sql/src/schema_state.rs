//! The schema state of `scimd_core::schema_change`: the document the deployment last
//! started with, and whether stored resources hold data where a change would remove it.

use crate::compile::json_path;
use crate::layout::table;
use crate::sql::Dialect;
use crate::store::{Pools, SqlStore, sql};
use async_trait::async_trait;
use scimd_core::Kind;
use scimd_core::schema_change::{Place, SchemaStore};
use scimd_core::store::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
impl<P: Pools> SchemaStore for SqlStore<P> {
    async fn stored_schema(&self) -> Result<Option<String>> {
        let mut s = sql(self.pools.dialect());
        s.push("SELECT document FROM scimd_schema_state WHERE id = 1");
        let rows = self.pools.read_one(s).await?;
        Ok(rows.first().map(|r| r.text(0)).transpose()?)
    }

    async fn save_schema(&self, document: &str, now: &str) -> Result<()> {
        let mut tx = self.pools.write().await?;
        let mut s = sql(tx.dialect());
        s.push("INSERT INTO scimd_schema_state (id, document, updated) VALUES (1, ").bind_text(document);
        s.push(", ")
            .bind_text(now)
            .push(") ON CONFLICT (id) DO UPDATE SET document = excluded.document, updated = excluded.updated");
        tx.exec(s).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn holds_data(&self, kind: &str, place: &Place) -> Result<bool> {
        let d = self.pools.dialect();
        // The type's own table; the others' rows (configured now or no longer) share one.
        let own = Kind::built_in(kind).filter(|k| k.name() == kind).map(|k| table(k).table);
        let mut s = sql(d);
        s.push("SELECT 1 FROM ").push(own.unwrap_or("scim_resources")).push(" t WHERE 1 = 1");
        if own.is_none() {
            s.push(" AND t.kind = ").bind_text(kind);
        }
        let keys: Vec<&str> = match place {
            Place::Type => vec![],
            Place::Extension(urn) => vec![urn.as_str()],
            Place::Attribute(None, name) => vec![name.as_str()],
            Place::Attribute(Some(urn), name) => vec![urn.as_str(), name.as_str()],
        };
        if !keys.is_empty() {
            s.push(" AND ");
            match d {
                Dialect::Sqlite => {
                    // A key the JSON path cannot spell was never stored.
                    let Ok(path) = json_path(&keys) else { return Ok(false) };
                    // Neither absent (SQL NULL) nor a JSON null.
                    s.push("json_type(t.attributes, ").bind_text(path).push(") != 'null'");
                }
                Dialect::Postgres => {
                    // Neither absent (SQL NULL) nor a JSON null.
                    s.push("jsonb_typeof(t.attributes");
                    for k in &keys {
                        s.push(" -> ").bind_text(*k);
                    }
                    s.push(") != 'null'");
                }
            }
        }
        s.push(" LIMIT 1");
        Ok(!self.pools.read_one(s).await?.is_empty())
    }
}
