#!/usr/bin/env bash
# A customer CSV imported into a database that already holds customers:
# `kehu import` (every row read, standardized, validated, looked up by its
# natural key, checked for a likely duplicate by normalized name, all in
# one transaction), then in the same run the baselines: sqlite3's own
# `.import` of the same raw file into an empty table (no checks at all)
# and, for PostgreSQL, `\copy` (COPY) of it into an empty text table.
#   bench/import.sh DATABASE_URL FILE
# FILE: e.g. `kehu export customers --out FILE` of another demo database.
set -euo pipefail
url=$1
file=$2
kehu=${KEHU:-target/release/kehu}
run() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
"$kehu" --db "$url" migrate >/dev/null
echo "== rows: $(($(wc -l <"$file") - 1))"
echo "== kehu import customers --dry-run"
run "$kehu" --db "$url" import customers "$file" --dry-run --errors /tmp/kehu-import-errors.csv | head -2
echo "== kehu import customers --on-invalid skip (applied in one transaction)"
run "$kehu" --db "$url" import customers "$file" --on-invalid skip --errors /tmp/kehu-import-errors.csv | head -2
echo "== the same file again (idempotent: nothing to write)"
run "$kehu" --db "$url" import customers "$file" --on-invalid skip | head -2
# An empty table with one text column per header, for the raw loads.
create=$(python3 - "$file" <<'PY'
import csv, sys
with open(sys.argv[1], encoding="utf-8-sig", newline="") as f:
    header = next(csv.reader(f))
cols = ", ".join('"%s" TEXT' % h.replace('"', '""') for h in header)
print(f"DROP TABLE IF EXISTS raw_import; CREATE TABLE raw_import ({cols});")
PY
)
case $url in
  sqlite://*)
    echo "== baseline: sqlite3 .import of the raw file (no checks)"
    tmp=$(mktemp -d)
    sqlite3 "$tmp/raw.db" "$create"
    run sqlite3 "$tmp/raw.db" ".mode csv" ".import --skip 1 $file raw_import" "SELECT COUNT(*) FROM raw_import;"
    rm -rf "$tmp" ;;
  postgres://*)
    echo "== baseline: PostgreSQL COPY of the raw file (no checks)"
    psql -q "$url" -c "$create"
    run psql -q "$url" -c "\\copy raw_import FROM '$file' WITH (FORMAT csv, HEADER true)"
    psql -q "$url" -c "DROP TABLE raw_import" ;;
esac
