#!/usr/bin/env bash
# scimd on PostgreSQL with a million users: `filter`, `get_user`, `list` (index paging at
# random offsets), `cursor_first` and `cursor_deep` (the page DEPTH users deep), RUNS rounds
# of DURATION seconds, 8 clients, medians. The users are written with SQL in the shape scimd
# stores what the load tool sends (userName, name, emails, externalId, active), with their
# email keys and counts, then vacuumed and analysed: through the API, seeding a million
# users would take most of an hour on this machine.
#
# Usage: bench/run-million.sh [OUT_DIR]        (default: bench/results)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              USERS (1000000), DEPTH (900000), RUNS (3), DURATION (5).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
users=${USERS:-1000000} depth=${DEPTH:-900000} runs=${RUNS:-3} duration=${DURATION:-5}
day=$(date -u +%F)
source bench/lib.sh

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench

fresh_db pg million
serve_scimd "$scimd" "$db" "$work/million.log"
t0=$(date +%s)
psql "$db" -qAt -v ON_ERROR_STOP=1 -v users="$users" <<'SQL'
INSERT INTO scim_users (tenant, id, user_name, user_name_key, external_id, active, attributes, created, last_modified, version)
SELECT 'default', md5('million' || g)::uuid::text, u, u, 'million-ext-' || g, true,
       jsonb_build_object('userName', u, 'externalId', 'million-ext-' || g, 'active', true,
                          'name', jsonb_build_object('givenName', 'Given' || g, 'familyName', 'Family' || g),
                          'emails', jsonb_build_array(jsonb_build_object('value', u, 'type', 'work', 'primary', true))),
       '2026-11-30T00:00:00.000000Z', '2026-11-30T00:00:00.000000Z', 1
FROM generate_series(1, :users) g, LATERAL (SELECT 'million.user' || g || '@example.com' AS u) n;
INSERT INTO scim_user_emails (tenant, user_seq, value_key) SELECT tenant, seq, user_name_key FROM scim_users;
-- The per-write count rows the trigger added, folded into one per stretch (as scimd's upkeep does).
WITH gone AS (DELETE FROM scim_live_counts WHERE tenant = 'default' AND kind = 'User' RETURNING stretch, n)
INSERT INTO scim_live_counts (tenant, kind, stretch, n) SELECT 'default', 'User', stretch, SUM(n) FROM gone GROUP BY stretch;
SQL
# The million count rows the trigger wrote in that one transaction, deleted by the fold, would
# leave the counts' table and index a few thousand mostly empty pages; scimd's own folds, every
# few seconds through an API-driven sync, never pile up that many. Compact them.
psql "$db" -qAt -c "VACUUM FULL scim_live_counts"
psql "$db" -qAt -c "VACUUM ANALYZE"
psql "$db" -qAt -c "SELECT json_build_object('users', json_agg(json_build_array(id, user_name) ORDER BY seq), 'groups', '[]'::json) FROM scim_users" >"$work/million.seed"
echo "wrote $users users with SQL in $(( $(date +%s) - t0 )) s"

"$bench" --url "$url" --token "$token" --seed-file "$work/million.seed" \
  --scenarios filter,get_user,list,cursor_first,cursor_deep --cursor-depth "$depth" --runs "$runs" \
  --duration "$duration" --label "scimd (PostgreSQL, $users users)" --fail-on-errors --json "$out/million-pg-$day.json"
