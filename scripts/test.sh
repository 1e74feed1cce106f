#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: apt packages (PostgreSQL, Redis,
# Chromium) when missing, the Python package with test extras, npm packages where a lockfile
# exists; then start PostgreSQL (its files on tmpfs when /dev/shm has room: scripts/services.sh)
# + Redis on loopback, run ruff, mypy, lint-imports (the layer
# contracts in pyproject.toml) and pytest on parallel workers (OMNI_TEST_WORKERS, default 3:
# the suite also waits on browsers, servers and rate limits, so on a 2-core CI machine three
# workers finished in 18 min 12 s where two took 20 min 47 s; 0 runs serially), and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)  # text to speech (docs/dialer.md)
command -v sox >/dev/null 2>&1 || missing+=(sox libsox-fmt-mp3)  # prompt conversion (WAV/MP3 → 8 kHz)
[ -x /usr/sbin/slapd ] || missing+=(slapd ldap-utils)  # a real OpenLDAP for LDAP sign-in (docs/auth.md)
ls /usr/lib/*/kamailio/modules/websocket.so >/dev/null 2>&1 || missing+=(kamailio kamailio-websocket-modules)  # softphone tests (SIP over WebSocket)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# playwright: the driver only, tests use Debian's chromium.
.venv/bin/python -m pip install --quiet -e ".[test]" "playwright>=1.49"

# The static checks need only the Python packages: they run while npm installs and builds and
# the services start (those mostly wait on the disk), and are waited for before pytest.
checks_log="$(mktemp)"
(
  set -e
  echo "== ruff (at ${SECONDS} s)"; .venv/bin/ruff check .
  echo "== mypy (at ${SECONDS} s)"; .venv/bin/mypy
  echo "== lint-imports (at ${SECONDS} s)"; .venv/bin/lint-imports
) >"$checks_log" 2>&1 &
checks=$!
npm_pids=()
for lock in $(git ls-files '*package-lock.json' 2>/dev/null); do
  (cd "$(dirname "$lock")" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build) &
  npm_pids+=($!)
done
for pid in "${npm_pids[@]}"; do wait "$pid"; done

echo "== services (at ${SECONDS} s)"  # after the apt, pip and npm installs
eval "$(scripts/services.sh start)"
trap 'scripts/services.sh stop' EXIT

# Each step says when it starts (seconds since this script began): where a CI run's time goes.
checks_ok=0
wait "$checks" || checks_ok=$?
cat "$checks_log"
rm -f "$checks_log"
if [ "$checks_ok" != 0 ]; then
  echo "static checks failed (above)" >&2
  exit "$checks_ok"
fi
workers="${OMNI_TEST_WORKERS:-3}"
parallel=()
[ "$workers" = 0 ] || parallel=(-n "$workers" --dist loadgroup)
echo "== pytest (at ${SECONDS} s)"; .venv/bin/python -m pytest "${parallel[@]}" --durations=30 "$@"
