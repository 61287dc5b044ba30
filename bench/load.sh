#!/usr/bin/env bash
# Load benchmark of a release build with wrk, every figure against a floor
# measured in the same run:
#   1. in-process generation (evaluate, canonicalize, archive, sign: no HTTP,
#      no database) on 2 threads: the ceiling;
#   2. HTTP generation at CONNECTIONS connections on SQLite, with PDF
#      rendering on (the render queue's workers) and off (VOUCH_RENDER_WORKERS=0),
#      and downloads;
#   3. with VOUCH_TEST_POSTGRES_URL: the same on PostgreSQL, then two servers
#      on one database (throughput, PDFs rendered twice counted), then two
#      servers of which one is killed with -9 mid-run (no render job lost).
#
#   cargo build --release -p vouch && bench/load.sh [seconds] [connections]
#
# CARGO_TARGET_DIR is honoured. Traffic goes to 127.0.0.1 only; each load is
# bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
CONNECTIONS="${2:-8}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/vouch"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
[ -x "$BIN" ] || { echo "build first: cargo build --release -p vouch"; exit 2; }
PIDS=()
DIRS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for d in "${DIRS[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

# start PORT DATABASE_URL|'' [ENV=VALUE...]: a demo server in a fresh data
# directory; sets SERVER_PID and SERVER_DIR. A second server on the same
# database signs with the first one's key (SIGNING_KEY, when set).
start() {
  local port="$1" url="$2"; shift 2
  local dir; dir=$(mktemp -d); DIRS+=("$dir")
  local env=(VOUCH_LOG=warn "$@")
  [ -n "$url" ] && env+=(VOUCH_DATABASE_URL="$url")
  [ -n "${SIGNING_KEY:-}" ] && env+=(VOUCH_SIGNING_KEY_FILE="$SIGNING_KEY")
  env "${env[@]}" "$BIN" serve --demo --data-dir "$dir" --listen "127.0.0.1:$port" >"$dir/out.log" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID"); SERVER_DIR="$dir"
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.25; done
  echo "the server on $port did not start:"; cat "$dir/out.log"; exit 1
}

subscribe() { curl -sf -u alice:demo -X PUT "http://127.0.0.1:$1/organizations/acme/compliance-subscriptions/soc2" >/dev/null; }

# generate PORT... : wrk on each port at once for DURATION seconds; prints
# one line per port (requests/s, p50, p99, non-2xx) and sets RATE to the sum.
generate() {
  local outs=() port
  for port in "$@"; do
    local out; out=$(mktemp); outs+=("$out")
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/post-report.lua \
      "http://127.0.0.1:$port/organizations/acme/compliance-reports" >"$out" 2>&1 &
  done
  wait_wrk
  RATE=0
  for out in "${outs[@]}"; do
    local rps p50 p99 bad
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1=="50%" {print $2}' "$out"); p99=$(awk '$1=="99%" {print $2}' "$out")
    bad=$(awk '/Non-2xx/ {print $NF}' "$out"); bad=${bad:-0}
    printf '   %8.1f req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$rps" "$p50" "$p99" "$bad"
    RATE=$(python3 -c "print($RATE + $rps)")
    P50="$p50"; P99="$p99"
    rm -f "$out"
  done
}
wait_wrk() { while pgrep -x wrk >/dev/null; do sleep 0.2; done; }

# The ratio of two durations as wrk prints them (12.3ms, 1.2s, 900us).
ratio() {
  python3 - "$1" "$2" <<'PY'
import re, sys
def secs(t):
    n, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", t).groups()
    return float(n) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]
print(f"{secs(sys.argv[1]) / secs(sys.argv[2]):.1f}")
PY
}

