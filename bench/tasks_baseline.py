#!/usr/bin/env python3
"""Baseline for the task-generation benchmark: the preset 价值分层
strategies' tasks for a quarter as one INSERT … SELECT, in the store's own
database, into a copy of the tasks table with the same indexes.

    bench/tasks_baseline.py sqlite:///PATH.db 2027-Q1
    bench/tasks_baseline.py postgres://URL 2027-Q1

Each slot's task falls on the slot's first day (kehu spreads them over the
slot's working days and picks the owner by level).
"""
import subprocess
import sys
import time

url, period = sys.argv[1], sys.argv[2]
year, q = int(period[:4]), int(period[-1])
months = [(year, (q - 1) * 3 + k + 1) for k in range(3)]
first = f"{year}-{months[0][1]:02d}-01"
# (class, kind, slot, due day, priority): the presets' cadences
slots = [("战略型", "visit", "q1", first, 1)]
for n, (y, m) in enumerate(months):
    day = f"{y}-{m:02d}-01"
    slots.append(("战略型", "contact", f"m{n}", day, 1))
    slots.append(("潜力型", "call", f"m{n}", day, 2))
slots.append(("维持型", "call", "q1", first, 2))
slots.append(("优化型", "message", "q1", first, 3))
pg = url.startswith("postgres")
stamp = "TIMESTAMPTZ " if pg else ""
values = ",".join(f"('{c}','{k}','{s}',{stamp}'{d} 10:00:00',{p})" for c, k, s, d, p in slots)

insert = f"""
INSERT INTO bench_tasks (customer_id, kind, source, source_key, title, detail, owner_id, team, due_at,
  priority, status, scheme_key, class_name, created_at)
SELECT cc.customer_id, s.kind, 'strategy',
  's:value_tier:' || cc.class || ':' || cc.customer_id || ':' || s.kind || ':' || s.slot,
  s.kind || '（' || cc.class || '）', '', c.owner_id, c.team, s.due, s.priority, 'open', 'value_tier', cc.class, s.due
FROM customer_classes cc JOIN customers c ON c.id = cc.customer_id
JOIN (VALUES {values}) AS s(class, kind, slot, due, priority) ON s.class = cc.class
WHERE cc.scheme_key = 'value_tier'"""

if url.startswith("sqlite://"):
    import sqlite3

    db = sqlite3.connect(url[len("sqlite://"):])
    db.execute("DROP TABLE IF EXISTS bench_tasks")
    db.execute("CREATE TABLE bench_tasks AS SELECT * FROM tasks WHERE 0")
    db.execute("CREATE UNIQUE INDEX bench_tasks_key ON bench_tasks(source_key)")
    for name, cols in [("owner", "owner_id, status, due_at, id"), ("team", "team, status, due_at, id"),
                       ("customer", "customer_id, due_at"), ("open_due", "status, due_at, id")]:
        db.execute(f"CREATE INDEX bench_tasks_{name} ON bench_tasks({cols})")
    db.commit()
    # SQLite's VALUES has no column names: name them through a CTE.
    sql = insert.replace(f"JOIN (VALUES {values}) AS s(class, kind, slot, due, priority)",
                         f"JOIN (SELECT column1 AS class, column2 AS kind, column3 AS slot, column4 AS due, column5 AS priority FROM (VALUES {values})) AS s")
    t = time.time()
    n = db.execute(sql).rowcount
    db.commit()
    wall = time.time() - t
    db.execute("DROP TABLE bench_tasks")
    db.commit()
else:
    def psql(sql):
        return subprocess.run(["psql", url, "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              check=True, capture_output=True, text=True).stdout
    psql("DROP TABLE IF EXISTS bench_tasks; CREATE TABLE bench_tasks (LIKE tasks INCLUDING ALL)")
    t = time.time()
    out = subprocess.run(["psql", url, "-tAX", "-v", "ON_ERROR_STOP=1", "-c", insert],
                         check=True, capture_output=True, text=True).stdout
    wall = time.time() - t
    n = int(out.split()[-1])  # INSERT 0 N
    psql("DROP TABLE bench_tasks")
print(f"== baseline: one INSERT … SELECT: {n} tasks in {wall:.1f} s")
