-- A secret of the deployment, made once here: it seals list cursors (256 random bits).
CREATE TABLE scimd_server_secret (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  TEXT NOT NULL
);
INSERT INTO scimd_server_secret (id, secret) VALUES (1, lower(hex(randomblob(32))));
