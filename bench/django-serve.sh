#!/usr/bin/env bash
# Serves django-scim2-server (pinned) on a fresh SQLite database under gunicorn, for the
# comparison in bench/README.md.
# Usage: bench/django-serve.sh PORT TOKEN DB_FILE [WORKERS] [THREADS]
# THREADS 0 (the default): sync workers, one request at a time each, a new connection per
# request (HTTP and database). THREADS n: gthread workers of n threads, as Django sites run in
# production: HTTP keep-alive, and each thread keeps its database connection.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port=${1:?port} token=${2:?token} db=${3:?database file} workers=${4:-4} threads=${5:-0}
venv="${BENCH_DJANGO_VENV:-$HOME/.cache/scimd-bench/django-venv}"
if ! "$venv/bin/python" -c "import django_scim2_server, gunicorn" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "django-scim2-server==1.1.0" "gunicorn==23.0.0"
fi
cd "$here/django"
export BENCH_TOKEN="$token" BENCH_DJANGO_DB="$db" DJANGO_SETTINGS_MODULE=scimbench.settings
rm -f "$db" "$db-wal" "$db-shm"
"$venv/bin/python" manage.py migrate -v 0
mode=()
if [ "$threads" != 0 ]; then
  mode=(-k gthread --threads "$threads" --keep-alive 30)
  export BENCH_DJANGO_CONN_MAX_AGE=600
fi
exec "$venv/bin/gunicorn" scimbench.wsgi -w "$workers" "${mode[@]}" -b "127.0.0.1:$port" \
  --access-logfile /dev/null --error-logfile - --log-level warning
