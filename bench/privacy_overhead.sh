#!/usr/bin/env bash
# Issue 7's speed target: field masking and encryption at rest add ≤ 10 %
# to the customer list over HTTP. Two release binaries — one from before
# masking and encryption (OLD) and this one (NEW) — serve copies of one
# demo database in turns, OLD, NEW, OLD, NEW …, in one run: customer
# list, customer detail, and the contact list (the endpoint whose rows are
# decrypted), wrk at 32 connections.
#
#   git worktree add /tmp/kehu-old 3225d55 && (cd /tmp/kehu-old && cargo build --release -p kehu)
#   cargo build --release -p kehu
#   bench/privacy_overhead.sh /tmp/kehu-old/target/release/kehu target/release/kehu /tmp/kehu-privacy.db
#   bench/privacy_overhead.sh OLD NEW postgres://kehu:kehu@127.0.0.1:5432/kehu_privacy
#
# The third argument is a SQLite file or a PostgreSQL URL. The database is
# made by OLD (`demo --customers $CUSTOMERS`, default 1,000,000) when
# missing; NEW gets a copy (a file copy; on PostgreSQL `CREATE DATABASE …
# TEMPLATE`, named with `_new`), migrated and with every contact sealed
# (`kehu keys seal`). Each copy's jobs are marked done for the next hour,
# so the servers' scheduled work does not run during the measurement, and
# each server gets SETTLE seconds (30) after start before it is measured
# (PREPARE_ONLY=1 stops before measuring; KINDS="list" measures only the
# list, ROUNDS=4 takes four turns each). ROLE (default admin) is the role
# of the reader the requests are made as: `service` masks and withholds
# business fields as well as personal ones.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
sql() { db_sql "$@"; }
OLD=${1:?old kehu binary}
NEW=${2:?new kehu binary}
DB=${3:?SQLite database file or PostgreSQL URL}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-2}
KINDS=${KINDS:-list detail contacts}
PORT=${PORT:-18632}
export KEHU_BACKUP_DIR=off KEHU_LOG=warn KEHU_RATE_LIMIT=off
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

case "$DB" in
  postgres://*|postgresql://*)
    PG=1
    OLD_URL=$DB
    NEW_URL="${DB}_new"
    export KEHU_KEY_FILE="/tmp/${DB##*/}.key"
    # A URL's server, with the maintenance database: to create and copy databases.
    ADMIN_URL="${DB%/*}/postgres"
    exists() { [ "$(sql "$ADMIN_URL" "SELECT 1 FROM pg_database WHERE datname = '${1##*/}'")" = 1 ]; }
    ;;
  *)
    PG=
    OLD_URL="sqlite://$DB"
    NEW_URL="sqlite://${DB%.db}-new.db"
    export KEHU_KEY_FILE="${DB%.db}.key"
    exists() { [ -f "${1#sqlite://}" ]; }
    ;;
esac

if ! exists "$OLD_URL"; then
  [ -z "$PG" ] || sql "$ADMIN_URL" "CREATE DATABASE ${OLD_URL##*/}"
  /usr/bin/time -f "OLD demo load: %e s, %M KB" "$OLD" --db "$OLD_URL" demo --customers "${CUSTOMERS:-1000000}"
  if exists "$NEW_URL"; then
    if [ -n "$PG" ]; then sql "$ADMIN_URL" "DROP DATABASE ${NEW_URL##*/}"; else rm -f "${NEW_URL#sqlite://}"; fi
  fi
fi
prepare() { # BIN URL → a bearer token
  local bin=$1 url=$2
  quiet_jobs "$url" # bench/lib.sh
  local reader="bench-${ROLE:-admin}"
  "$bin" --db "$url" user add "$reader" --role "${ROLE:-admin}" --password-stdin <<<"loadtest-password-123" >/dev/null 2>&1 || true
  "$bin" --db "$url" token create "$reader"
}
if ! exists "$NEW_URL"; then
  if [ -n "$PG" ]; then
    sql "$ADMIN_URL" "CREATE DATABASE ${NEW_URL##*/} TEMPLATE ${OLD_URL##*/}"
  else
    sql "$OLD_URL" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
    cp "${OLD_URL#sqlite://}" "${NEW_URL#sqlite://}"
  fi
  /usr/bin/time -f "NEW migrate + seal every contact: %e s, %M KB" "$NEW" --db "$NEW_URL" keys seal
fi
OLD_TOKEN=$(prepare "$OLD" "$OLD_URL")
NEW_TOKEN=$(prepare "$NEW" "$NEW_URL")
# PREPARE_ONLY=1: make and prepare the databases now, measure later on a quiet machine.
[ -z "${PREPARE_ONLY:-}" ] || exit 0
MAX_ID=$(sql "$OLD_URL" "SELECT MAX(id) FROM customers")
CONTACTS=$(sql "$OLD_URL" "SELECT COUNT(*) FROM contacts")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F); ${OLD_URL%%:*}; $MAX_ID customers, $CONTACTS contacts; wrk -t2 -c$CONNECTIONS -d${DURATION}s; reader role ${ROLE:-admin}"

SCRIPTS=$(mktemp -d)
trap 'rm -rf "$SCRIPTS"; [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true' EXIT
LIST_PATH="/api/v1/customers?industry=%E5%88%B6%E9%80%A0%E4%B8%9A&sales_region=%E5%8D%8E%E4%B8%9C&sort=-purchase_12m_fen&limit=50"
run() { # LABEL BIN URL TOKEN
  local label=$1 bin=$2 url=$3 token=$4
  "$bin" --db "$url" serve --addr "127.0.0.1:$PORT" &
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
  for kind in $KINDS; do
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
  run OLD "$OLD" "$OLD_URL" "$OLD_TOKEN"
  run NEW "$NEW" "$NEW_URL" "$NEW_TOKEN"
done
