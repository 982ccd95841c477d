#!/usr/bin/env bash
# Reproduces the comparison in bench/README.md: scimd on SQLite, scimd on PostgreSQL and
# django-scim2-server on SQLite, each on a fresh database, measured by the same load tool
# with the same data, one after another on this machine.
#
# Usage: bench/run-comparison.sh [OUT_DIR]        (default: bench/results)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              RUNS (3), DURATION (5), ONLY (e.g. "sqlite pg" to skip Django).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
work=$(mktemp -d)
runs=${RUNS:-3} duration=${DURATION:-5} only=${ONLY:-"sqlite pg django"}
pg_admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
common=(--users 10000 --groups 100 --concurrency 8 --duration "$duration" --runs "$runs")

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench

server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
# wait_ready URL: until the server answers at all (any status).
wait_ready() {
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" != 000 ] && return 0
    sleep 0.1
  done
  echo "the server at $1 did not become ready" >&2; exit 1
}

# scimd_run LABEL FILE DATABASE_URL
scimd_run() {
  local label=$1 file=$2 db=$3 port token
  port=$(free_port)
  token=$(SCIMD_DATABASE_URL=$db "$scimd" token create --name bench 2>/dev/null)
  SCIMD_DATABASE_URL=$db SCIMD_LISTEN=127.0.0.1:$port "$scimd" serve >"$work/$file.log" 2>&1 &
  server=$!
  wait_ready "http://127.0.0.1:$port/readyz"
  "$bench" --url "http://127.0.0.1:$port/scim/v2" --token "$token" --label "$label" --pid "$server" \
    "${common[@]}" --member-sizes 100,1000,10000,100000 --member-samples 50 --json "$out/$file.json"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

case " $only " in *" sqlite "*)
  scimd_run "scimd SQLite" scimd-sqlite "sqlite://$work/scimd.db" ;;
esac

case " $only " in *" pg "*)
  db="scimd_bench_$$"
  psql "$pg_admin" -qAt -c "CREATE DATABASE $db"
  scimd_run "scimd PostgreSQL" scimd-pg "${pg_admin%/*}/$db"
  psql "$pg_admin" -qAt -c "DROP DATABASE $db WITH (FORCE)" ;;
esac

case " $only " in *" django "*)
  port=$(free_port) token="bench-$RANDOM$RANDOM"
  bash bench/django-serve.sh "$port" "$token" "$work/django.sqlite3" 4 >"$work/django.log" 2>&1 &
  server=$!
  wait_ready "http://127.0.0.1:$port/scim/v2/ServiceProviderConfig"
  # One seeding client: concurrent creates on its SQLite fail with "database is locked".
  # Its members sizes stop at 10,000 (one add there takes most of a second).
  "$bench" --url "http://127.0.0.1:$port/scim/v2" --token "$token" --label "Django" --seed-concurrency 1 \
    "${common[@]}" --member-sizes 100,1000,10000 --member-samples 20 --json "$out/django.json"
  kill "$server"; wait "$server" 2>/dev/null || true; server="" ;;
esac

files=()
for f in scimd-sqlite scimd-pg django; do [ -f "$out/$f.json" ] && files+=("$out/$f.json"); done
python3 bench/compare.py "${files[@]}"