# jobs SQL-RUNNER: the render queue's counts and the PDFs stored, once the
# queue has drained (at most 120 s); prints them and sets DRAINED_IN.
queue_report() {
  local query="$1" start; start=$(date +%s.%N)
  local row
  for _ in $(seq 1 600); do
    row=$($query "SELECT (SELECT COUNT(*) FROM reports WHERE status = 'complete'), (SELECT COUNT(*) FROM report_pdfs), (SELECT COUNT(*) FROM render_jobs WHERE state IN ('queued','running')), (SELECT COUNT(*) FROM render_jobs WHERE state = 'failed'), (SELECT COALESCE(MAX(attempts), 0) FROM render_jobs), (SELECT COUNT(*) FROM render_jobs WHERE attempts > 1)")
    set -- ${row//|/ }
    [ "$3" = 0 ] && break
    sleep 0.2
  done
  DRAINED_IN=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
  echo "   packets $1, PDFs stored $2, jobs left $3, failed $4, most attempts $5, jobs taken more than once $6 (queue drained ${DRAINED_IN} s after the load)"
  JOBS=("$@")
}
sqlite_query() { python3 -c 'import sqlite3,sys; print("|".join(map(str, sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone())))' "$SERVER_DIR/vouch.db" "$1"; }
pg_query() { psql "$PG_URL" -Atqc "$1"; }

# renders PORT DIR: PDF renderings the server on PORT ran (its metrics).
renders() {
  curl -sf -H "Authorization: Bearer $(cat "$2/dev-admin-token")" "http://127.0.0.1:$1/metrics" \
    | awk '/^vouch_pdf_renders_total/ {n += $2} END {print n + 0}'
}

echo "== in-process generation (the ceiling): evaluate + canonicalize + archive + sign, 2 threads"
CARGO_TARGET_DIR="$TARGET" cargo bench --locked -q -p vouch --bench generate -- "$DURATION" 2 | tee /tmp/vouch-inprocess.$$
INPROC=$(grep -o '[0-9]* packets/s' /tmp/vouch-inprocess.$$ | grep -o '^[0-9]*'); rm -f /tmp/vouch-inprocess.$$

single() {
  local backend="$1" url="$2" query="$3"
  echo "== $backend: generation (POST /compliance-reports, SOC 2, 3 services), ${DURATION} s, $CONNECTIONS connections, PDF rendering on"
  start 18181 "$url"; subscribe 18181
  generate 18181; local on="$RATE" p50="$P50" p99="$P99"
  queue_report "$query"
  echo "   HTTP / in-process: $(python3 -c "print(f'{$on / $INPROC:.2f}')")   p99 / p50: $(ratio "$p99" "$p50")"
  local report; report=$(curl -sf -u carol:demo "http://127.0.0.1:18181/organizations/acme/compliance-reports?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["reports"][0]["report_id"])')
  echo "== $backend: download (GET /compliance-reports/{id}), ${DURATION} s, $CONNECTIONS connections"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/auth.lua "http://127.0.0.1:18181/organizations/acme/compliance-reports/$report" | grep -E "Requests/sec|50%|99%|Non-2xx"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  echo "== $backend: generation with PDF rendering off (VOUCH_RENDER_WORKERS=0)"
  [ -n "$url" ] && reset_pg
  start 18181 "$url" VOUCH_RENDER_WORKERS=0; subscribe 18181
  generate 18181; local off="$RATE"
  echo "   rendering on / off: $(python3 -c "print(f'{$on / $off:.2f}')")"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SINGLE_RATE="$on"
}

single sqlite "" sqlite_query

if [ -z "${VOUCH_TEST_POSTGRES_URL:-}" ]; then
  echo "PostgreSQL skipped: VOUCH_TEST_POSTGRES_URL is not set"
  exit 0
fi
DB="vouch_load_$$"
PG_URL="${VOUCH_TEST_POSTGRES_URL%/*}/$DB"
reset_pg() {
  psql "$VOUCH_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
}
trap 'cleanup; psql "$VOUCH_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
reset_pg
single postgres "$PG_URL" pg_query

echo "== postgres, two servers on one database, ${DURATION} s, $CONNECTIONS connections each, PDF rendering on"
reset_pg
start 18181 "$PG_URL"; A_PID=$SERVER_PID; A_DIR=$SERVER_DIR
SIGNING_KEY="$A_DIR/dev-signing-key.pem" start 18182 "$PG_URL"; B_DIR=$SERVER_DIR
subscribe 18181
generate 18181 18182; TWO="$RATE"
queue_report pg_query
R_A=$(renders 18181 "$A_DIR"); R_B=$(renders 18182 "$B_DIR")
echo "   two servers / one: $(python3 -c "print(f'{$TWO / $SINGLE_RATE:.2f}')")   renderings: $R_A + $R_B = $((R_A + R_B)) for ${JOBS[0]} packets (rendered twice: $((R_A + R_B - ${JOBS[0]})))"
kill "$A_PID" "$SERVER_PID"; wait 2>/dev/null || true

echo "== postgres, two servers, one killed with -9 halfway (render lease 3 s)"
reset_pg
start 18181 "$PG_URL" VOUCH_RENDER_LEASE=3s; A_PID=$SERVER_PID; A_DIR=$SERVER_DIR
SIGNING_KEY="$A_DIR/dev-signing-key.pem" start 18182 "$PG_URL" VOUCH_RENDER_LEASE=3s; B_PID=$SERVER_PID
subscribe 18181
( sleep "$(python3 -c "print($DURATION / 2)")"; kill -9 "$B_PID" ) &
generate 18181 18182 >/dev/null
queue_report pg_query
if [ "${JOBS[0]}" = "${JOBS[1]}" ] && [ "${JOBS[2]}" = 0 ] && [ "${JOBS[3]}" = 0 ]; then
  echo "   no job lost: every one of the ${JOBS[0]} packets has its PDF; ${JOBS[5]} jobs the killed server held were taken again"
else
  echo "   JOBS LOST: ${JOBS[*]}"; exit 1
fi
kill "$A_PID"; wait 2>/dev/null || true
