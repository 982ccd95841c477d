-- The number of live resources per tenant and type, so that an unfiltered list reads its
-- totalResults instead of counting the tenant's rows on every page.
--
-- Writers never update a shared row here: concurrent creates in one tenant would queue on
-- its lock until each commits. A write appends its change (+1, -1) as a row of its own,
-- in its own transaction, by trigger; a reader sums its tenant's rows (an index range),
-- and scimd folds each tenant's rows into one now and then (`postgres::fold_counts`).
CREATE TABLE scim_live_counts (
    tenant  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    n       BIGINT NOT NULL
);
CREATE INDEX scim_live_counts_key ON scim_live_counts (tenant, kind) INCLUDE (n);

INSERT INTO scim_live_counts (tenant, kind, n)
    SELECT tenant, 'User', COUNT(*) FROM scim_users WHERE retired IS NULL GROUP BY tenant;
INSERT INTO scim_live_counts (tenant, kind, n)
    SELECT tenant, 'Group', COUNT(*) FROM scim_groups WHERE retired IS NULL GROUP BY tenant;

-- TG_ARGV[0]: the resource type. A row counts while `retired` is NULL.
CREATE FUNCTION scim_count_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.retired IS NULL THEN
            INSERT INTO scim_live_counts (tenant, kind, n) VALUES (NEW.tenant, TG_ARGV[0], 1);
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF OLD.retired IS NULL THEN
            INSERT INTO scim_live_counts (tenant, kind, n) VALUES (OLD.tenant, TG_ARGV[0], -1);
        END IF;
    ELSIF (OLD.retired IS NULL) <> (NEW.retired IS NULL) THEN
        INSERT INTO scim_live_counts (tenant, kind, n)
            VALUES (NEW.tenant, TG_ARGV[0], CASE WHEN NEW.retired IS NULL THEN 1 ELSE -1 END);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER scim_users_counted AFTER INSERT OR DELETE OR UPDATE OF retired ON scim_users
    FOR EACH ROW EXECUTE FUNCTION scim_count_live('User');
CREATE TRIGGER scim_groups_counted AFTER INSERT OR DELETE OR UPDATE OF retired ON scim_groups
    FOR EACH ROW EXECUTE FUNCTION scim_count_live('Group');
