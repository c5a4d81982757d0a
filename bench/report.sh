#!/usr/bin/env bash
# The quarterly classification report of one scheme on a loaded database:
# `kehu report classification` (JSON, whole process) three times, then the
# same aggregates as SQL in the store's own database and in DuckDB over the
# tables exported to Parquet (`pip install duckdb`; from PostgreSQL through
# psql's \copy).
#   bench/report.sh DATABASE_URL PERIOD [SCHEME]
# BASELINES (default "store duckdb") picks the baselines: the store's own
# database and/or DuckDB. On 1,000,000 SQLite customers
# the window functions take many minutes: BASELINES=duckdb skips them.
# Prepare: kehu demo --customers 1000000; kehu classify --as-of (the end of
# the previous period); kehu classify.
set -euo pipefail
cd "$(dirname "$0")/.."
url=$1 period=$2 scheme=${3:-value_tier}
kehu=${KEHU:-target/release/kehu}
read -r prev_start start end < <(python3 - "$period" <<'PY'
import sys, datetime as dt
p = sys.argv[1]
y, q = p.split("-Q")
y, q = int(y), int(q)
start = dt.date(y, 3 * q - 2, 1)
end = (dt.date(y + (q == 4), (3 * q) % 12 + 1, 1) - dt.timedelta(days=1))
pm = start.month - 3
prev = dt.date(y - (pm < 1), pm + 12 if pm < 1 else pm, 1)
print(prev, start, end)
PY
)
for run in 1 2 3; do
  /usr/bin/time -f "kehu report, run $run: %e s, %M KiB" "$kehu" --db "$url" report classification --period "$period" --scheme "$scheme" > /tmp/kehu-report.json
done
python3 -c "
import json; r = json.load(open('/tmp/kehu-report.json'))
for l in r['classes']: print('kehu', l['class'], l['customers'], l['revenue_fen'], l['orders'], l['churn_base'], l['churned'], sep='\t')"
baselines=${BASELINES:-store duckdb}
case "$url" in
  sqlite://*) db=${url#sqlite://}
              [[ $baselines == *store* ]] && python3 bench/report_baseline.py sqlite "$db" "$scheme" "$prev_start" "$start" "$end"
              [[ $baselines == *duckdb* ]] && python3 bench/report_baseline.py duckdb "$db" "$scheme" "$prev_start" "$start" "$end" ;;
  postgres*)  [[ $baselines == *store* ]] && python3 bench/report_baseline.py postgres "$url" "$scheme" "$prev_start" "$start" "$end"
              [[ $baselines == *duckdb* ]] && python3 bench/report_baseline.py duckdb "$url" "$scheme" "$prev_start" "$start" "$end" ;;
esac
true
