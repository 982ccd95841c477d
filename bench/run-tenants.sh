#!/usr/bin/env bash
# Tenants at scale: is a lookup in one of 1,000 tenants of 100 users each as fast as in one
# tenant of 100,000 users? One server per store, on a fresh database: the tenant `default`
# gets USERS users, TENANTS further tenants (made through the admin API) get PER users each,
# all with the same userNames; then `get_user` and `filter` in the big tenant and
# `tenant_get_user` and `tenant_filter` (each request to a random small tenant) run in
# rounds, in one run of the load tool, all through tenant URLs (/t/{tenant}/scim/v2).
#
# Usage: bench/run-tenants.sh [OUT_DIR]           (default: bench/results)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              TENANTS (1000), PER (100), USERS (100000), RUNS (rounds, 5),
#              DURATION (seconds per scenario, 5), ONLY ("sqlite pg").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
tenants=${TENANTS:-1000} per=${PER:-100} users=${USERS:-100000} runs=${RUNS:-5} duration=${DURATION:-5}
only=${ONLY:-"sqlite pg"}
day=$(date -u +%F)
source bench/lib.sh

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench

for store in $only; do
  fresh_db "$store" tenants
  port=$(free_port)
  root="http://127.0.0.1:$port"
  token=$(SCIMD_DATABASE_URL=$db "$scimd" token create --name bench 2>/dev/null)
  admin=$(SCIMD_DATABASE_URL=$db "$scimd" admin-token create --name bench 2>/dev/null)
  SCIMD_DATABASE_URL=$db SCIMD_LISTEN=127.0.0.1:$port "$scimd" serve >"$work/$store.log" 2>&1 &
  server=$!
  pids+=("$server")
  wait_ready "$root"

  # The tenants, through the admin API: one line `BASE_URL TOKEN` each.
  python3 - "$root" "$admin" "$tenants" >"$work/tenants.txt" <<'EOF'
import json, sys, urllib.request
root, admin, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    req = urllib.request.Request(root + "/admin/v1/tenants", method="POST",
                                 data=json.dumps({"slug": "tenant-%04d" % i}).encode(),
                                 headers={"Authorization": "Bearer " + admin, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        t = json.load(resp)
    print(t["scim_base_url"], t["token"]["secret"])
EOF

  "$bench" --url "$root/t/default/scim/v2" --token "$token" --users "$users" --groups 0 \
    --tenants-file "$work/tenants.txt" --tenant-users "$per" \
    --scenarios get_user,tenant_get_user,filter,tenant_filter --runs "$runs" --duration "$duration" \
    --pid "$server" --label "scimd-$store" --json "$out/tenants-$store-$day.json"
  kill "$server"; wait "$server" 2>/dev/null || true
  drop_dbs
done

# The ratios: many small tenants against one big one, same run.
python3 - "$out" "$day" $only <<'EOF'
import json, sys
out, day, stores = sys.argv[1], sys.argv[2], sys.argv[3:]
print("\n| store | scenario | one big tenant: req/s, p50 | many small tenants: req/s, p50 | ratio of req/s |")
print("|---|---|---|---|---|")
for store in stores:
    r = {x["scenario"]: x for x in json.load(open("%s/tenants-%s-%s.json" % (out, store, day)))["results"]}
    for big, small in (("get_user", "tenant_get_user"), ("filter", "tenant_filter")):
        b, s = r[big], r[small]
        print("| %s | %s | %.0f, %.2f ms | %.0f, %.2f ms | %.2f |" % (store, big, b["rps"], b["p50_ms"], s["rps"], s["p50_ms"], s["rps"] / b["rps"]))
EOF
