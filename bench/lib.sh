# Shared by the bench scripts (sourced): a work directory, free ports, a fresh database per
# store (PG_PARAMS, e.g. `sslmode=disable`, is added to PostgreSQL URLs), waiting for a
# server, and cleaning up on exit (the servers in `pids`, the PostgreSQL
# databases in `dbs`, the work directory).
pg_admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
pids=() dbs=()

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for d in "${dbs[@]}"; do psql "$pg_admin" -qAt -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1; done
  rm -rf "$work"
}
trap bench_cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# fresh_db STORE NAME: sets `db` to the URL of a new database of STORE (sqlite or pg).
fresh_db() {
  case $1 in
    sqlite) db="sqlite://$work/$2.db" ;;
    pg)
      local name="scimd_bench_$2_$$"
      psql "$pg_admin" -qAt -c "CREATE DATABASE $name" >/dev/null
      dbs+=("$name")
      db="${pg_admin%/*}/$name${PG_PARAMS:+?$PG_PARAMS}"
      ;;
    *) echo "unknown store $1 (sqlite, pg)"; exit 1 ;;
  esac
}

# drop_dbs: removes the PostgreSQL databases made so far (to free the disk between stores).
drop_dbs() {
  for d in "${dbs[@]}"; do psql "$pg_admin" -qAt -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null; done
  dbs=()
}

# wait_ready ROOT: until the server at ROOT answers /readyz (at most 30 s).
wait_ready() {
  for _ in $(seq 1 300); do curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "the server at $1 did not become ready"; exit 1
}

# serve_scimd BIN DATABASE_URL LOG: a SCIM token on the database, then `BIN serve` on a free
# port (logging warnings to LOG), ready; sets `url` (its SCIM root) and `token`.
serve_scimd() {
  local bin=$1 db=$2 log=$3 port
  port=$(free_port)
  token=$(SCIMD_DATABASE_URL=$db "$bin" token create --name bench 2>/dev/null)
  SCIMD_DATABASE_URL=$db SCIMD_LISTEN=127.0.0.1:$port SCIMD_LOG_LEVEL=warn "$bin" serve >"$log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$port"
  url="http://127.0.0.1:$port/scim/v2"
}
