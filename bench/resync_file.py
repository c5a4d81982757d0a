#!/usr/bin/env python3
"""A customer file as a month's re-sync from another system would bring it,
made from `kehu export customers` of the database it will be imported into:
of every 10 rows, 7 change their employee count (and address, when the
file has one: updates), 2 stay as they are (unchanged) and 1 becomes a
company the database does not hold (new code, no USCC, a name of the demo's characters in a new order:
new customers, each checked for likely duplicates by name, sound and
abbreviation). Seeded, so the same input gives the same file.

    resync_file.py EXPORT.csv OUT.csv [SEED]
"""
import csv
import random
import sys

src, out = sys.argv[1], sys.argv[2]
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
with open(src, encoding="utf-8-sig", newline="") as f:
    rows = list(csv.reader(f))
header, body = rows[0], rows[1:]
col = {h: i for i, h in enumerate(header)}
code, name = col["客户编号"], col["客户名称"]
uscc = col.get("统一社会信用代码")
employees = next(i for h, i in col.items() if h.startswith("企业规模"))
address = col.get("地址")
chars = [c for r in body[:20000] for c in r[name][2:6]]
with open(out, "w", encoding="utf-8-sig", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    for n, r in enumerate(body):
        kind = n % 10
        if kind < 7:
            r[employees] = str(int(r[employees] or 0) + 1 + rng.randrange(50))
            if address is not None and r[address]:
                r[address] = r[address] + f"{rng.randrange(1, 40)}号楼"
        elif kind == 9:
            r[code] = f"R{n:08d}"
            if uscc is not None:
                r[uscc] = ""
            r[name] = r[name][:2] + "".join(rng.choice(chars) for _ in range(4)) + "有限公司"
        w.writerow(r)
