-- Lists walk live rows in creation order without sorting them.
CREATE INDEX scim_users_live ON scim_users (tenant, seq) WHERE retired IS NULL;
CREATE INDEX scim_groups_live ON scim_groups (tenant, seq) WHERE retired IS NULL;
