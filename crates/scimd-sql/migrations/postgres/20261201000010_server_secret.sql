-- A secret of the deployment, made once here (under the migrations' lock, so every replica
-- reads the same one): it seals list cursors. 244 random bits from two version-4 UUIDs
-- (PostgreSQL's strong random source).
CREATE TABLE scimd_server_secret (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  TEXT NOT NULL
);
INSERT INTO scimd_server_secret (id, secret)
VALUES (1, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
