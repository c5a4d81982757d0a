#!/usr/bin/env bash
# Issue 7's speed target: field masking and encryption at rest add ≤ 10 %
# to the customer list over HTTP. Two release binaries — one from before
# masking and encryption (OLD) and this one (NEW) — serve copies of one
# SQLite demo database in turns, OLD, NEW, OLD, NEW …, in one run:
# customer list, customer detail, and the contact list (the endpoint whose
# rows are decrypted), wrk at 32 connections.
#
#   git worktree add /tmp/kehu-old 3225d55 && (cd /tmp/kehu-old && cargo build --release -p kehu)
#   cargo build --release -p kehu
#   bench/privacy_overhead.sh /tmp/kehu-old/target/release/kehu target/release/kehu /tmp/kehu-privacy.db
#
# The database is made by OLD (`demo --customers $CUSTOMERS`, default
# 1,000,000) when missing; NEW gets a copy, migrated and with every contact
# sealed (`kehu keys seal`). Each copy's jobs are marked done for the next
# hour, so the servers' scheduled work does not run during the measurement,
# and each server gets SETTLE seconds (30) after start before it is
# measured (PREPARE_ONLY=1 stops before measuring).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?old kehu binary}
NEW=${2:?new kehu binary}
DB=${3:?SQLite database file}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-18632}
export KEHU_BACKUP_DIR=off KEHU_LOG=warn KEHU_RATE_LIMIT=off
export KEHU_KEY_FILE="${DB%.db}.key"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

NEWDB="${DB%.db}-new.db"
if [ ! -f "$DB" ]; then
  /usr/bin/time -f "OLD demo load: %e s, %M KB" "$OLD" --db "sqlite://$DB" demo --customers "${CUSTOMERS:-1000000}"
  rm -f "$NEWDB"
fi
# The servers' scheduler is kept quiet: every job is marked done for the
# next hour in its own table (job_runs), event jobs' cursors at the end.
quiet_jobs() { # FILE
  python3 - "$1" <<'PY'
import datetime, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
today = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)).date().isoformat()
jobs = ["rollups", "predictions", "classify", "tag_rules", "anomalies", "strategy_tasks", "class_change_tasks",
        "complaint_tasks", "dormant_tasks", "reminders", "deliveries", "reports", "backup", "retention", "sessions"]
cursor = {"class_change_tasks": "SELECT COALESCE(MAX(id), 0) FROM class_history",
          "complaint_tasks": "SELECT COALESCE(MAX(id), 0) FROM interactions"}
for job in jobs:
    c = con.execute(cursor[job]).fetchone()[0] if job in cursor else 0
    con.execute("INSERT INTO job_runs (job, done_for, finished_at, cursor_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(job) DO UPDATE SET done_for = excluded.done_for, finished_at = excluded.finished_at, "
                "cursor_id = MAX(job_runs.cursor_id, excluded.cursor_id), lease_owner = NULL, lease_until = NULL",
                (job, today, later, c))
con.commit()
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
}
prepare() { # BIN FILE → a bearer token
  local bin=$1 file=$2
  quiet_jobs "$file"
  "$bin" --db "sqlite://$file" user add bench --role admin --password-stdin <<<"loadtest-password-123" >/dev/null 2>&1 || true
  "$bin" --db "sqlite://$file" token create bench
}
if [ ! -f "$NEWDB" ]; then
  python3 -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$DB"
  cp "$DB" "$NEWDB"
  /usr/bin/time -f "NEW migrate + seal every contact: %e s, %M KB" "$NEW" --db "sqlite://$NEWDB" keys seal
fi
OLD_TOKEN=$(prepare "$OLD" "$DB")
NEW_TOKEN=$(prepare "$NEW" "$NEWDB")
# PREPARE_ONLY=1: make and prepare the databases now, measure later on a quiet machine.
[ -z "${PREPARE_ONLY:-}" ] || exit 0
MAX_ID=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT MAX(id) FROM customers").fetchone()[0])' "$DB")
CONTACTS=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM contacts").fetchone()[0])' "$DB")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F); $MAX_ID customers, $CONTACTS contacts; wrk -t2 -c$CONNECTIONS -d${DURATION}s"

SCRIPTS=$(mktemp -d)
trap 'rm -rf "$SCRIPTS"; [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true' EXIT
LIST_PATH="/api/v1/customers?industry=%E5%88%B6%E9%80%A0%E4%B8%9A&sales_region=%E5%8D%8E%E4%B8%9C&sort=-purchase_12m_fen&limit=50"
run() { # LABEL BIN DBFILE TOKEN
  local label=$1 bin=$2 file=$3 token=$4
  "$bin" --db "sqlite://$file" serve --addr "127.0.0.1:$PORT" &
  SERVER=$!
  for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  # The segment index and caches load in the background at start: let them.
  sleep "${SETTLE:-30}"
  cat >"$SCRIPTS/list.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
wrk.path = "$LIST_PATH"
LUA
  cat >"$SCRIPTS/contacts.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
math.randomseed(11)
request = function() return wrk.format("GET", "/api/v1/contacts?customer_id=" .. math.random(1, $MAX_ID)) end
LUA
  cat >"$SCRIPTS/detail.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
math.randomseed(7)
request = function() return wrk.format("GET", "/api/v1/customers/" .. math.random(1, $MAX_ID)) end
LUA
  curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT$LIST_PATH" >/dev/null
  for kind in list detail contacts; do
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$SCRIPTS/$kind.lua" "http://127.0.0.1:$PORT" >"$SCRIPTS/out" || true
    awk -v label="$label" -v kind="$kind" '
      /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2} /Non-2xx/ {err=$NF}
      END {printf "%-4s %-8s p50 %8s  p99 %8s  %10s req/s  non-2xx %s\n", label, kind, p50, p99, rps, (err == "" ? 0 : err)}' "$SCRIPTS/out"
  done
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=
}
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  run OLD "$OLD" "$DB" "$OLD_TOKEN"
  run NEW "$NEW" "$NEWDB" "$NEW_TOKEN"
done
