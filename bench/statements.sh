#!/usr/bin/env bash
# Statements per generation: a fresh `vouch serve --demo` (rendering off)
# with sqlx's statement log on, 8 connections of SOC 2 generation for
# SECONDS seconds, and the statements logged during the load divided by the
# reports inserted. A custom `BEGIN` and `COMMIT` are not logged.
#
#   bench/statements.sh BINARY [seconds]
#
# With VOUCH_DATABASE_URL set to a PostgreSQL database, it runs there,
# dropped and created again first (from the server's `postgres` database).
# Traffic goes to 127.0.0.1 only; the load is bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$1"; DURATION="${2:-5}"; PORT=18195
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
dir=$(mktemp -d)
env=(VOUCH_LOG=sqlx::query=debug VOUCH_RENDER_WORKERS=0)
if [ -n "${VOUCH_DATABASE_URL:-}" ]; then
  db="${VOUCH_DATABASE_URL##*/}"
  psql "${VOUCH_DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" 2>/dev/null
  env+=(VOUCH_DATABASE_URL="$VOUCH_DATABASE_URL")
fi
env "${env[@]}" "$BIN" serve --demo --data-dir "$dir" --listen "127.0.0.1:$PORT" >"$dir/out.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.25; done
curl -sf -u alice:demo -X PUT "http://127.0.0.1:$PORT/organizations/acme/compliance-subscriptions/soc2" >/dev/null
sleep 0.5
count() { grep -c "$1" "$dir/out.log" || true; }
s0=$(count 'summary='); r0=$(count 'INSERT INTO reports')
wrk -t2 -c8 -d"${DURATION}s" -s bench/post-report.lua \
  "http://127.0.0.1:$PORT/organizations/acme/compliance-reports" >/dev/null
sleep 0.5
s1=$(count 'summary='); r1=$(count 'INSERT INTO reports')
python3 -c "print(f'{($s1 - $s0) / ($r1 - $r0):.2f} statements per generation over {$r1 - $r0} generations')"
echo "the run's statements (start-up included), by kind:"
grep -o 'summary="[^"]*"' "$dir/out.log" | sort | uniq -c | sort -rn | head -40
