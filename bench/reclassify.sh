#!/usr/bin/env bash
# Re-evaluating one customer after a new order, over HTTP: POST an order to a
# random customer (the server stores it, refreshes the customer's rollups and
# re-evaluates every published scheme for that customer in the same request)
# at one client, so the latency is the request's own, not queueing; then at
# a steady rate (RATE, default 250/s), so builds of different top speeds
# are compared at the same load. Baseline
# in the same run: the order's INSERT and rollup UPDATE alone, straight into
# the database (sqlite3 / pgbench).
#
#   bench/reclassify.sh sqlite:///tmp/kehu-bench.db
#   bench/reclassify.sh postgres://kehu:kehu@127.0.0.1:5432/kehu_bench
#
# The database must hold demo data (`kehu demo --customers 1000000`) and be
# classified for today (`kehu classify`), so the server only ranks customers
# for the percentile schemes at start; the run waits for that. Every other
# scheduled job is marked done for the next hour first (bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DB=${1:?database URL}
DURATION=${DURATION:-20}
PORT=${PORT:-18632}
BIN=${KEHU:-target/release/kehu}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -x "$BIN" ] || cargo build --release -p kehu
# Only the daily classification runs (it ranks everyone for the percentile
# schemes, or classifies everyone for today first): no other job competes
# with the requests measured.
quiet_jobs "$DB" classify
"$BIN" --db "$DB" user add bench --role admin --password-stdin <<<"loadtest-password-123" >/dev/null 2>&1 || true
TOKEN=$("$BIN" --db "$DB" token create bench)
LOG=$(mktemp)
KEHU_LOG=${KEHU_LOG:-info} KEHU_RATE_LIMIT=off "$BIN" --db "$DB" serve --addr "127.0.0.1:$PORT" 2>"$LOG" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; if [ -n "${KEEP_LOG:-}" ]; then cp "$LOG" "$KEEP_LOG"; fi; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
echo "waiting for the server to rank customers for the percentile schemes and load the segment index…"
START=$(date +%s)
# Ranked by the daily classification when it runs now, else on its own.
until grep -qE 'ranked customers for the percentile schemes|job finished.*job="classify"' "$LOG" \
  && grep -q "loaded the segment index" "$LOG"; do
  sleep 1
  [ $(( $(date +%s) - START )) -lt 900 ] || { echo "server never finished starting"; cat "$LOG"; exit 1; }
done
echo "ranked and loaded in $(( $(date +%s) - START )) s"
MAX_ID=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/customers?sort=-id&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
TODAY=$(TZ=Asia/Shanghai date +%F)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F); database $DB; customers up to id $MAX_ID"

SCRIPT=$(mktemp)
cat >"$SCRIPT" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(11)
request = function()
  local id = math.random(1, $MAX_ID)
  local body = '{"ordered_on": "$TODAY", "amount_fen": ' .. math.random(100000, 50000000) .. ', "product_line": "基准测试"}'
  return wrk.format("POST", "/api/v1/customers/" .. id .. "/orders", nil, body)
end
LUA
echo "== API: new order + re-evaluation of that customer, wrk -t1 -c1 -d${DURATION}s"
wrk -t1 -c1 -d"${DURATION}s" --latency -s "$SCRIPT" "http://127.0.0.1:$PORT" | grep -E 'Latency|50%|75%|90%|99%|Requests/sec|requests in|Non-2xx|Socket errors'
# The same requests at one steady rate for both builds alike (RATE=0: skip).
RATE=${RATE:-250}
if [ "$RATE" != 0 ]; then
  echo "== API: the same at a steady ${RATE} requests/s for ${DURATION}s (bench/paced_orders.py)"
  python3 bench/paced_orders.py "127.0.0.1:$PORT" "$TOKEN" "$MAX_ID" "$TODAY" "$RATE" "$DURATION"
fi
CHANGES=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/class-changes?cause=data_change&with_total=true&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
echo "class changes recorded with cause data_change: $CHANGES"
kill $SERVER 2>/dev/null || true
wait $SERVER 2>/dev/null || true
rm -f "$SCRIPT"

# The baseline: the order's own write (INSERT + the customer's rollup UPDATE) in one transaction.
case "$DB" in
  sqlite://*)
    FILE=${DB#sqlite://}
    echo "== baseline: sqlite3, INSERT order + UPDATE rollups in one transaction, 2000 times"
    python3 - "$FILE" "$MAX_ID" "$TODAY" <<'PY'
import random, sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None); top = int(sys.argv[2]); today = sys.argv[3]
con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=NORMAL")
random.seed(5); samples = []
for i in range(2000):
    cid = random.randint(1, top); amount = random.randint(100000, 50000000)
    t = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO orders (customer_id, ordered_on, amount_fen, product_line, created_at, updated_at) VALUES (?, ?, ?, '基准', ?, ?)", (cid, today, amount, today, today))
    con.execute("UPDATE customers SET purchase_12m_fen = purchase_12m_fen + ?, order_count = order_count + 1, last_order_on = ? WHERE id = ?", (amount, today, cid))
    con.execute("COMMIT")
    samples.append((time.perf_counter() - t) * 1000)
con.execute("DELETE FROM orders WHERE product_line = '基准'")
samples.sort()
print(f"sqlite3 order write: p50 {samples[999]:.3f} ms, p99 {samples[1979]:.3f} ms")
PY
    ;;
  postgres://*|postgresql://*)
    echo "== baseline: pgbench, INSERT order + UPDATE rollups in one transaction at 1 client for ${DURATION}s"
    SQL=$(mktemp)
    cat >"$SQL" <<SQLEOF
\set cid random(1, $MAX_ID)
\set amount random(100000, 50000000)
BEGIN;
INSERT INTO orders (customer_id, ordered_on, amount_fen, product_line, created_at, updated_at) VALUES (:cid, '$TODAY', :amount, '基准', now(), now());
UPDATE customers SET purchase_12m_fen = purchase_12m_fen + :amount, order_count = order_count + 1, last_order_on = '$TODAY' WHERE id = :cid;
COMMIT;
SQLEOF
    pgbench -n -f "$SQL" -c 1 -j 1 -T "$DURATION" -r "$DB" 2>/dev/null | grep -E 'latency average|tps|latency stddev'
    psql "$DB" -qc "DELETE FROM orders WHERE product_line = '基准'"
    rm -f "$SQL"
    ;;
esac
