#!/usr/bin/env bash
# A hot standby of the local PostgreSQL (127.0.0.1:5432) under streaming replication, made
# with pg_basebackup into DIR and started on PORT; used for `database_read_url`.
#
#   .ci/pg_replica.sh start DIR PORT   make it (anew) and start it; waits until it answers
#   .ci/pg_replica.sh stop DIR         stop it (fast shutdown)
#   .ci/pg_replica.sh resume DIR PORT  start a stopped one again
#
# The replica takes TLS with a certificate for localhost and 127.0.0.1 from a CA of its own,
# made here: DIR.ca.pem is that CA, for `sslmode=verify-full&sslrootcert=DIR.ca.pem`.
# The primary must accept replication connections from 127.0.0.1: a line is added to its
# pg_hba.conf when missing, and the server reloaded. Runs the server as the `postgres` user
# (PostgreSQL refuses to run as root).
set -euo pipefail
cmd=$1 dir=$2 port=${3:-5433}
version=$(ls /etc/postgresql | head -n1)
bin=/usr/lib/postgresql/$version/bin
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_admin() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

wait_ready() {
  for _ in $(seq 1 100); do
    pg_isready -q -h 127.0.0.1 -p "$port" && return 0
    sleep 0.2
  done
  echo "the replica on port $port did not start"; cat "$dir.log" 2>/dev/null | tail -20; exit 1
}

start_server() {
  as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir.log" -w -t 60 \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c hot_standby=on -c hot_standby_feedback=on" start >/dev/null
  wait_ready
}

case $cmd in
  start)
    hba=$(psql_admin -c 'SHOW hba_file')
    if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$hba"; then
      echo "host replication all 127.0.0.1/32 trust" >>"$hba"
      psql_admin -c 'SELECT pg_reload_conf()' >/dev/null
    fi
    if [ -f "$dir/postmaster.pid" ]; then as_postgres "$bin/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir" && mkdir -p "$dir" && chown postgres:postgres "$dir" 2>/dev/null || true
    chmod 700 "$dir"
    # -R writes standby.signal and primary_conninfo: the copy starts as a streaming standby.
    as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p 5432 -U postgres -D "$dir" -R -X stream -c fast
    # Debian keeps a cluster's configuration in /etc, outside the copied directory.
    [ -f "$dir/postgresql.conf" ] || as_postgres touch "$dir/postgresql.conf"
    tls=$(mktemp -d)
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=scimd test CA" \
      -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
      -extfile "$tls/san.ext" -out "$tls/server.pem" 2>/dev/null
    install -o postgres -g postgres -m 600 "$tls/server.key" "$dir/server.key" 2>/dev/null || install -m 600 "$tls/server.key" "$dir/server.key"
    install -o postgres -g postgres -m 644 "$tls/server.pem" "$dir/server.pem" 2>/dev/null || install -m 644 "$tls/server.pem" "$dir/server.pem"
    cp "$tls/ca.pem" "$dir.ca.pem"
    rm -rf "$tls"
    printf "ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n" | as_postgres tee -a "$dir/postgresql.conf" >/dev/null
    [ -f "$dir/pg_hba.conf" ] || as_postgres sh -c "printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >'$dir/pg_hba.conf'"
    start_server
    # Replication is streaming when the primary lists the standby's WAL receiver.
    for _ in $(seq 1 100); do
      [ "$(psql_admin -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" -ge 1 ] && break
      sleep 0.2
    done
    echo "replica streaming on 127.0.0.1:$port"
    ;;
  stop)
    as_postgres "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  resume)
    start_server
    ;;
  *)
    echo "usage: $0 start|stop|resume DIR [PORT]"; exit 2
    ;;
esac
