#!/usr/bin/env bash
# SQLite: `GET /Users/{id}` against `GET /healthz` on the same server, measured with wrk
# (8 connections, 2 threads), in turns: RUNS rounds of DURATION seconds each. /healthz is the
# server's floor (HTTP, routing, no authentication, no database); the ratio says what share of
# that floor a read by id keeps.
#
# Usage: bench/run-healthz.sh          Needs wrk (Debian: apt-get install wrk).
# Environment: RUNS (5), DURATION (5), USERS (10000), BIN (the server binary; default
# target/release/scimd, built first).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5} duration=${DURATION:-5} users=${USERS:-10000}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
source bench/lib.sh
bin=${BIN:-target/release/scimd}
cargo build --release --locked -p scimd-bench
[ -n "${BIN:-}" ] || cargo build --release --locked -p scimd
fresh_db sqlite healthz
serve_scimd "$bin" "$db" "$work/healthz.log"
target/release/scimd-bench --url "$url" --token "$token" --users "$users" --groups 0 \
  --seed-file "$work/seed.json" --scenarios get_user --duration 0.2 --label seed >/dev/null
python3 - "$work/seed.json" "$work/ids.lua" <<'PY'
import json, sys
ids = [u[0] for u in json.load(open(sys.argv[1]))["users"]]
with open(sys.argv[2], "w") as f:
    f.write("ids = {" + ",".join(f'"{i}"' for i in ids) + "}\n")
PY
cat >>"$work/ids.lua" <<LUA
math.randomseed(os.time())
wrk.headers["Authorization"] = "Bearer $token"
request = function()
  return wrk.format("GET", "/scim/v2/Users/" .. ids[math.random(#ids)])
end
LUA
root=${url%/scim/v2}
for r in $(seq 1 "$runs"); do
  wrk -t2 -c8 -d"${duration}s" "$root/healthz" >"$work/h.txt"
  wrk -t2 -c8 -d"${duration}s" -s "$work/ids.lua" "$root" >"$work/g.txt"
  if grep -q 'Non-2xx' "$work/h.txt" "$work/g.txt"; then cat "$work/h.txt" "$work/g.txt"; exit 1; fi
  h=$(awk '/Requests\/sec/ {print $2}' "$work/h.txt") g=$(awk '/Requests\/sec/ {print $2}' "$work/g.txt")
  python3 -c "import sys; h, g = map(float, sys.argv[1:]); print(f'round $r: healthz {h:,.0f} req/s, get_user {g:,.0f} req/s, ratio {g / h:.2f}')" "$h" "$g"
done
