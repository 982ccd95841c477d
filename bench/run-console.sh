#!/usr/bin/env bash
# The console's pages on the benchmark's data: one server (release build, activity log on)
# on SQLite and on PostgreSQL, 10,000 users and 50 groups seeded by scimd-bench, some
# identity-provider traffic recorded in the activity log; then each page loaded ROUNDS times
# by a signed-in operator (bench/console_pages.py): median and p90.
#
# Usage: bench/run-console.sh
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              USERS (10000), ROUNDS (20), ONLY ("sqlite pg").
set -euo pipefail
cd "$(dirname "$0")/.."
users=${USERS:-10000} rounds=${ROUNDS:-20} only=${ONLY:-"sqlite pg"}
source bench/lib.sh

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench

for store in $only; do
  fresh_db "$store" console
  port=$(free_port)
  root=http://127.0.0.1:$port
  token=$(SCIMD_DATABASE_URL=$db "$scimd" token create --name bench 2>/dev/null)
  admin=$(SCIMD_DATABASE_URL=$db "$scimd" admin-token create --name bench 2>/dev/null)
  SCIMD_DATABASE_URL=$db SCIMD_LISTEN=127.0.0.1:$port SCIMD_ACTIVITY_LOG=true SCIMD_LOG_LEVEL=warn \
    "$scimd" serve >"$work/$store.log" 2>&1 &
  server=$!
  pids+=("$server")
  wait_ready "$root"
  "$bench" --url "$root/scim/v2" --token "$token" --users "$users" --groups 50 --seed-file "$work/$store.seed" \
    --scenarios get_user,filter,patch_user,add_member --duration 2 --label traffic >/dev/null
  sleep 1
  auth=(-H "Authorization: Bearer $token")
  user=$(curl -fsS "${auth[@]}" "$root/scim/v2/Users?count=1&startIndex=500" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Resources"][0]["id"])')
  group=$(curl -fsS "${auth[@]}" "$root/scim/v2/Groups?count=1&excludedAttributes=members" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Resources"][0]["id"])')
  echo
  echo "$store: console pages, $users users, 50 groups, $rounds loads each"
  python3 bench/console_pages.py "$root" "$admin" default "$user" "$group" "$rounds"
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
done
