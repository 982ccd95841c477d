-- A user or group deleted while it was being added to a group could stay a member of that
-- group (a race of two transactions, since fixed). Such memberships are removed, and each
-- group that loses one gets a new version, so that a client holding its ETag reads it again.
WITH gone AS (
    DELETE FROM scim_members m
    WHERE NOT EXISTS (
        SELECT 1 FROM scim_users u
        WHERE m.member_type = 'User' AND u.tenant = m.tenant AND u.id = m.member_id AND u.retired IS NULL
    )
    AND NOT EXISTS (
        SELECT 1 FROM scim_groups g
        WHERE m.member_type = 'Group' AND g.tenant = m.tenant AND g.id = m.member_id AND g.retired IS NULL
    )
    RETURNING m.group_seq
)
UPDATE scim_groups
SET version = version + 1,
    last_modified = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
WHERE seq IN (SELECT group_seq FROM gone);
