#!/usr/bin/env bash
# Same-run A/B of generation throughput between two builds of vouch: SQLite,
# PDF rendering off (VOUCH_RENDER_WORKERS=N in the environment turns it on
# with N workers), CONNECTIONS connections for SECONDS seconds, alternating
# OLD and NEW ROUNDS times, each on a fresh `vouch serve --demo`.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [seconds] [connections] [rounds]
#
# With VOUCH_DATABASE_URL set to a PostgreSQL database, each round runs on
# it instead, dropped and created again first (from the server's
# `postgres` database).
#
# Traffic goes to 127.0.0.1 only; each load is bounded by its duration.
set -uo pipefail
cd "$(dirname "$0")/.."
OLD="$1"; NEW="$2"; DURATION="${3:-15}"; CONNECTIONS="${4:-8}"; ROUNDS="${5:-2}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
fresh_database() {
  [ -n "${VOUCH_DATABASE_URL:-}" ] || return 0
  local db="${VOUCH_DATABASE_URL##*/}"
  psql "${VOUCH_DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
}
run() {
  local bin="$1" port="$2" dir; dir=$(mktemp -d)
  fresh_database
  VOUCH_LOG=warn VOUCH_RENDER_WORKERS="${VOUCH_RENDER_WORKERS:-0}" "$bin" serve --demo --data-dir "$dir" --listen "127.0.0.1:$port" >"$dir/out.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.25; done
  curl -sf -u alice:demo -X PUT "http://127.0.0.1:$port/organizations/acme/compliance-subscriptions/soc2" >/dev/null
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/post-report.lua \
    "http://127.0.0.1:$port/organizations/acme/compliance-reports" 2>&1 |
    awk '/Requests\/sec/{r=$2} / 50%/{p50=$2} / 99%/{p99=$2} END{printf "%s req/s p50 %s p99 %s\n", r, p50, p99}'
  kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"
}
for _ in $(seq 1 "$ROUNDS"); do
  printf "old: "; run "$OLD" 18181
  printf "new: "; run "$NEW" 18182
done
