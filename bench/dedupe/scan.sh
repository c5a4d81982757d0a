#!/usr/bin/env bash
# The whole-database duplicate scan on a demo database with planted,
# known duplicates: `kehu duplicates scan --truth` (time, memory, pairs
# completeness of the blocking, recall of the queue), and in the same run
# the baseline a hand-written SQL report would be: customers sharing an
# exact normalized name (`name_key`) or a contact phone (mobiles by their
# blind index: they are sealed), by self-join; and for the contact pass,
# contacts of one customer sharing a name, mobile, e-mail or ID number.
#   bench/dedupe/scan.sh sqlite://FILE [N]
# DATABASE_URL: e.g. after `kehu demo --customers 1000000`.
set -euo pipefail
url=$1
n=${2:-5000}
kehu=${KEHU:-target/release/kehu}
work=$(mktemp -d)
run() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
python3 "$(dirname "$0")/plant_duplicates.py" "${url#sqlite://}" "$n" "$work/variants.csv" "$work/truth.csv"
"$kehu" --db "$url" import customers "$work/variants.csv" --on-invalid skip | head -2
echo "== kehu duplicates scan --truth ($n known pairs)"
run "$kehu" --db "$url" duplicates scan --truth "$work/truth.csv"
case $url in
  sqlite://*)
    db=${url#sqlite://}
    echo "== baseline: SQL self-join on the normalized name or a shared contact phone"
    run sqlite3 "$db" <<SQL
CREATE TEMP TABLE p AS
  SELECT a.id AS a, b.id AS b FROM customers a JOIN customers b ON a.name_key = b.name_key AND a.id < b.id
  UNION
  SELECT x.customer_id, y.customer_id FROM contacts x JOIN contacts y ON x.mobile_idx = y.mobile_idx AND x.customer_id < y.customer_id
  UNION
  SELECT x.customer_id, y.customer_id FROM contacts x JOIN contacts y ON x.landline = y.landline AND x.customer_id < y.customer_id;
CREATE TEMP TABLE t(o TEXT, v TEXT);
.mode csv
.import --skip 1 $work/truth.csv t
SELECT COUNT(*) AS pairs,
  (SELECT COUNT(*) FROM t JOIN customers co ON co.code = t.o JOIN customers cv ON cv.code = t.v
     JOIN p ON p.a = MIN(co.id, cv.id) AND p.b = MAX(co.id, cv.id)) AS known_found FROM p;
SQL
    echo "== baseline: contacts of one customer sharing a name, mobile, e-mail or ID number (blind indexes), by self-join"
    run sqlite3 "$db" <<SQL
SELECT COUNT(*) AS contact_pairs FROM contacts x JOIN contacts y ON x.customer_id = y.customer_id AND x.id < y.id
 AND (x.name = y.name OR x.mobile_idx = y.mobile_idx OR x.email_idx = y.email_idx OR x.id_number_idx = y.id_number_idx);
SQL
    ;;
esac
rm -rf "$work"
