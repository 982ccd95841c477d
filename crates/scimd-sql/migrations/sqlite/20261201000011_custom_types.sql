-- Resources of the resource types configured beside Users and Groups (schema files), all in
-- one table told apart by `kind`: their attributes are a document like a user's, with the
-- common columns indexed and filters on other attributes read from the document.
CREATE TABLE scim_resources (
    seq               INTEGER PRIMARY KEY,
    tenant            TEXT NOT NULL,
    kind              TEXT NOT NULL,
    id                TEXT NOT NULL,
    display_name      TEXT,
    display_name_key  TEXT,
    external_id       TEXT,
    attributes        TEXT NOT NULL,
    created           TEXT NOT NULL,
    last_modified     TEXT NOT NULL,
    version           INTEGER NOT NULL,
    retired           TEXT
);
CREATE UNIQUE INDEX scim_resources_id ON scim_resources (id, tenant, kind);
CREATE INDEX scim_resources_live ON scim_resources (tenant, kind, seq) WHERE retired IS NULL;
CREATE INDEX scim_resources_external_id ON scim_resources (external_id, tenant, kind);
CREATE INDEX scim_resources_display_name ON scim_resources (display_name_key, tenant, kind);

-- Values a schema declares unique (`uniqueness: server`), one row per live resource and
-- attribute: the primary key refuses a second holder, under concurrent writes too.
CREATE TABLE scim_unique_values (
    tenant       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    attribute    TEXT NOT NULL,
    value_key    TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, attribute, value_key)
);
CREATE INDEX scim_unique_values_resource ON scim_unique_values (resource_id, tenant, kind);

-- The schemas and resource types the deployment last started with (beyond the built-in
-- ones): a start with a change that would orphan stored data is refused unless forced.
CREATE TABLE scimd_schema_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    document   TEXT NOT NULL,
    updated    TEXT NOT NULL
);
