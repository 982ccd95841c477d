-- The activity log moves to a database file of its own (see ACTIVITY_MIGRATIONS in
-- sqlite.rs): its records are operational history, not data, and are not carried over.
DROP TABLE IF EXISTS scimd_activity;
