-- scimd's own tables. Every table carries the tenant key; every query is scoped by it.
-- `attributes` holds a resource's canonical SCIM attributes as JSON; the other columns
-- are what the protocol needs indexed, derived from it on every write.

CREATE TABLE scim_tokens (
    id       TEXT PRIMARY KEY,
    tenant   TEXT NOT NULL,
    name     TEXT NOT NULL,
    hash     TEXT NOT NULL UNIQUE,   -- SHA-256 of the secret, hex; the secret is never stored
    created  TEXT NOT NULL,
    revoked  TEXT
);

CREATE TABLE scim_users (
    seq            INTEGER PRIMARY KEY,   -- creation order: the stable default sort
    tenant         TEXT NOT NULL,
    id             TEXT NOT NULL,
    user_name      TEXT NOT NULL,
    user_name_key  TEXT NOT NULL,         -- userName case-folded: uniqueness and lookups
    external_id    TEXT,
    active         INTEGER,
    attributes     TEXT NOT NULL,
    created        TEXT NOT NULL,
    last_modified  TEXT NOT NULL,
    version        INTEGER NOT NULL,
    retired        TEXT                   -- set when deleted under delete_policy=retire
);
CREATE UNIQUE INDEX scim_users_id ON scim_users (tenant, id);
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (tenant, user_name_key) WHERE retired IS NULL;
CREATE INDEX scim_users_external_id ON scim_users (tenant, external_id);

CREATE TABLE scim_user_emails (
    tenant     TEXT NOT NULL,
    user_seq   INTEGER NOT NULL REFERENCES scim_users (seq) ON DELETE CASCADE,
    value_key  TEXT NOT NULL              -- emails.value case-folded
);
CREATE INDEX scim_user_emails_value ON scim_user_emails (tenant, value_key);
CREATE INDEX scim_user_emails_user ON scim_user_emails (user_seq);

CREATE TABLE scim_groups (
    seq               INTEGER PRIMARY KEY,
    tenant            TEXT NOT NULL,
    id                TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    display_name_key  TEXT NOT NULL,
    external_id       TEXT,
    attributes        TEXT NOT NULL,
    created           TEXT NOT NULL,
    last_modified     TEXT NOT NULL,
    version           INTEGER NOT NULL,
    retired           TEXT
);
CREATE UNIQUE INDEX scim_groups_id ON scim_groups (tenant, id);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (tenant, display_name_key) WHERE retired IS NULL;
CREATE INDEX scim_groups_external_id ON scim_groups (tenant, external_id);

-- Membership as rows: adding or removing one member costs the same in any group size.
CREATE TABLE scim_members (
    seq          INTEGER PRIMARY KEY,     -- insertion order, the order members are listed in
    tenant       TEXT NOT NULL,
    group_seq    INTEGER NOT NULL REFERENCES scim_groups (seq) ON DELETE CASCADE,
    member_id    TEXT NOT NULL,
    member_type  TEXT NOT NULL            -- 'User' or 'Group'
);
CREATE UNIQUE INDEX scim_members_pair ON scim_members (group_seq, member_id);
CREATE INDEX scim_members_member ON scim_members (tenant, member_id);
