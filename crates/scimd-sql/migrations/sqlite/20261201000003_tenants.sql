-- Tenants as data: one row per customer, shared by every replica. The tenant key every
-- table already carries refers to it. Existing data becomes tenants of its own: a database
-- of one tenant (the server's `tenant` setting, 'default' unless changed) becomes that tenant.
CREATE TABLE scimd_tenants (
    slug          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'active',   -- 'active' or 'disabled'
    settings      TEXT NOT NULL DEFAULT '{}',       -- JSON: per-tenant settings
    created       TEXT NOT NULL,
    last_request  TEXT                               -- the last SCIM request (to the minute)
);
INSERT INTO scimd_tenants (slug, name, created)
    SELECT tenant, tenant, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    FROM (SELECT tenant FROM scim_tokens UNION SELECT tenant FROM scim_users UNION SELECT tenant FROM scim_groups);

-- Tokens may expire; when each was last used is kept to the minute.
ALTER TABLE scim_tokens ADD COLUMN expires TEXT;
ALTER TABLE scim_tokens ADD COLUMN last_used TEXT;
CREATE INDEX scim_tokens_tenant ON scim_tokens (tenant);

-- Tokens of the admin API: hashed like SCIM tokens, never valid on SCIM endpoints.
CREATE TABLE scimd_admin_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created    TEXT NOT NULL,
    revoked    TEXT,
    expires    TEXT,
    last_used  TEXT
);
