#!/usr/bin/env bash
# scimd on PostgreSQL under a read/write load (bench/failure-load.py: 8 keep-alive clients,
# GETs and PATCHes) while PostgreSQL misbehaves: first every backend of scimd's terminated
# five times, a second apart (`pg_terminate_backend`, as a pooler or an administrator does);
# then, with RESTART=1, the local PostgreSQL cluster restarted (`pg_ctlcluster … restart -m
# fast`: this stops every other client of that cluster too). Prints the answers per second.
# What to look for: SCIM 503s only while the server is really gone, no transport errors, and
# 200s again within a second or two.
#
# Usage: bench/run-pg-failures.sh
# Environment: PG_ADMIN_URL, PROBE_SECONDS (12), RESTART (0), USERS (2000).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${PROBE_SECONDS:-12} restart=${RESTART:-0} users=${USERS:-2000}
source bench/lib.sh
cargo build --release --locked -p scimd -p scimd-bench
fresh_db pg failures
serve_scimd target/release/scimd "$db" "$work/failures.log"
port=${url#http://127.0.0.1:} port=${port%%/*}
target/release/scimd-bench --url "$url" --token "$token" --users "$users" --groups 0 \
  --seed-file "$work/seed.json" --scenarios get_user --duration 0.2 --label seed >/dev/null

echo "== scimd's backends terminated five times"
python3 bench/failure-load.py "$port" "$token" "$work/seed.json" "$seconds" &
load=$!
sleep 2
for _ in 1 2 3 4 5; do
  psql "$pg_admin" -qAt -c "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) || ' terminated'
                             FROM pg_stat_activity WHERE application_name = 'scimd'"
  sleep 1
done
wait "$load"

if [ "$restart" = 1 ]; then
  echo "== the PostgreSQL cluster restarted"
  python3 bench/failure-load.py "$port" "$token" "$work/seed.json" "$seconds" &
  load=$!
  sleep 3
  cluster=$(pg_lsclusters -h | awk '$3 == 5432 {print $1, $2}')
  # shellcheck disable=SC2086
  pg_ctlcluster --skip-systemctl-redirect $cluster restart -m fast
  wait "$load"
fi
