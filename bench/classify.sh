#!/usr/bin/env bash
# Full classification of a demo database, then the same computation as
# one SQL query (and in DuckDB for SQLite) as the baseline, in one run.
#   bench/classify.sh DATABASE_URL [AS_OF]
# DATABASE_URL: sqlite:///path.db or postgres://…; the demo must be loaded.
# The first `kehu classify` stores everyone's first classes (every customer
# changes); the second is the re-evaluation the target is about: everyone
# evaluated again, only changes stored.
set -euo pipefail
url=$1
as_of=${2:-$(date +%F)}
kehu=${KEHU:-target/release/kehu}
here=$(dirname "$0")
run() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
echo "== kehu classify (first: stores every class)"
run "$kehu" --db "$url" classify --as-of "$as_of" | tail -12
echo "== kehu classify (again: re-evaluates everyone, stores the changes)"
run "$kehu" --db "$url" classify --as-of "$as_of" | tail -12
case $url in
  sqlite://*)
    path=${url#sqlite://}
    echo "== baseline: one SQL query in SQLite"
    python3 "$here/baseline_sql.py" sqlite "$path" "$as_of"
    echo "== baseline: DuckDB over Parquet"
    python3 "$here/baseline_sql.py" duckdb "$path" "$as_of" ;;
  postgres://*)
    echo "== baseline: one SQL query in PostgreSQL"
    python3 "$here/baseline_sql.py" postgres "$url" "$as_of" ;;
esac
