#!/usr/bin/env python3
"""Baseline for the classification benchmark: design.md's RFM and 价值分层
(value tier) written as one SQL query (GROUP BY + CASE), run in the store's
own database or in DuckDB over the same data exported to Parquet.

    bench/baseline_sql.py sqlite PATH.db AS_OF
    bench/baseline_sql.py postgres URL AS_OF
    bench/baseline_sql.py duckdb PATH.db AS_OF   # exports the SQLite file first

Prints the class counts of both schemes and the query's wall time (the
export to Parquet is timed separately and not counted). The definitions
follow presets.json; whole months use the day-of-month rule, which differs
from kehu's calendar arithmetic only for start dates on the 29th-31st.
"""
import datetime as dt
import os
import subprocess
import sys
import time


def months_back(d, n):
    """d minus n calendar months, the day clamped to the month's end."""
    y, m = divmod(d.year * 12 + d.month - 1 - n, 12)
    m += 1
    last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(y, m, min(d.day, last))


def dialect(engine):
    if engine == "sqlite":
        return {
            "y": lambda x: f"CAST(substr({x},1,4) AS INTEGER)",
            "m": lambda x: f"CAST(substr({x},6,2) AS INTEGER)",
            "d": lambda x: f"CAST(substr({x},9,2) AS INTEGER)",
            "days": lambda a, b: f"CAST(julianday({b}) - julianday({a}) AS INTEGER)",
            "date": lambda s: f"'{s}'",
        }
    return {
        "y": lambda x: f"CAST(EXTRACT(YEAR FROM {x}) AS INTEGER)",
        "m": lambda x: f"CAST(EXTRACT(MONTH FROM {x}) AS INTEGER)",
        "d": lambda x: f"CAST(EXTRACT(DAY FROM {x}) AS INTEGER)",
        "days": lambda a, b: f"({b} - {a})",
        "date": lambda s: f"DATE '{s}'",
    }


