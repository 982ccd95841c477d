#!/usr/bin/env bash
# Group creates against the number of users: two servers per store, each on a fresh
# database, one seeded with SMALL users and one with LARGE (through the SCIM API, as an
# identity provider's first sync makes them), then `create_group` (POST /Groups with a new
# displayName and one random seeded member; one client) against each in turns, RUNS rounds
# of DURATION seconds. The ratio is the large database's p50 over the small one's, per round.
#
# Usage: bench/run-group-create.sh [OUT_DIR]        (default: bench/results)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              SMALL (1000), LARGE (100000), RUNS (5), DURATION (5), ONLY ("sqlite pg").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
small=${SMALL:-1000} large=${LARGE:-100000} runs=${RUNS:-5} duration=${DURATION:-5}
only=${ONLY:-"sqlite pg"}
day=$(date -u +%F)
source bench/lib.sh

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench

# serve NAME: a server on a fresh database of $store; sets url_NAME, token_NAME.
serve() {
  local name=$1
  fresh_db "$store" "groups_$name"
  serve_scimd "$scimd" "$db" "$work/$store-$name.log"
  declare -g "url_$name=$url" "token_$name=$token"
}

for store in $only; do
  serve small
  serve large
  for size in small large; do
    url_var=url_$size token_var=token_$size users_var=$size
    # Seeding only (no scenario): the seeded ids are kept for the rounds.
    "$bench" --url "${!url_var}" --token "${!token_var}" --users "${!users_var}" --groups 0 \
      --scenarios get_user --duration 0.2 --seed-file "$work/$store-$size.seed" >/dev/null
  done
  for round in $(seq 1 "$runs"); do
    for size in small large; do
      url_var=url_$size token_var=token_$size users_var=$size
      "$bench" --url "${!url_var}" --token "${!token_var}" --users "${!users_var}" --groups 0 \
        --scenarios create_group --duration "$duration" --seed-file "$work/$store-$size.seed" \
        --json "$work/$store-$size-$round.json" >/dev/null
    done
  done
  python3 - "$work" "$store" "$runs" "$small" "$large" "$out/group-create-$store-$day.json" <<'PY'
import json, statistics, sys
work, store, runs, small, large, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
def outcome(size, r):
    with open(f"{work}/{store}-{size}-{r}.json") as f:
        return next(o for o in json.load(f)["results"] if o["scenario"] == "create_group")
rounds = [(outcome("small", r), outcome("large", r)) for r in range(1, runs + 1)]
ratios = [l["p50_ms"] / s["p50_ms"] for s, l in rounds]
med = lambda xs: statistics.median(xs)
row = {
    "store": store,
    "small_users": int(small), "large_users": int(large),
    "small": {"rps": med([s["rps"] for s, _ in rounds]), "p50_ms": med([s["p50_ms"] for s, _ in rounds])},
    "large": {"rps": med([l["rps"] for _, l in rounds]), "p50_ms": med([l["p50_ms"] for _, l in rounds])},
    "p50_ratio_median": med(ratios), "p50_ratios": ratios,
    "errors": sum(s["errors"] + s["non_2xx"] + l["errors"] + l["non_2xx"] for s, l in rounds),
}
json.dump(row, open(out, "w"), indent=1)
print(f"{store}: {small} users p50 {row['small']['p50_ms']:.2f} ms ({row['small']['rps']:.0f}/s); "
      f"{large} users p50 {row['large']['p50_ms']:.2f} ms ({row['large']['rps']:.0f}/s); "
      f"ratio {row['p50_ratio_median']:.2f} (rounds: {' '.join(f'{r:.2f}' for r in ratios)}); errors {row['errors']}")
PY
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  drop_dbs
done
