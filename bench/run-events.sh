#!/usr/bin/env bash
# Change events under load. One server per store, on a fresh database, with two tenants:
# `quiet` (no event stream) and `streamed` (one push stream to a local receiver,
# `set-receiver`). 1) Creates (8 clients) and single-member adds (as Entra ID and Okta send
# them) run against each tenant in turns, RUNS rounds: the throughput with a stream against
# without, same server, same run. 2) Creates paced at RATE per second for LAG_SECONDS into the
# streamed tenant: the delay from each event's commit to its arrival at the receiver, p50 and
# p99.
#
# Usage: bench/run-events.sh [OUT_DIR]            (default: bench/results)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              USERS (2000), GROUP_COUNT (50), RUNS (5), DURATION (seconds per scenario, 5),
#              RATE (1000), LAG_SECONDS (10), ONLY ("sqlite pg").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
users=${USERS:-2000} groups=${GROUP_COUNT:-50} runs=${RUNS:-5} duration=${DURATION:-5}
rate=${RATE:-1000} lag_seconds=${LAG_SECONDS:-10}
only=${ONLY:-"sqlite pg"}
day=$(date -u +%F)
source bench/lib.sh

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench receiver=target/release/set-receiver


# The admin API: admin METHOD PATH [JSON] prints the answer.
admin() {
  python3 - "$root" "$admin_token" "$@" <<'PY'
import json, sys, urllib.request
root, token, method, path = sys.argv[1:5]
body = sys.argv[5].encode() if len(sys.argv) > 5 else None
req = urllib.request.Request(root + "/admin/v1" + path, data=body, method=method,
                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=30) as resp:
    print(resp.read().decode())
PY
}
field() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(eval("v" + sys.argv[1]))' "$1"; }

# Waits (at most 300 s) until the stream has delivered everything.
drained() {
  for _ in $(seq 1 3000); do
    [ "$(admin GET "/tenants/streamed/streams/$stream" | field '["backlog"]')" = 0 ] && return 0
    sleep 0.1
  done
  echo "the stream did not drain"; exit 1
}

for store in $only; do
  fresh_db "$store" events
  port=$(free_port) rx_port=$(free_port)
  root="http://127.0.0.1:$port"
  admin_token=$(SCIMD_DATABASE_URL=$db "$scimd" admin-token create --name bench 2>/dev/null)
  SCIMD_DATABASE_URL=$db SCIMD_LISTEN=127.0.0.1:$port SCIMD_LOG_LEVEL=warn "$scimd" serve >"$work/$store.log" 2>&1 &
  server=$!
  wait_ready "$root"
  "$receiver" "127.0.0.1:$rx_port" "$work/$store-received.txt" &
  rx=$!
  pids+=("$server" "$rx")

  for t in quiet streamed; do
    created=$(admin POST /tenants "{\"slug\": \"$t\"}")
    declare "base_$t=$(echo "$created" | field '["scim_base_url"]')"
    declare "token_$t=$(echo "$created" | field '["token"]["secret"]')"
  done
  stream=$(admin POST /tenants/streamed/streams "{\"name\": \"bench\", \"endpoint\": \"http://127.0.0.1:$rx_port/events\"}" | field '["id"]')

  # The same population in both tenants (seeding is not measured).
  for t in quiet streamed; do
    base="base_$t" token="token_$t"
    "$bench" --url "${!base}" --token "${!token}" --users "$users" --groups "$groups" --members-per-group 10 \
      --seed-file "$work/$store-$t.seed" --scenarios get_user --duration 0.2 --label seed >/dev/null
  done
  drained

  # 1) In turns: each round runs both scenarios against each tenant.
  for r in $(seq 1 "$runs"); do
    for t in quiet streamed; do
      base="base_$t" token="token_$t"
      "$bench" --url "${!base}" --token "${!token}" --seed-file "$work/$store-$t.seed" \
        --scenarios create_concurrent,add_member --duration "$duration" --pid "$server" \
        --label "$t" --json "$work/$store-$t-$r.json" >/dev/null
    done
  done
  drained

  # 2) Delivery lag at a steady RATE of creates.
  before=$(admin GET "/tenants/streamed/streams/$stream" | field '["cursor"]')
  "$bench" --url "$base_streamed" --token "$token_streamed" --seed-file "$work/$store-streamed.seed" \
    --scenarios create_concurrent --concurrency 32 --rate "$rate" --duration "$lag_seconds" \
    --label lag --json "$work/$store-lag.json" >/dev/null
  drained
  sleep 1
  python3 - "$root" "$admin_token" "$before" "$stream" "$work/$store-received.txt" "$work/$store-feed.json" <<'PY'
