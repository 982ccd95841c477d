-- The application's own tables, as they were before SCIM was added. It serves several
-- organisations (its customers); each has its users and groups, and the token its
-- identity provider sends (only a hash is kept).
CREATE TABLE organizations (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    scim_token_hash  TEXT UNIQUE
);
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    email            TEXT NOT NULL,
    first_name       TEXT,
    last_name        TEXT,
    is_active        BOOLEAN NOT NULL,
    UNIQUE (organization_id, email)
);
CREATE TABLE groups (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    name             TEXT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES groups (id),
    user_id   INTEGER NOT NULL REFERENCES users (id)
);
