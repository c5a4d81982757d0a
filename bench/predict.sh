#!/usr/bin/env bash
# BG/NBD + Gamma-Gamma fit: kehu against the Python package `lifetimes`
# (pip install lifetimes) on the CDNOW cohort, in one run; then kehu's
# BG/NBD fit on 1,000,000 simulated customers.
set -euo pipefail
cd "$(dirname "$0")/.."
data=crates/kehu-core/testdata/cdnow_summary.csv
cargo build --release -q -p kehu-core --example predict_fit
echo "lifetimes: $(python3 bench/predict_lifetimes.py "$data" 20)"
echo "kehu:      $(target/release/examples/predict_fit "$data" 50)"
echo "kehu, 1M:  $(target/release/examples/predict_fit --simulate 1000000)"
