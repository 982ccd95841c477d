-- A group's members in membership order, straight from an index: reading a group of
-- 100,000 members no longer sorts them, and reading them in batches (keyset on `seq`)
-- costs each batch alone.
CREATE INDEX scim_members_order ON scim_members (group_seq, seq);
