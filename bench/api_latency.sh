#!/usr/bin/env bash
# Customer list and detail over HTTP at 32 concurrent clients (wrk, bounded
# runs on loopback), with the same list query run directly in sqlite3 / psql
# as the baseline, in the same run.
#
#   bench/api_latency.sh sqlite:///tmp/kehu-bench.db
#   bench/api_latency.sh postgres://kehu:kehu@127.0.0.1:5432/kehu_bench
#
# The database must hold demo data (`kehu demo --customers 1000000`); set
# LOAD=N to load N demo customers first. DURATION (seconds, default 20) and
# CONNECTIONS (default 32) tune the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:?database URL}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18631}
BIN=target/release/kehu

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -x "$BIN" ] || cargo build --release -p kehu
if [ -n "${LOAD:-}" ]; then "$BIN" --db "$DB" demo --customers "$LOAD"; fi

"$BIN" --db "$DB" user add bench --role admin --password-stdin <<<"loadtest-password-123" >/dev/null 2>&1 || true
TOKEN=$("$BIN" --db "$DB" token create bench)
KEHU_LOG=warn KEHU_RATE_LIMIT=off "$BIN" --db "$DB" serve --addr "127.0.0.1:$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

LIST_PATH="/api/v1/customers?industry=%E5%88%B6%E9%80%A0%E4%B8%9A&sales_region=%E5%8D%8E%E4%B8%9C&sort=-purchase_12m_fen&limit=50"
MAX_ID=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/customers?sort=-id&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
ROWS=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$LIST_PATH" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F); database $DB; customers up to id $MAX_ID; list returns $ROWS rows"

SCRIPTS=$(mktemp -d)
cat >"$SCRIPTS/list.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.path = "$LIST_PATH"
LUA
cat >"$SCRIPTS/detail.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
math.randomseed(7)
request = function() return wrk.format("GET", "/api/v1/customers/" .. math.random(1, $MAX_ID)) end
LUA
for kind in list detail; do
  echo "== API $kind: wrk -t2 -c$CONNECTIONS -d${DURATION}s"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$SCRIPTS/$kind.lua" "http://127.0.0.1:$PORT" | grep -E 'Latency|50%|90%|99%|Requests/sec|requests in|Non-2xx|Socket errors'
done
kill $SERVER 2>/dev/null || true
wait $SERVER 2>/dev/null || true

# The baseline: the SQL the list endpoint runs, straight into the database.
SQL="SELECT id, code, name, industry, sales_region, status, purchase_12m_fen, last_order_on, owner_id, team, custom_fields FROM customers WHERE industry = '制造业' AND sales_region = '华东' ORDER BY purchase_12m_fen DESC, id DESC LIMIT 51"
case "$DB" in
  sqlite://*)
    FILE=${DB#sqlite://}
    echo "== baseline: sqlite3, the list query 1000 times in one connection"
    python3 - "$FILE" "$SQL" <<'PY'
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1]); q = sys.argv[2]
for _ in range(20): con.execute(q).fetchall()
samples = []
for _ in range(1000):
    t = time.perf_counter(); con.execute(q).fetchall(); samples.append((time.perf_counter() - t) * 1000)
samples.sort()
print(f"sqlite3 list query: mean {sum(samples)/len(samples):.3f} ms, p50 {samples[499]:.3f} ms, p99 {samples[989]:.3f} ms")
PY
    ;;
  postgres://*|postgresql://*)
    echo "== baseline: pgbench, the list query at $CONNECTIONS clients for ${DURATION}s"
    echo "$SQL;" >"$SCRIPTS/list.sql"
    pgbench -n -f "$SCRIPTS/list.sql" -c "$CONNECTIONS" -j 2 -T "$DURATION" --log --log-prefix="$SCRIPTS/pgb" "$DB" 2>/dev/null | grep -E 'latency average|tps'
    cat "$SCRIPTS"/pgb* | awk '{print $3/1000}' | sort -n | awk '{a[NR]=$1} END {printf "pgbench list query: p50 %.3f ms, p99 %.3f ms (%d samples)\n", a[int(NR*0.5)], a[int(NR*0.99)], NR}'
    ;;
esac
rm -rf "$SCRIPTS"
