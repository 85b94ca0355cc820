"""tests/drivers/psycopg_prepared.py — psycopg 3 server-side prepared statements across a
cutover (issue 14), driven by tests/integration/test_proxy_drivers.c.

Usage: /usr/bin/python3 psycopg_prepared.py <control dir>
Connects with PGHOST/PGPORT/PGUSER/PGDATABASE (the proxy), prepare_threshold=0 (psycopg
prepares every query on its first execution: Parse of a "_pg3_<n>" statement, then
libpq's Bind, Describe of the portal, Execute, Sync), autocommit. Runs two queries on
table t (id, v = id * 10) in a loop, 5 ms apart: writes <dir>/ready after the first
round; after <dir>/stop appears, runs one more round and exits. Prints one line per
result shape seen,
  shape <query name> <column/type oid,...> <count>
then "executions <n>"; exits 0. On any error prints "error <SQLSTATE> <message>" and
exits 1.
"""
import os
import sys
import time

import psycopg

QUERIES = [
    ("by_id", "SELECT * FROM t WHERE id = %s"),
    ("v_by_id", "SELECT v FROM t WHERE id = %s"),
]


def main(ctl):
    shapes = {}
    n = 0
    with psycopg.connect("", prepare_threshold=0, autocommit=True) as conn:
        cur = conn.cursor()
        rnd = 0
        while True:
            last = os.path.exists(os.path.join(ctl, "stop"))
            for name, sql in QUERIES:
                i = 1 + n % 20
                cur.execute(sql, (i,))
                rows = cur.fetchall()
                cols = [d.name for d in cur.description]
                if len(rows) != 1 or rows[0][cols.index("v")] != i * 10:
                    raise RuntimeError(f"{name}({i}): {rows!r}")
                key = name + " " + ",".join(f"{d.name}/{d.type_code}" for d in cur.description)
                shapes[key] = shapes.get(key, 0) + 1
                n += 1
            if rnd == 0:
                open(os.path.join(ctl, "ready"), "w").close()
            if last:
                break
            rnd += 1
            time.sleep(0.005)
    for k, v in shapes.items():
        print(f"shape {k} {v}")
    print(f"executions {n}")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception as e:  # noqa: BLE001 — every error is the test's verdict
        print(f"error {getattr(e, 'sqlstate', None) or '-'} {e}")
        sys.exit(1)
