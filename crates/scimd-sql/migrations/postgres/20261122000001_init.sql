-- scimd's own tables (PostgreSQL). Same shape as the SQLite migration; see its comments.

CREATE TABLE scim_tokens (
    id       TEXT PRIMARY KEY,
    tenant   TEXT NOT NULL,
    name     TEXT NOT NULL,
    hash     TEXT NOT NULL UNIQUE,
    created  TEXT NOT NULL,
    revoked  TEXT
);

CREATE TABLE scim_users (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant         TEXT NOT NULL,
    id             TEXT NOT NULL,
    user_name      TEXT NOT NULL,
    user_name_key  TEXT NOT NULL,
    external_id    TEXT,
    active         BOOLEAN,
    attributes     JSONB NOT NULL,
    created        TEXT NOT NULL,
    last_modified  TEXT NOT NULL,
    version        BIGINT NOT NULL,
    retired        TEXT
);
CREATE UNIQUE INDEX scim_users_id ON scim_users (tenant, id);
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (tenant, user_name_key) WHERE retired IS NULL;
CREATE INDEX scim_users_user_name_prefix ON scim_users (tenant, user_name_key text_pattern_ops) WHERE retired IS NULL;
CREATE INDEX scim_users_external_id ON scim_users (tenant, external_id);

CREATE TABLE scim_user_emails (
    tenant     TEXT NOT NULL,
    user_seq   BIGINT NOT NULL REFERENCES scim_users (seq) ON DELETE CASCADE,
    value_key  TEXT NOT NULL
);
CREATE INDEX scim_user_emails_value ON scim_user_emails (tenant, value_key);
CREATE INDEX scim_user_emails_user ON scim_user_emails (user_seq);

CREATE TABLE scim_groups (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant            TEXT NOT NULL,
    id                TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    display_name_key  TEXT NOT NULL,
    external_id       TEXT,
    attributes        JSONB NOT NULL,
    created           TEXT NOT NULL,
    last_modified     TEXT NOT NULL,
    version           BIGINT NOT NULL,
    retired           TEXT
);
CREATE UNIQUE INDEX scim_groups_id ON scim_groups (tenant, id);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (tenant, display_name_key) WHERE retired IS NULL;
CREATE INDEX scim_groups_external_id ON scim_groups (tenant, external_id);

CREATE TABLE scim_members (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant       TEXT NOT NULL,
    group_seq    BIGINT NOT NULL REFERENCES scim_groups (seq) ON DELETE CASCADE,
    member_id    TEXT NOT NULL,
    member_type  TEXT NOT NULL
);
CREATE UNIQUE INDEX scim_members_pair ON scim_members (group_seq, member_id);
CREATE INDEX scim_members_member ON scim_members (tenant, member_id);
