-- The live counts per stretch of 1,024 order keys (`seq >> 10`), so that a list page at any
-- startIndex is found without walking every row before it: the stretches' counts say in
-- which stretch the page starts and how many of its rows come first; only those are walked
-- (at most 1,024 index entries), whatever the depth. The counts stay exact in every
-- snapshot, as before: a write adds its change by trigger in its own transaction.
--
-- `store::STRETCH_BITS` in the code is the 10 here.
ALTER TABLE scim_live_counts ADD COLUMN stretch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scim_live_counts ALTER COLUMN stretch DROP DEFAULT;

DELETE FROM scim_live_counts;
INSERT INTO scim_live_counts (tenant, kind, stretch, n)
    SELECT tenant, 'User', seq >> 10, COUNT(*) FROM scim_users WHERE retired IS NULL GROUP BY tenant, seq >> 10;
INSERT INTO scim_live_counts (tenant, kind, stretch, n)
    SELECT tenant, 'Group', seq >> 10, COUNT(*) FROM scim_groups WHERE retired IS NULL GROUP BY tenant, seq >> 10;

DROP INDEX scim_live_counts_key;
CREATE INDEX scim_live_counts_key ON scim_live_counts (tenant, kind, stretch) INCLUDE (n);

-- TG_ARGV[0]: the resource type. A row counts while `retired` is NULL.
CREATE OR REPLACE FUNCTION scim_count_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.retired IS NULL THEN
            INSERT INTO scim_live_counts (tenant, kind, stretch, n) VALUES (NEW.tenant, TG_ARGV[0], NEW.seq >> 10, 1);
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF OLD.retired IS NULL THEN
            INSERT INTO scim_live_counts (tenant, kind, stretch, n) VALUES (OLD.tenant, TG_ARGV[0], OLD.seq >> 10, -1);
        END IF;
    ELSIF (OLD.retired IS NULL) <> (NEW.retired IS NULL) THEN
        INSERT INTO scim_live_counts (tenant, kind, stretch, n)
            VALUES (NEW.tenant, TG_ARGV[0], NEW.seq >> 10, CASE WHEN NEW.retired IS NULL THEN 1 ELSE -1 END);
    END IF;
    RETURN NULL;
END
$$;
