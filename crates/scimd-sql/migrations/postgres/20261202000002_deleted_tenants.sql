-- Tenants deleted lately. A SCIM write that was under way when its tenant was deleted can
-- commit after the tenant's data was erased; what it left is erased again once no such
-- write can still be running (the servers' upkeep), or when the slug is given to a new
-- tenant, whichever comes first.
CREATE TABLE scimd_deleted_tenants (
    slug     TEXT PRIMARY KEY,
    deleted  TEXT NOT NULL
);
