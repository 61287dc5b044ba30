#!/usr/bin/env bash
# Load benchmark of a release build with wrk: packet generation and download
# throughput and latency, on SQLite and (with VOUCH_TEST_POSTGRES_URL) PostgreSQL.
#
#   cargo build --release && bench/load.sh [seconds] [connections]
#
# Traffic goes to 127.0.0.1 only; each run is bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-20}"
CONNECTIONS="${2:-8}"
BIN=target/release/vouch
PORT=18181
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
[ -x "$BIN" ] || { echo "build first: cargo build --release"; exit 2; }

run() {
  local backend="$1" url="$2"
  local dir; dir=$(mktemp -d)
  local env=()
  [ -n "$url" ] && env=(VOUCH_DATABASE_URL="$url")
  env "${env[@]}" VOUCH_LOG=warn "$BIN" serve --demo --data-dir "$dir" --listen "127.0.0.1:$PORT" >"$dir/out.log" 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null || true' RETURN
  for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
  local base="http://127.0.0.1:$PORT/organizations/acme"
  curl -sf -u alice:demo -X PUT "$base/compliance-subscriptions/soc2" >/dev/null
  local report; report=$(curl -sf -u carol:demo -X POST "$base/compliance-reports" -H 'Content-Type: application/json' -d '{"framework":"soc2"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["report_id"])')
  echo "== $backend: generation (POST /compliance-reports, soc2, 3 services), ${DURATION}s, $CONNECTIONS connections"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/post-report.lua "$base/compliance-reports" | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx|requests in"
  echo "== $backend: download (GET /compliance-reports/{id}), ${DURATION}s, $CONNECTIONS connections"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/auth.lua "$base/compliance-reports/$report" | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx|requests in"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

run sqlite ""
if [ -n "${VOUCH_TEST_POSTGRES_URL:-}" ]; then
  db="vouch_load_$(date +%s)"
  psql "$VOUCH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db"
  run postgres "${VOUCH_TEST_POSTGRES_URL%/*}/$db"
  psql "$VOUCH_TEST_POSTGRES_URL" -qc "DROP DATABASE $db WITH (FORCE)"
else
  echo "PostgreSQL skipped: VOUCH_TEST_POSTGRES_URL is not set"
fi
