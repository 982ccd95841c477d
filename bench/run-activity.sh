#!/usr/bin/env bash
# The activity log's cost: two servers on the same store, one with the activity log
# (the default), one without (`activity_log = false`), the same data seeded in each; the
# scenarios run against each server in turns, RUNS rounds, and each ratio is "with" over
# "without" in the same round.
#
# Usage: bench/run-activity.sh [OUT_DIR]          (default: bench/results)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              USERS (10000), RUNS (5), DURATION (seconds per scenario, 5),
#              SCENARIOS (get_user,filter,create_concurrent,patch_user,add_member), ONLY ("sqlite pg").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
users=${USERS:-10000} runs=${RUNS:-5} duration=${DURATION:-5}
scenarios=${SCENARIOS:-get_user,filter,create_concurrent,patch_user,add_member}
only=${ONLY:-"sqlite pg"}
day=$(date -u +%F)
source bench/lib.sh

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench

for store in $only; do
  for mode in on off; do
    fresh_db "$store" "activity_$mode"
    port=$(free_port)
    token=$(SCIMD_DATABASE_URL=$db "$scimd" token create --name bench 2>/dev/null)
    admin=$(SCIMD_DATABASE_URL=$db "$scimd" admin-token create --name bench 2>/dev/null)
    declare "admin_$mode=$admin" "root_$mode=http://127.0.0.1:$port"
    flag=true; [ "$mode" = off ] && flag=false
    SCIMD_DATABASE_URL=$db SCIMD_LISTEN=127.0.0.1:$port SCIMD_ACTIVITY_LOG=$flag SCIMD_LOG_LEVEL=warn \
      "$scimd" serve >"$work/$store-$mode.log" 2>&1 &
    pids+=($!)
    declare "pid_$mode=$!" "url_$mode=http://127.0.0.1:$port/scim/v2" "token_$mode=$token"
    wait_ready "http://127.0.0.1:$port"
    url="url_$mode"
    "$bench" --url "${!url}" --token "$token" --users "$users" --groups 50 --seed-file "$work/$store-$mode.seed" \
      --scenarios get_user --duration 0.2 --label seed >/dev/null
  done
  for r in $(seq 1 "$runs"); do
    for mode in on off; do
      url="url_$mode" token="token_$mode" pid="pid_$mode"
      "$bench" --url "${!url}" --token "${!token}" --seed-file "$work/$store-$mode.seed" --scenarios "$scenarios" \
        --duration "$duration" --pid "${!pid}" --label "activity-$mode" --json "$work/$store-$mode-$r.json" >/dev/null
    done
  done
  # Records dropped because the writer fell behind would make the log look cheaper than it
  # is: the run counts only if there were none.
  dropped=$(curl -fsS -H "Authorization: Bearer $admin_on" "$root_on/metrics" | sed -n 's/^scimd_activity_dropped_total //p')
  echo "$store: activity records dropped: $dropped"
  [ "$dropped" = 0 ] || { echo "the activity log dropped records: its cost is not measured"; exit 1; }
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  python3 - "$work" "$store" "$runs" "$out/activity-$store-$day.json" <<'PY'
import json, statistics, sys
work, store, runs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def load(mode, i):
    return {r["scenario"]: r for r in json.load(open("%s/%s-%s-%d.json" % (work, store, mode, i)))["results"]}
rounds = [(load("on", i), load("off", i)) for i in range(1, runs + 1)]
result = {"store": store, "runs": runs, "scenarios": {}}
print("\n%s: activity log on / off, median of %d rounds in turns" % (store, runs))
print("| scenario | off: req/s, p50 | on: req/s, p50 | ratio (median of rounds) |")
print("|---|---|---|---|")
for name in rounds[0][0]:
    on = [r[0][name] for r in rounds]
    off = [r[1][name] for r in rounds]
    ratios = [a["rps"] / b["rps"] for a, b in zip(on, off)]
    m = lambda xs, k: statistics.median(x[k] for x in xs)
    result["scenarios"][name] = {"off_rps": m(off, "rps"), "on_rps": m(on, "rps"), "off_p50_ms": m(off, "p50_ms"),
                                 "on_p50_ms": m(on, "p50_ms"), "ratios": ratios, "median_ratio": statistics.median(ratios)}
    s = result["scenarios"][name]
    print("| %s | %.0f, %.2f ms | %.0f, %.2f ms | %.2f |" % (name, s["off_rps"], s["off_p50_ms"], s["on_rps"], s["on_p50_ms"], s["median_ratio"]))
json.dump(result, open(out, "w"), indent=1)
PY
done
