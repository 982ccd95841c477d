-- Console sessions (see the SQLite migration's comments).
CREATE TABLE scimd_console_sessions (
    id           TEXT PRIMARY KEY,
    admin_token  TEXT NOT NULL,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created      TEXT NOT NULL,
    expires      TEXT,
    last_used    TEXT,
    revoked      TEXT
);
CREATE INDEX scimd_console_sessions_admin_token ON scimd_console_sessions (admin_token);
