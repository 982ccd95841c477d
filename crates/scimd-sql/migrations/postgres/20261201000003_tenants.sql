-- Tenants as data (see the SQLite migration's comments).
CREATE TABLE scimd_tenants (
    slug          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'active',
    settings      TEXT NOT NULL DEFAULT '{}',
    created       TEXT NOT NULL,
    last_request  TEXT
);
INSERT INTO scimd_tenants (slug, name, created)
    SELECT tenant, tenant, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    FROM (SELECT tenant FROM scim_tokens UNION SELECT tenant FROM scim_users UNION SELECT tenant FROM scim_groups) t;

ALTER TABLE scim_tokens ADD COLUMN expires TEXT;
ALTER TABLE scim_tokens ADD COLUMN last_used TEXT;
CREATE INDEX scim_tokens_tenant ON scim_tokens (tenant);

CREATE TABLE scimd_admin_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created    TEXT NOT NULL,
    revoked    TEXT,
    expires    TEXT,
    last_used  TEXT
);
