#!/usr/bin/env bash
# Reproduces the comparison in bench/README.md: scimd on SQLite, scimd on PostgreSQL and
# django-scim2-server on SQLite (under gunicorn's sync workers, and under gthread workers with
# keep-alive as Django sites run in production), each on a fresh database with the same data, measured by
# the same load tool on this machine.
#
# All servers run side by side and the scenarios go round them in turns: round 1 runs
# every scenario once against each server, then round 2, and so on; each figure is the
# median of its rounds. A shared machine's speed drifts over minutes; in turns, every
# server meets the same drift, so the ratios stay fair. `members` runs once per server at
# the end (it grows one group to 100,000 members).
#
# Usage: bench/run-comparison.sh [OUT_DIR]        (default: bench/results)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
#              RUNS (rounds, 3), DURATION (seconds per scenario, 5),
#              USERS (10000), ONLY (e.g. "sqlite django-gthread"; default
#              "sqlite pg django django-gthread"; also sqlite-full: SQLite with
#              synchronous=full, as durable as PostgreSQL's commit),
#              SCENARIOS (default: all but members), MEMBERS (0 skips the members scenario).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
mkdir -p "$out"
work=$(mktemp -d)
runs=${RUNS:-3} duration=${DURATION:-5} users=${USERS:-10000} only=${ONLY:-"sqlite pg django django-gthread"}
pg_admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
scenarios=${SCENARIOS:-get_user,filter,list,get_group,create_seq,create_concurrent,patch_user}
members=${MEMBERS:-1}

cargo build --release --locked -p scimd -p scimd-bench
scimd=target/release/scimd bench=target/release/scimd-bench

pids=() pgdb=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$pgdb" ] && psql "$pg_admin" -qAt -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
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

# Per server (by name): base URL, token, label, pid to sample (none for Django), extra
# tool options.
declare -A url token label pid extra
names=()

# start_scimd NAME LABEL DATABASE_URL [VAR=VALUE...] (settings for the server's environment)
start_scimd() {
  local name=$1 port
  port=$(free_port)
  token[$name]=$(SCIMD_DATABASE_URL=$3 "$scimd" token create --name bench 2>/dev/null)
  env "${@:4}" SCIMD_DATABASE_URL="$3" SCIMD_LISTEN="127.0.0.1:$port" "$scimd" serve >"$work/$name.log" 2>&1 &
  pids+=($!)
  pid[$name]=$!
  wait_ready "http://127.0.0.1:$port/readyz"
  url[$name]="http://127.0.0.1:$port/scim/v2" label[$name]=$2 extra[$name]="--member-sizes 100,1000,10000,100000 --member-samples 50"
  names+=("$name")
}

case " $only " in *" sqlite "*) start_scimd scimd-sqlite "scimd SQLite" "sqlite://$work/scimd.db" ;; esac
# Every acknowledged write durable against power loss, as PostgreSQL's default commit is.
case " $only " in *" sqlite-full "*)
  start_scimd scimd-sqlite-full "scimd SQLite (synchronous=full)" "sqlite://$work/scimd-full.db" SCIMD_SQLITE_SYNCHRONOUS=full ;;
esac
case " $only " in *" pg "*)
  pgdb="scimd_bench_$$"
  psql "$pg_admin" -qAt -c "CREATE DATABASE $pgdb"
  start_scimd scimd-pg "scimd PostgreSQL" "${pg_admin%/*}/$pgdb" ;;
esac
# start_django NAME LABEL THREADS (see bench/django-serve.sh)
start_django() {
  local name=$1 port
  port=$(free_port)
  token[$name]="bench-$RANDOM$RANDOM"
  bash bench/django-serve.sh "$port" "${token[$name]}" "$work/$name.sqlite3" 4 "$3" >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$port/scim/v2/ServiceProviderConfig"
  # One seeding client: concurrent creates on its SQLite fail with "database is locked".
  # Its members sizes stop at 10,000 (one add there takes most of a second).
  url[$name]="http://127.0.0.1:$port/scim/v2" label[$name]=$2 pid[$name]=""
  extra[$name]="--seed-concurrency 1 --member-sizes 100,1000,10000 --member-samples 20"
  names+=("$name")
}
case " $only " in *" django "*) start_django django "Django (sync workers)" 0 ;; esac
case " $only " in *" django-gthread "*) start_django django-gthread "Django (gthread, keep-alive)" 4 ;; esac

# tool NAME ARGS...: the load tool against one server, with its seed file.
tool() {
  local name=$1; shift
  # shellcheck disable=SC2086
  "$bench" --url "${url[$name]}" --token "${token[$name]}" --label "${label[$name]}" \
    ${pid[$name]:+--pid "${pid[$name]}"} --users "$users" --groups 100 --concurrency 8 \
    --seed-file "$work/$name.seed" ${extra[$name]} "$@"
}

for name in "${names[@]}"; do
  echo "== seeding ${label[$name]}"
  tool "$name" --scenarios get_user --duration 0.2 >/dev/null
done
for round in $(seq 1 "$runs"); do
  for name in "${names[@]}"; do
    echo "== round $round: ${label[$name]}"
    tool "$name" --scenarios "$scenarios" --duration "$duration" --runs 1 --json "$work/$name-round$round.json" >/dev/null
  done
done
if [ "$members" != 0 ]; then
  for name in "${names[@]}"; do
    echo "== members: ${label[$name]}"
    tool "$name" --scenarios members --json "$work/$name-members.json" >/dev/null
  done
fi

files=()
for name in "${names[@]}"; do
  python3 bench/merge.py "$out/$name.json" "$work/$name"-round*.json $([ "$members" != 0 ] && echo "$work/$name-members.json")
  files+=("$out/$name.json")
done
python3 bench/compare.py "${files[@]}"
