#!/usr/bin/env python3
"""New orders at a steady rate over one keep-alive connection: a request
every 1/RATE s (the next one at once when one ran late), so two builds are
compared at the same load rather than each at its own top speed.

    bench/paced_orders.py HOST:PORT TOKEN MAX_ID TODAY RATE SECONDS

Prints p50/p90/p99/max of the request's latency (ms) and the rate reached."""
import http.client, json, random, sys, time

host, token, top, today, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
h, p = host.split(":")
conn = http.client.HTTPConnection(h, int(p))
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
random.seed(11)
samples, errors = [], 0
start = time.perf_counter()
due = start
while due - start < seconds:
    now = time.perf_counter()
    if now < due:
        time.sleep(due - now)
    body = json.dumps({"ordered_on": today, "amount_fen": random.randint(100000, 50000000), "product_line": "基准测试"})
    t = time.perf_counter()
    conn.request("POST", f"/api/v1/customers/{random.randint(1, top)}/orders", body, headers)
    r = conn.getresponse()
    r.read()
    samples.append((time.perf_counter() - t) * 1000)
    errors += r.status != 201
    due += 1 / rate
elapsed = time.perf_counter() - start
samples.sort()
q = lambda f: samples[min(len(samples) - 1, int(f * len(samples)))]
print(f"paced at {rate:g}/s: {len(samples)} requests in {elapsed:.1f} s ({len(samples) / elapsed:.0f}/s), "
      f"p50 {q(0.50):.2f} ms, p90 {q(0.90):.2f} ms, p99 {q(0.99):.2f} ms, max {samples[-1]:.2f} ms, non-201 {errors}")
