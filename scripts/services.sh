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

# PostgreSQL's files go to tmpfs (/dev/shm) when it has room: every test clones the migrated
# template (CREATE DATABASE ... TEMPLATE writes ~12 MB in ~850 files) and drops it, ~750 times a
# run. On ext4 that was 0.3-0.5 CPU-s of kernel time per clone on the 2-core machine, on tmpfs
# 0.03; tests/domain's PostgreSQL CPU went from 60 to 15 s. A data dir already under $DIR is
# kept (a server started before this change). OMNI_TEST_PG_DATA names the data dir outright.
pg_data() {
  if [ -n "${OMNI_TEST_PG_DATA:-}" ]; then echo "$OMNI_TEST_PG_DATA"; return; fi
  if [ -f "$DIR/pg/PG_VERSION" ]; then echo "$DIR/pg"; return; fi
  local free_kb
  free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
  if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "${free_kb:-0}" -ge $((2 * 1024 * 1024)) ]; then
    echo "/dev/shm/omni-test-pg-$(printf %s "$(realpath -m "$DIR")" | md5sum | cut -c1-12)"
  else
    echo "$DIR/pg"
  fi
}
PG_DATA=$(pg_data)
# In memory the write-ahead log is bounded lower than the default 1 GB (each clone logs its ~12 MB).
PG_WAL=""
case "$PG_DATA" in /dev/shm/*) PG_WAL="-c max_wal_size=256MB -c min_wal_size=32MB" ;; esac

start() {
  mkdir -p "$DIR"
  chmod 777 "$DIR"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust --no-sync >"$DIR/initdb.log" 2>&1
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$DIR/pg.log" -w -o \
      "-h 127.0.0.1 -p $PG_PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 $PG_WAL" start >/dev/null
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
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
  # Memory, not disk: a stopped server's files are removed (every run builds its own template).
  case "$PG_DATA" in /dev/shm/*) as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 || rm -rf "$PG_DATA" ;; esac
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
