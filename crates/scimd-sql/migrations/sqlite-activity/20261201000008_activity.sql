-- The activity log's own database: each authenticated SCIM request and its answer, per
-- tenant, kept as a bounded history (the newest `activity_retention_requests` of each
-- tenant, none older than `activity_retention_days`). One index only: every request adds a
-- row, and each index is one more B-tree insert; reads are a tenant's newest rows (this
-- index), filtered within the tenant's bounded history.
CREATE TABLE scimd_activity (
    id             INTEGER PRIMARY KEY,  -- grows with every record (never reused while newer ones exist)
    tenant         TEXT NOT NULL,
    time           TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,    -- path and query below the root
    status         INTEGER NOT NULL,
    scim_type      TEXT,
    detail         TEXT,
    latency_us     INTEGER NOT NULL, -- from arrival to the answer's head, in microseconds
    resource_type  TEXT,
    resource_id    TEXT,
    user_agent     TEXT,
    client         TEXT,             -- the identity provider, recognised from the User-Agent
    request_id     TEXT,
    request_body   TEXT              -- a failed request's body, credentials removed
);
CREATE INDEX scimd_activity_tenant ON scimd_activity (tenant, id);
