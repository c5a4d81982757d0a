"""Baseline for bench/predict.sh: the Python package `lifetimes` fitting
BG/NBD and Gamma-Gamma on the same summary file, median and best of RUNS."""
import json, sys, time
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

path, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
d = pd.read_csv(path)
repeat = d[d.frequency > 0]
times = []
for _ in range(runs):
    t = time.perf_counter()
    bg = BetaGeoFitter(penalizer_coef=0.0).fit(d["frequency"], d["recency"], d["T"])
    gg = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])
    times.append((time.perf_counter() - t) * 1e3)
times.sort()
out = {"customers": len(d), "runs": runs, "median_ms": round(times[len(times) // 2], 2), "best_ms": round(times[0], 2)}
out.update({k: round(float(v), 6) for k, v in bg.params_.items()})
out.update({k: round(float(v), 6) for k, v in gg.params_.items()})
print(json.dumps(out))
