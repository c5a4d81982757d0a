#!/usr/bin/env bash
# A quarter's strategy tasks for a loaded, classified demo database, then
# the same rows made by one hand-written INSERT … SELECT as the baseline.
#   bench/tasks.sh DATABASE_URL [PERIOD]
# DATABASE_URL: sqlite:///path.db or postgres://…; run `kehu demo` and
# `kehu classify` first. PERIOD defaults to next quarter (every slot ahead).
# The baseline writes into a copy of the tasks table with the same indexes
# and unique key: one row per customer and cadence slot of the preset
# 价值分层 strategies, every slot on its first day (no working-day
# calendar, no spreading, no owner levels).
set -euo pipefail
url=$1
period=${2:-}
kehu=${KEHU:-target/release/kehu}
if [ -z "$period" ]; then
  period=$(python3 -c 'import datetime as d; t=d.date.today(); q=(t.month-1)//3+1; y,q=(t.year,q+1) if q<4 else (t.year+1,1); print(f"{y}-Q{q}")')
fi
run() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
echo "== kehu tasks generate --period $period (first: makes every task)"
run "$kehu" --db "$url" tasks generate --period "$period"
echo "== again (idempotent: plans everything, makes nothing)"
run "$kehu" --db "$url" tasks generate --period "$period"
python3 "$(dirname "$0")/tasks_baseline.py" "$url" "$period"
