#!/usr/bin/env python3
"""Baseline for bench/report.sh: the classification report's aggregates for
one scheme and one period as SQL — each customer's class at the previous
period's end and at this period's end from class_history (window
functions), orders in the two periods (GROUP BY), joined and grouped by
class (distribution, revenue, orders), by class at the start (churn) and by
the pair (transitions) — in the store's own database or in DuckDB over the
same tables exported to Parquet (from the SQLite file, or from PostgreSQL
with psql's \copy; the export timed apart).

    bench/report_baseline.py sqlite PATH.db SCHEME PREV_START START END
    bench/report_baseline.py postgres URL SCHEME PREV_START START END
    bench/report_baseline.py duckdb PATH.db|URL SCHEME PREV_START START END

Prints the class lines (class, customers, revenue_fen, orders, churn base,
churned) and the query's wall time.
"""
import datetime as dt
import os
import subprocess
import sys
import time


def query(engine, scheme, prev_start, start, end):
    d = (lambda s: f"'{s}'") if engine == "sqlite" else (lambda s: f"DATE '{s}'")
    prev_end = dt.date.fromisoformat(start) - dt.timedelta(days=1)
    return f"""
WITH h AS (
  SELECT customer_id, to_class, effective_on, id FROM class_history
  WHERE scheme_key = '{scheme}' AND effective_on <= {d(end)} AND merged_from IS NULL),
after AS (
  SELECT customer_id, to_class FROM (
    SELECT customer_id, to_class, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY effective_on DESC, id DESC) AS rn FROM h) x
  WHERE rn = 1),
before AS (
  SELECT customer_id, to_class FROM (
    SELECT customer_id, to_class, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY effective_on DESC, id DESC) AS rn
    FROM h WHERE effective_on <= {d(prev_end)}) x
  WHERE rn = 1),
o AS (
  SELECT customer_id,
    SUM(CASE WHEN ordered_on >= {d(start)} THEN amount_fen ELSE 0 END) AS revenue,
    SUM(CASE WHEN ordered_on >= {d(start)} THEN 1 ELSE 0 END) AS n,
    MAX(CASE WHEN ordered_on < {d(start)} THEN 1 ELSE 0 END) AS prev
  FROM orders WHERE ordered_on >= {d(prev_start)} AND ordered_on <= {d(end)} GROUP BY customer_id),
c AS (
  SELECT cu.id, a.to_class AS now_class, b.to_class AS then_class,
    COALESCE(o.revenue, 0) AS revenue, COALESCE(o.n, 0) AS n, COALESCE(o.prev, 0) AS prev
  FROM customers cu LEFT JOIN after a ON a.customer_id = cu.id
  LEFT JOIN before b ON b.customer_id = cu.id LEFT JOIN o ON o.customer_id = cu.id)
SELECT 'now' AS part, now_class AS k, NULL AS k2, COUNT(*) AS customers, SUM(revenue) AS revenue, SUM(n) AS orders, 0 AS base, 0 AS churned
  FROM c GROUP BY now_class
UNION ALL
SELECT 'then', then_class, NULL, COUNT(*), 0, 0, SUM(prev), SUM(CASE WHEN prev = 1 AND n = 0 THEN 1 ELSE 0 END)
  FROM c GROUP BY then_class
UNION ALL
SELECT 'move', then_class, now_class, COUNT(*), 0, 0, 0, 0 FROM c GROUP BY then_class, now_class
"""


def main():
    engine, target, scheme, prev_start, start, end = sys.argv[1:7]
    sql = query(engine, scheme, prev_start, start, end)
    if engine == "sqlite":
        import sqlite3

        con = sqlite3.connect(target)
        t = time.perf_counter()
        rows = con.execute(sql).fetchall()
        took = time.perf_counter() - t
    elif engine == "postgres":
        t = time.perf_counter()
        out = subprocess.run(
            ["psql", target, "-X", "-A", "-t", "-F", "|", "-c", sql],
            check=True, capture_output=True, text=True,
        ).stdout
        took = time.perf_counter() - t
        rows = [tuple(l.split("|")) for l in out.splitlines() if l]
    else:
        import duckdb

        from_postgres = target.startswith("postgres")
        if from_postgres:
            name = target.rsplit("/", 1)[-1].split("?")[0]
            folder = f"/tmp/kehu-report-{name}.parquet.d"
        else:
            import sqlite3

            folder = target + ".report.parquet.d"
            src = sqlite3.connect(target)
        os.makedirs(folder, exist_ok=True)
        con = duckdb.connect()
        t = time.perf_counter()
        tables = {
            "customers": ("id", "id BIGINT"),
            "orders": ("customer_id, ordered_on, amount_fen", "customer_id BIGINT, ordered_on DATE, amount_fen BIGINT"),
            "class_history": (
                "id, customer_id, scheme_key, to_class, effective_on, merged_from",
                "id BIGINT, customer_id BIGINT, scheme_key VARCHAR, to_class VARCHAR, effective_on DATE, merged_from BIGINT",
            ),
        }
        for table, (cols, types) in tables.items():
            path = f"{folder}/{table}.parquet"
            if not os.path.exists(path):
                csv = f"{folder}/{table}.csv"
                if from_postgres:
                    subprocess.run(
                        ["psql", target, "-X", "-q", "-c", f"\\copy (SELECT {cols} FROM {table}) TO '{csv}' CSV"],
                        check=True,
                    )
                else:
                    with open(csv, "w") as out:
                        for row in src.execute(f"SELECT {cols} FROM {table}"):
                            out.write(",".join("" if v is None else str(v) for v in row) + "\n")
                columns = "{" + ", ".join(f"'{c.split()[0]}': '{c.split()[1]}'" for c in types.split(", ")) + "}"
                con.execute(f"COPY (SELECT * FROM read_csv('{csv}', header=false, columns={columns})) TO '{path}' (FORMAT parquet)")
                os.remove(csv)
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
        print(f"export to Parquet: {time.perf_counter() - t:.1f} s (not counted)", file=sys.stderr)
        t = time.perf_counter()
        rows = con.execute(sql).fetchall()
        took = time.perf_counter() - t
    for r in sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r)):
        if r[0] != "move":
            print("\t".join("" if v is None else str(v) for v in r))
    print(f"{engine}: {took:.2f} s")


if __name__ == "__main__":
    main()
