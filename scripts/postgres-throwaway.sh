#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL 15 server on 127.0.0.1 for benchmarks and local runs
# (the tests start their own from C++: test/fakes/postgres_server.h).
#
#   scripts/postgres-throwaway.sh start DIR [PORT]   # prints the conninfo of database "massa"
#   scripts/postgres-throwaway.sh stop DIR
#
# Data and socket live in DIR (created, owned by the postgres user: initdb refuses root).
# fsync stays on: what is measured against it is durable.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
cmd=${1:?start or stop}
dir=${2:?directory}
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
  start)
    port=${3:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres: "$dir"
      chmod a+x "$(dirname "$(realpath "$dir")")"  # e.g. a 0700 mktemp -d parent
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    fi
    rm -f "$dir/data/postmaster.pid"
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir" >/dev/null
    as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt \
      -c "SELECT 1 FROM pg_database WHERE datname='massa'" | grep -q 1 ||
      as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres massa
    echo "postgresql://postgres@127.0.0.1:$port/massa"
    ;;
  stop)
    [ -f "$dir/data/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  *) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
