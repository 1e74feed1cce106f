#!/usr/bin/env bash
# Start or stop the PostgreSQL and Redis the tests use, on loopback only, in a scratch dir.
# PostgreSQL refuses to run as root, so it runs as the `postgres` user.
#   scripts/services.sh start   -> prints the OMNI_TEST_* variables to export
#   scripts/services.sh stop
set -euo pipefail
DIR=${OMNI_SERVICES_DIR:-/tmp/omni-test-services}
# Below Linux's ephemeral range (32768-60999): a client socket that happens to hold a port in
# that range made redis-server fail to bind while the suite ran on without it.
PG_PORT=${OMNI_TEST_PG_PORT:-25432}
REDIS_PORT=${OMNI_TEST_REDIS_PORT:-26379}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() {
  mkdir -p "$DIR"
  chmod 777 "$DIR"
  if [ ! -f "$DIR/pg/PG_VERSION" ]; then
    mkdir -p "$DIR/pg"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR/pg"
    as_pg "$PG_BIN/initdb" -D "$DIR/pg" -U postgres -A trust --no-sync >"$DIR/initdb.log" 2>&1
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w -o \
      "-h 127.0.0.1 -p $PG_PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
  fi
  if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR"
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
      echo "redis-server did not start on 127.0.0.1:$REDIS_PORT:" >&2
      tail -n 3 "$DIR/redis.log" >&2
      exit 1
    fi
  fi
  echo "export OMNI_TEST_PG_DSN=postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "export OMNI_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
}

stop() {
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
