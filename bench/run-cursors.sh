#!/usr/bin/env bash
# Cursor paging (RFC 9865) against depth: per store, one server on a fresh database seeded
# with USERS users (through the SCIM API), then in RUNS rounds of DURATION seconds, 8
# clients: `cursor_first` (GET /Users?cursor=&count=100), `cursor_deep` (the page DEPTH
# users deep, by the cursor found by paging there) and, for comparison, `list` (index
# paging, 100 at a random startIndex). The ratio is the deep page's p50 over the first's.
#
# Usage: bench/run-cursors.sh [OUT_DIR]        (default: bench/results)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              USERS (101000), DEPTH (100000), RUNS (5), DURATION (5), ONLY ("sqlite pg").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
users=${USERS:-101000} depth=${DEPTH:-100000} runs=${RUNS:-5} duration=${DURATION:-5}
only=${ONLY:-"sqlite pg"}
day=$(date -u +%F)
source bench/lib.sh

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench

for store in $only; do
  fresh_db "$store" cursors
  serve_scimd "$scimd" "$db" "$work/$store.log"
  "$bench" --url "$url" --token "$token" --users "$users" --groups 0 --prefix cursors \
    --scenarios cursor_first,cursor_deep,list --cursor-depth "$depth" --runs "$runs" \
    --duration "$duration" --label "scimd ($store)" --fail-on-errors --json "$work/$store.json" >/dev/null
  python3 - "$work/$store.json" "$store" "$users" "$depth" "$out/cursors-$store-$day.json" <<'PY'
import json, sys
src, store, users, depth, out = sys.argv[1:6]
results = {o["scenario"]: o for o in json.load(open(src))["results"]}
first, deep, index = results["cursor_first"], results["cursor_deep"], results["list"]
row = {
    "store": store, "users": int(users), "depth": int(depth),
    "cursor_first": {"rps": first["rps"], "p50_ms": first["p50_ms"]},
    "cursor_deep": {"rps": deep["rps"], "p50_ms": deep["p50_ms"]},
    "index_random_offset": {"rps": index["rps"], "p50_ms": index["p50_ms"]},
    "deep_over_first_p50": deep["p50_ms"] / first["p50_ms"],
}
json.dump(row, open(out, "w"), indent=1)
print(f"{store}: page 1 {first['rps']:.0f}/s p50 {first['p50_ms']:.2f} ms; "
      f"{depth} deep {deep['rps']:.0f}/s p50 {deep['p50_ms']:.2f} ms (ratio {row['deep_over_first_p50']:.2f}); "
      f"index at random offsets {index['rps']:.0f}/s p50 {index['p50_ms']:.2f} ms")
PY
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  drop_dbs
done
