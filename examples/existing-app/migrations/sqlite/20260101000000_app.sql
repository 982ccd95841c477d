-- The application's own tables, as they were before SCIM was added.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    email       TEXT UNIQUE NOT NULL,
    first_name  TEXT,
    last_name   TEXT,
    is_active   BOOLEAN NOT NULL
);
CREATE TABLE groups (
    id    INTEGER PRIMARY KEY,
    name  TEXT UNIQUE NOT NULL
);
CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES groups (id),
    user_id   INTEGER NOT NULL REFERENCES users (id)
);
