-- Change events (a transactional outbox): each write appends its events in its own
-- transaction. On SQLite writes are serialised, so the row number is the commit order: it
-- is the event's sequence, and AUTOINCREMENT never reuses one after pruning.
CREATE TABLE scimd_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant         TEXT NOT NULL,
    txn            TEXT NOT NULL,    -- the write: shared by the events one write recorded
    time           TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    payload        TEXT NOT NULL     -- JSON: what every rendering is made from
);
CREATE INDEX scimd_events_tenant ON scimd_events (tenant, seq);
CREATE INDEX scimd_events_time ON scimd_events (time);

-- Event streams: where a tenant's events go (pushed to a receiver, or polled by one) and
-- how far each has got.
CREATE TABLE scimd_streams (
    id             TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL,
    name           TEXT NOT NULL,
    delivery       TEXT NOT NULL,    -- 'push' or 'poll'
    endpoint       TEXT,             -- push: the receiver's URL
    auth_header    TEXT,             -- push: an Authorization header the receiver asks for
    audience       TEXT NOT NULL,    -- the SETs' "aud"
    format         TEXT NOT NULL,    -- 'full' or 'notice'
    event_types    TEXT NOT NULL,    -- JSON array of event URIs
    alg            TEXT NOT NULL,    -- 'HS256' or 'ES256'
    secret         TEXT,             -- HS256: the key the receiver verifies with
    poll_token_hash TEXT UNIQUE,     -- poll: the hash of the poll endpoint's bearer token
    state          TEXT NOT NULL,    -- 'active', 'paused' or 'failing'
    cursor         INTEGER NOT NULL, -- every event up to here was delivered (or acknowledged)
    created        TEXT NOT NULL,
    delivered      TEXT,             -- when an event was last delivered
    attempts       INTEGER NOT NULL DEFAULT 0,
    failing_since  TEXT,             -- the first failed attempt of the current run of failures
    next_attempt   TEXT,
    last_error     TEXT,
    lease_owner    TEXT,             -- the process delivering now, until lease_until
    lease_until    TEXT
);
CREATE INDEX scimd_streams_tenant ON scimd_streams (tenant);

-- Poll streams: events acknowledged beyond the cursor (acknowledgements may come out of order).
CREATE TABLE scimd_stream_acks (
    stream_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (stream_id, seq)
);

-- The server's signing keys for ES256 streams, shared by every replica; the public halves
-- are published as a JWKS.
CREATE TABLE scimd_signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  TEXT NOT NULL,      -- the P-256 secret scalar, base64url
    public_jwk   TEXT NOT NULL,      -- JSON
    created      TEXT NOT NULL
);
