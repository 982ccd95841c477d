-- Console sessions: opened by signing in with an admin token, kept by the browser in a
-- cookie, stored here as a hash like every token. A session ends at its expiry, at
-- sign-out, or when the admin token that opened it is revoked or expires.
CREATE TABLE scimd_console_sessions (
    id           TEXT PRIMARY KEY,
    admin_token  TEXT NOT NULL,      -- the id of the admin token that opened it
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created      TEXT NOT NULL,
    expires      TEXT,
    last_used    TEXT,
    revoked      TEXT
);
CREATE INDEX scimd_console_sessions_admin_token ON scimd_console_sessions (admin_token);
