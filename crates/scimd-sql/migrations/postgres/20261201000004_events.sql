-- Change events (see the SQLite migration's comments). Here writes commit concurrently and
-- in any order, so an event's sequence is given after its transaction has committed: one
-- sequencer at a time numbers every committed event it can see, after the highest number
-- given so far, so no event can ever appear behind one a reader has already passed.
CREATE TABLE scimd_events (
    id             BIGSERIAL PRIMARY KEY,
    seq            BIGINT UNIQUE,
    tenant         TEXT NOT NULL,
    txn            TEXT NOT NULL,
    time           TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    payload        JSONB NOT NULL
);
CREATE INDEX scimd_events_unsequenced ON scimd_events (id) WHERE seq IS NULL;
CREATE INDEX scimd_events_tenant ON scimd_events (tenant, seq);
CREATE INDEX scimd_events_time ON scimd_events (time);

CREATE TABLE scimd_streams (
    id             TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL,
    name           TEXT NOT NULL,
    delivery       TEXT NOT NULL,
    endpoint       TEXT,
    auth_header    TEXT,
    audience       TEXT NOT NULL,
    format         TEXT NOT NULL,
    event_types    TEXT NOT NULL,
    alg            TEXT NOT NULL,
    secret         TEXT,
    poll_token_hash TEXT UNIQUE,
    state          TEXT NOT NULL,
    cursor         BIGINT NOT NULL,
    created        TEXT NOT NULL,
    delivered      TEXT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    failing_since  TEXT,
    next_attempt   TEXT,
    last_error     TEXT,
    lease_owner    TEXT,
    lease_until    TEXT
);
CREATE INDEX scimd_streams_tenant ON scimd_streams (tenant);

CREATE TABLE scimd_stream_acks (
    stream_id  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (stream_id, seq)
);

CREATE TABLE scimd_signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    created      TEXT NOT NULL
);
