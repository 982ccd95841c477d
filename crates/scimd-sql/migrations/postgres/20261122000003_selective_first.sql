-- Indexes lead with their most selective column (id, name key, email, member) rather than
-- the tenant: lookups then use the right index whatever the planner's statistics say (a
-- fresh or bulk-loaded database has none until it is analysed). Uniqueness is unchanged.
DROP INDEX scim_users_id;
CREATE UNIQUE INDEX scim_users_id ON scim_users (id, tenant);
DROP INDEX scim_users_user_name;
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (user_name_key, tenant) WHERE retired IS NULL;
DROP INDEX scim_users_external_id;
CREATE INDEX scim_users_external_id ON scim_users (external_id, tenant);
DROP INDEX scim_users_live;
CREATE INDEX scim_users_live ON scim_users (seq) WHERE retired IS NULL;
DROP INDEX scim_groups_id;
CREATE UNIQUE INDEX scim_groups_id ON scim_groups (id, tenant);
DROP INDEX scim_groups_display_name;
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (display_name_key, tenant) WHERE retired IS NULL;
DROP INDEX scim_groups_external_id;
CREATE INDEX scim_groups_external_id ON scim_groups (external_id, tenant);
DROP INDEX scim_groups_live;
CREATE INDEX scim_groups_live ON scim_groups (seq) WHERE retired IS NULL;
DROP INDEX scim_user_emails_value;
CREATE INDEX scim_user_emails_value ON scim_user_emails (value_key, tenant);
DROP INDEX scim_members_member;
CREATE INDEX scim_members_member ON scim_members (member_id, tenant);
DROP INDEX scim_users_user_name_prefix;
