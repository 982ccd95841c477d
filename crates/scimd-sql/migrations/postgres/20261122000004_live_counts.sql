-- Lists walk live rows in creation order; the tenant in the index lets a page skip rows
-- without reading them from the table. (Live counts stay COUNT(*) here: a shared counter
-- row would serialise every tenant's concurrent creates on its row lock.)
DROP INDEX scim_users_live;
CREATE INDEX scim_users_live ON scim_users (seq, tenant) WHERE retired IS NULL;
DROP INDEX scim_groups_live;
CREATE INDEX scim_groups_live ON scim_groups (seq, tenant) WHERE retired IS NULL;
