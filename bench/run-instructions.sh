#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: the same count for the same
# binary, data and requests whatever else the machine is doing, where requests per second on
# two shared cores wander by 10-15% between rounds. For changes to scimd's own CPU work (a
# read's rendering, the middleware); not for anything that waits (the disk, PostgreSQL).
#
# Each binary serves a copy of one seeded SQLite database (10,000 users, 100 groups) under
# callgrind, and one client sends the scenario's requests one after another. Every count is
# the difference between a run of FEW+REQUESTS requests and a run of FEW, divided by REQUESTS:
# start-up, migrations and the first requests' caches cancel out; background work a request
# causes (the activity log's writer, the checkpointer) is counted.
#
# Usage: bench/run-instructions.sh BINARY [BINARY...]   (default: target/release/scimd)
#        Needs valgrind. The database is seeded by the first binary: give the oldest first.
# Environment: REQUESTS (2000), FEW (200), SCENARIOS (get_user,filter,get_group,patch_user,create_seq)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${REQUESTS:-2000} few=${FEW:-200}
scenarios=${SCENARIOS:-get_user,filter,get_group,patch_user,create_seq}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
source bench/lib.sh
cargo build --release --locked -p scimd -p scimd-bench
bench=target/release/scimd-bench
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(target/release/scimd)

# The seeded database, its token and its population, made once by the first binary.
fresh_db sqlite seeded
serve_scimd "${bins[0]}" "$db" "$work/seed.log"
"$bench" --url "$url" --token "$token" --users 10000 --groups 100 \
  --seed-file "$work/seed.json" --scenarios get_user --duration 0.2 --label seed >/dev/null
kill "${pids[-1]}" && wait "${pids[-1]}" 2>/dev/null || true
seeded_token=$token

# count BINARY SCENARIO N: the instructions callgrind counted in a server that answered N requests.
count() {
  local bin=$1 scenario=$2 n=$3 port vpid out
  rm -rf "$work/run" && mkdir "$work/run" && cp "$work"/seeded*.db "$work/run/"
  port=$(free_port) out="$work/run/callgrind.out"
  SCIMD_DATABASE_URL="sqlite://$work/run/seeded.db" SCIMD_LISTEN=127.0.0.1:$port SCIMD_LOG_LEVEL=warn \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve >"$work/run/valgrind.log" 2>&1 &
  vpid=$!
  for _ in $(seq 1 600); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  "$bench" --url "http://127.0.0.1:$port/scim/v2" --token "$seeded_token" --users 10000 --groups 100 \
    --seed-file "$work/seed.json" --scenarios "$scenario" --concurrency 1 --max-requests "$n" \
    --duration 600 --label callgrind >"$work/run/bench.txt" 2>&1
  grep -q "errors 0, non-2xx 0$" "$work/run/bench.txt" || { cat "$work/run/bench.txt"; exit 1; }
  kill -INT "$vpid"; wait "$vpid" 2>/dev/null || true
  awk '/^==[0-9]+== Collected :/ {print $4}' "$work/run/valgrind.log"
}

printf '%-12s' scenario; for b in "${bins[@]}"; do printf ' %22s' "$(basename "$b")"; done; echo
for scenario in ${scenarios//,/ }; do
  printf '%-12s' "$scenario"
  for b in "${bins[@]}"; do
    short=$(count "$b" "$scenario" "$few") long=$(count "$b" "$scenario" $((few + requests)))
    printf ' %22s' "$(python3 -c "print(f'{($long - $short) / $requests / 1000:,.1f}k instr/request')")"
  done
  echo
done
