#!/usr/bin/env bash
# Two builds of scimd against each other, same machine, same run: each on a fresh database of
# each store with the same 10,000 users and 50 groups (seeded separately), the scenarios
# against each in turns, RUNS rounds. Prints every round's req/s; compare medians.
#
# Usage: bench/run-ab.sh OLD_BINARY NEW_BINARY
# Environment: PG_ADMIN_URL, PG_PARAMS (added to the PostgreSQL URLs, e.g. sslmode=disable),
#              RUNS (3), DURATION (3), SCENARIOS (get_user,filter,patch_user),
#              ONLY ("sqlite pg").
set -euo pipefail
cd "$(dirname "$0")/.."
old_bin=$1 new_bin=$2
runs=${RUNS:-3} duration=${DURATION:-3} scenarios=${SCENARIOS:-get_user,filter,patch_user}
only=${ONLY:-"sqlite pg"}
source bench/lib.sh
cargo build --release --locked -p scimd-bench
bench=target/release/scimd-bench

for store in $only; do
  for v in old new; do
    bin=${old_bin}; [ "$v" = new ] && bin=${new_bin}
    fresh_db "$store" "ab_$v"
    serve_scimd "$bin" "$db" "$work/$store-$v.log"
    declare "url_$v=$url" "token_$v=$token"
    "$bench" --url "$url" --token "$token" --users 10000 --groups 50 \
      --seed-file "$work/$store-$v.seed" --scenarios get_user --duration 0.2 --label seed >/dev/null
  done
  for r in $(seq 1 "$runs"); do
    for v in old new; do
      url="url_$v" token="token_$v"
      "$bench" --url "${!url}" --token "${!token}" --seed-file "$work/$store-$v.seed" --scenarios "$scenarios" \
        --duration "$duration" --fail-on-errors --label "$store-$v" 2>&1 \
        | grep -E '^[a-z_]+: [0-9]+ req/s' | sed "s/^/$store $v round $r: /"
    done
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done
