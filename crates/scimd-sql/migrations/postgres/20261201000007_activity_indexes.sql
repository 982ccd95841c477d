-- The activity log keeps one index, as on SQLite: every request adds a row, and each index
-- is one more insert; reads are a tenant's newest rows, filtered within its bounded history.
DROP INDEX IF EXISTS scimd_activity_resource;
DROP INDEX IF EXISTS scimd_activity_time;
