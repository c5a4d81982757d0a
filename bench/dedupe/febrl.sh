#!/usr/bin/env bash
# kehu dedupe vs the Python Record Linkage Toolkit on the Febrl data sets:
# quality (precision, recall, F1) and whole-process time, in one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p kehu >/dev/null
data=crates/kehu-core/tests/data/febrl
fields=given_name,surname,street_number,address_1,address_2,suburb,postcode,state,date_of_birth,soc_sec_id
out=$(mktemp -d)
for set in dataset1 dataset3; do
  echo "== $set"
  target/release/kehu dedupe "$data/$set.csv" --fields "$fields" --id-field rec_id >"$out/kehu.csv"
  python3 bench/dedupe/recordlinkage_febrl.py "$data/$set.csv" >"$out/rl.csv"
  echo -n "kehu dedupe:    "; python3 bench/dedupe/score_pairs.py "$data/$set.csv" "$out/kehu.csv"
  echo -n "recordlinkage:  "; python3 bench/dedupe/score_pairs.py "$data/$set.csv" "$out/rl.csv"
  if command -v farm-bench >/dev/null; then
    farm-bench -n 5 --timeout 300 --vs "python3 bench/dedupe/recordlinkage_febrl.py $data/$set.csv" -- \
      target/release/kehu dedupe "$data/$set.csv" --fields "$fields" --id-field rec_id
  else
    /usr/bin/time -f "kehu dedupe %e s %M KB" target/release/kehu dedupe "$data/$set.csv" --fields "$fields" --id-field rec_id >/dev/null
    /usr/bin/time -f "recordlinkage %e s %M KB" python3 bench/dedupe/recordlinkage_febrl.py "$data/$set.csv" >/dev/null
  fi
done
rm -rf "$out"
