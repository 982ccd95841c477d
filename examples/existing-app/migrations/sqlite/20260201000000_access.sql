-- What the application does with SCIM's change events: when an identity provider
-- deactivates or deletes a user, the user's access ends (here: a row per revocation), and
-- the position in the event log moves on in the same transaction, so that a restart neither
-- skips an event nor acts on one twice.
CREATE TABLE access_revocations (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    user_id          TEXT NOT NULL,
    reason           TEXT NOT NULL,
    event_seq        BIGINT NOT NULL UNIQUE
);
CREATE TABLE scim_event_cursor (
    organization_id  INTEGER PRIMARY KEY REFERENCES organizations (id),
    seq              BIGINT NOT NULL
);