def query(engine, as_of):
    q = dialect(engine)
    D = q["date"]
    start12 = months_back(as_of, 12) + dt.timedelta(days=1)
    start24 = months_back(as_of, 24) + dt.timedelta(days=1)
    start365 = as_of - dt.timedelta(days=364)
    last_month = as_of.year * 12 + as_of.month - 1 - 1
    month_of = f"({q['y']('o.ordered_on')} * 12 + {q['m']('o.ordered_on')} - 1)"
    pivots = ",\n".join(
        f"      SUM(CASE WHEN {last_month} - {month_of} = {k} THEN o.amount_fen ELSE 0 END) AS m{k}"
        for k in range(25)
    )
    streak = "CASE " + " ".join(f"WHEN NOT (m{k} > m{k + 1}) THEN {k}" for k in range(24)) + " ELSE 24 END"
    coop = (
        f"(({as_of.year} - {q['y']('c.cooperation_start_on')}) * 12 + {as_of.month} - {q['m']('c.cooperation_start_on')}"
        f" - CASE WHEN {as_of.day} < {q['d']('c.cooperation_start_on')} THEN 1 ELSE 0 END)"
    )
    return f"""
WITH o AS (
  SELECT o.customer_id,
      COUNT(*) AS n_all,
      SUM(o.amount_fen) AS sum_all,
      MAX(o.ordered_on) AS last_on,
      SUM(CASE WHEN o.ordered_on >= {D(start12)} THEN o.amount_fen ELSE 0 END) AS sum_12m,
      SUM(CASE WHEN o.ordered_on >= {D(start12)} THEN 1 ELSE 0 END) AS n_12m,
      SUM(CASE WHEN o.ordered_on >= {D(start24)} AND o.ordered_on < {D(start12)} THEN o.amount_fen ELSE 0 END) AS sum_prev_12m,
{pivots}
  FROM orders o WHERE o.ordered_on <= {D(as_of)}
  GROUP BY o.customer_id
), i AS (
  SELECT customer_id, COUNT(*) AS complaints FROM interactions
  WHERE kind = 'complaint' AND occurred_on >= {D(start365)} AND occurred_on <= {D(as_of)}
  GROUP BY customer_id
), f AS (
  SELECT c.id,
      CASE WHEN o.customer_id IS NULL THEN c.declared_annual_purchase_fen ELSE o.sum_12m END AS annual,
      CASE WHEN c.cooperation_start_on IS NULL THEN NULL ELSE {coop} END AS coop_months,
      COALESCE(i.complaints, 0) AS complaints,
      CASE WHEN COALESCE(o.sum_prev_12m, 0) = 0 THEN NULL ELSE o.sum_12m * 5 - o.sum_prev_12m * 6 END AS growth20,
      CASE WHEN o.customer_id IS NULL THEN 0 ELSE {streak} END AS streak,
      CASE WHEN o.customer_id IS NULL THEN NULL ELSE {q['days']('o.last_on', D(as_of))} END AS recency,
      COALESCE(o.n_12m, 0) AS n_12m,
      COALESCE(o.sum_all, 0) AS monetary
  FROM customers c
  LEFT JOIN o ON o.customer_id = c.id
  LEFT JOIN i ON i.customer_id = c.id
), l AS (
  SELECT f.*,
      CASE WHEN annual >= 100000000 THEN 'high' WHEN annual >= 50000000 THEN 'mid' ELSE 'low' END AS value_level,
      CASE WHEN coop_months >= 24 AND complaints = 0 THEN 'stable'
           WHEN coop_months < 12 OR complaints >= 2 THEN 'unstable' ELSE 'fair' END AS stability,
      CASE WHEN recency <= 30 THEN 30 WHEN recency <= 60 THEN 60 WHEN recency <= 90 THEN 90 ELSE 999 END AS r,
      CASE WHEN n_12m * 100 / 12 >= 500 THEN 2 WHEN n_12m * 100 / 12 >= 100 THEN 1 ELSE 0 END AS fq,
      CASE WHEN monetary >= 10000000 THEN 2 WHEN monetary >= 5000000 THEN 1 ELSE 0 END AS mo
  FROM f
), k AS (
  SELECT
    CASE WHEN value_level = 'high' AND stability = 'stable' THEN '战略型'
         WHEN value_level = 'mid' AND streak >= 3 AND complaints = 0 THEN '战略型'
         WHEN value_level = 'mid' AND growth20 >= 0 THEN '潜力型'
         WHEN value_level = 'low' AND stability = 'unstable' THEN '优化型'
         ELSE '维持型' END AS value_tier,
    CASE WHEN r = 30 AND fq = 2 AND mo = 2 THEN '高价值客户'
         WHEN r >= 90 AND fq >= 1 AND mo >= 1 THEN '流失风险客户'
         WHEN fq >= 1 AND mo >= 1 THEN '潜力客户'
         ELSE '一般客户' END AS rfm
  FROM l
)
SELECT 'value_tier' AS scheme, value_tier AS class, COUNT(*) AS n FROM k GROUP BY value_tier
UNION ALL
SELECT 'rfm', rfm, COUNT(*) FROM k GROUP BY rfm
ORDER BY 1, 2
"""


def main():
    engine, target, as_of = sys.argv[1], sys.argv[2], dt.date.fromisoformat(sys.argv[3])
    sql = query("sqlite" if engine == "sqlite" else "postgres", as_of)
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
        import sqlite3

        folder = target + ".parquet.d"
        os.makedirs(folder, exist_ok=True)
        con = duckdb.connect()
        src = sqlite3.connect(target)
        t = time.perf_counter()
        tables = {
            "customers": "id, declared_annual_purchase_fen, cooperation_start_on",
            "orders": "customer_id, ordered_on, amount_fen",
            "interactions": "customer_id, kind, occurred_on",
        }
        for table, cols in tables.items():
            path = f"{folder}/{table}.parquet"
            if not os.path.exists(path):
                csv = f"{folder}/{table}.csv"
                with open(csv, "w") as out:
                    out.write(cols.replace(" ", "") + "\n")
                    for row in src.execute(f"SELECT {cols} FROM {table}"):
                        out.write(",".join("" if v is None else str(v) for v in row) + "\n")
                con.execute(f"COPY (SELECT * FROM read_csv_auto('{csv}')) TO '{path}' (FORMAT parquet)")
                os.remove(csv)
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
        print(f"export to Parquet: {time.perf_counter() - t:.1f} s (not counted)", file=sys.stderr)
        t = time.perf_counter()
        rows = con.execute(sql).fetchall()
        took = time.perf_counter() - t
    for scheme, cls, n in rows:
        print(f"{scheme}\t{cls}\t{n}")
    print(f"{engine}: {took:.2f} s")


if __name__ == "__main__":
    main()
