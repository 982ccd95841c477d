-- One row that readiness checks write to when writes have been failing (a full disk, say):
-- a probe write that succeeds means the server can take writes again.
CREATE TABLE scimd_health (
    id       INTEGER PRIMARY KEY,
    checked  TEXT NOT NULL
);
