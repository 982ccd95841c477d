-- The provisioning activity log (see the SQLite migration's comments).
CREATE TABLE scimd_activity (
    id             BIGSERIAL PRIMARY KEY,
    tenant         TEXT NOT NULL,
    time           TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    status         BIGINT NOT NULL,
    scim_type      TEXT,
    detail         TEXT,
    latency_us     BIGINT NOT NULL,
    resource_type  TEXT,
    resource_id    TEXT,
    user_agent     TEXT,
    client         TEXT,
    request_id     TEXT,
    request_body   TEXT
);
CREATE INDEX scimd_activity_tenant ON scimd_activity (tenant, id);
CREATE INDEX scimd_activity_resource ON scimd_activity (tenant, resource_id, id);
CREATE INDEX scimd_activity_time ON scimd_activity (time);
