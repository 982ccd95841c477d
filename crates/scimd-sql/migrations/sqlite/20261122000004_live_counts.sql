-- Lists walk live rows in creation order; the tenant in the index lets a page skip rows
-- without reading them from the table. (Not on PostgreSQL: there, before statistics
-- exist, the planner would scan this index for every `tenant = …` lookup.)
DROP INDEX scim_users_live;
CREATE INDEX scim_users_live ON scim_users (seq, tenant) WHERE retired IS NULL;
DROP INDEX scim_groups_live;
CREATE INDEX scim_groups_live ON scim_groups (seq, tenant) WHERE retired IS NULL;

-- The number of live resources per tenant and type, kept by triggers in the writing
-- transaction: an unfiltered list reads its totalResults here instead of counting rows.
CREATE TABLE scim_live_counts (
    tenant  TEXT NOT NULL,
    kind    TEXT NOT NULL,               -- 'User' or 'Group'
    n       INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind)
);
INSERT INTO scim_live_counts (tenant, kind, n)
    SELECT tenant, 'User', COUNT(*) FROM scim_users WHERE retired IS NULL GROUP BY tenant;
INSERT INTO scim_live_counts (tenant, kind, n)
    SELECT tenant, 'Group', COUNT(*) FROM scim_groups WHERE retired IS NULL GROUP BY tenant;

CREATE TRIGGER scim_users_counted AFTER INSERT ON scim_users WHEN NEW.retired IS NULL BEGIN
    INSERT INTO scim_live_counts (tenant, kind, n) VALUES (NEW.tenant, 'User', 1)
        ON CONFLICT (tenant, kind) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scim_users_uncounted AFTER DELETE ON scim_users WHEN OLD.retired IS NULL BEGIN
    UPDATE scim_live_counts SET n = n - 1 WHERE tenant = OLD.tenant AND kind = 'User';
END;
CREATE TRIGGER scim_users_recounted AFTER UPDATE OF retired ON scim_users
    WHEN (OLD.retired IS NULL) <> (NEW.retired IS NULL) BEGIN
    INSERT INTO scim_live_counts (tenant, kind, n)
        VALUES (NEW.tenant, 'User', CASE WHEN NEW.retired IS NULL THEN 1 ELSE -1 END)
        ON CONFLICT (tenant, kind) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER scim_groups_counted AFTER INSERT ON scim_groups WHEN NEW.retired IS NULL BEGIN
    INSERT INTO scim_live_counts (tenant, kind, n) VALUES (NEW.tenant, 'Group', 1)
        ON CONFLICT (tenant, kind) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scim_groups_uncounted AFTER DELETE ON scim_groups WHEN OLD.retired IS NULL BEGIN
    UPDATE scim_live_counts SET n = n - 1 WHERE tenant = OLD.tenant AND kind = 'Group';
END;
CREATE TRIGGER scim_groups_recounted AFTER UPDATE OF retired ON scim_groups
    WHEN (OLD.retired IS NULL) <> (NEW.retired IS NULL) BEGIN
    INSERT INTO scim_live_counts (tenant, kind, n)
        VALUES (NEW.tenant, 'Group', CASE WHEN NEW.retired IS NULL THEN 1 ELSE -1 END)
        ON CONFLICT (tenant, kind) DO UPDATE SET n = n + excluded.n;
END;