import json, sys, urllib.request
root, token, before, stream, received, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
events, after = [], before
while True:
    req = urllib.request.Request("%s/admin/v1/tenants/streamed/events?after=%d&limit=1000" % (root, after),
                                 headers={"Authorization": "Bearer " + token})
    page = json.load(urllib.request.urlopen(req, timeout=30))
    events += [{"seq": e["seq"], "time": e["time"]} for e in page["events"]]
    after = page["cursor"]
    if not page["more"]:
        break
json.dump(events, open(out, "w"))
PY
  kill "$server"; wait "$server" 2>/dev/null || true
  kill "$rx"; wait "$rx" 2>/dev/null || true

  python3 - "$work" "$store" "$runs" "$out/events-$store-$day.json" "$rate" <<'PY'
import datetime, json, statistics, sys
work, store, runs, out, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
def rounds(tenant, scenario):
    return [next(r for r in json.load(open("%s/%s-%s-%d.json" % (work, store, tenant, i)))["results"] if r["scenario"] == scenario)
            for i in range(1, runs + 1)]
result = {"store": store, "runs": runs, "throughput": {}, "lag": {}}
for scenario in ("create_concurrent", "add_member"):
    q, s = rounds("quiet", scenario), rounds("streamed", scenario)
    ratios = [b["rps"] / a["rps"] for a, b in zip(q, s)]
    result["throughput"][scenario] = {
        "quiet_rps": statistics.median(r["rps"] for r in q), "streamed_rps": statistics.median(r["rps"] for r in s),
        "quiet_p50_ms": statistics.median(r["p50_ms"] for r in q), "streamed_p50_ms": statistics.median(r["p50_ms"] for r in s),
        "ratios": ratios, "median_ratio": statistics.median(ratios)}
events = json.load(open("%s/%s-feed.json" % (work, store)))
def micros(t):
    d = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp() * 1_000_000)
first = {}
for line in open("%s/%s-received.txt" % (work, store)):
    at, jti = line.split()
    seq = int(jti.rsplit(".", 1)[1])
    first.setdefault(seq, int(at))
lags = sorted((first[e["seq"]] - micros(e["time"])) / 1000 for e in events if e["seq"] in first)
missing = sum(1 for e in events if e["seq"] not in first)
lag_run = next(r for r in json.load(open("%s/%s-lag.json" % (work, store)))["results"])
q = lambda p: lags[min(len(lags) - 1, int(round((len(lags) - 1) * p)))]
result["lag"] = {"target_rate": rate, "achieved_rps": lag_run["rps"], "events": len(events), "missing": missing,
                 "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": lags[-1]}
json.dump(result, open(out, "w"), indent=1)
print("\n%s: with a push stream / without, median of %d rounds in turns" % (store, runs))
print("| scenario | without: req/s, p50 | with: req/s, p50 | ratio (median of rounds) |")
print("|---|---|---|---|")
for name, t in result["throughput"].items():
    print("| %s | %.0f, %.2f ms | %.0f, %.2f ms | %.2f |" % (name, t["quiet_rps"], t["quiet_p50_ms"], t["streamed_rps"], t["streamed_p50_ms"], t["median_ratio"]))
l = result["lag"]
print("\ndelivery lag at %.0f creates/s (%d events, %d missing): p50 %.1f ms, p99 %.1f ms, max %.1f ms"
      % (l["achieved_rps"], l["events"], l["missing"], l["p50_ms"], l["p99_ms"], l["max_ms"]))
PY
  drop_dbs
done
