#!/usr/bin/env python3
"""psycopg 3 through the pooler with every query prepared (prepare_threshold=0): THREADS
clients, each running ROUNDS rounds of parameterised queries (several distinct texts, so
server-side statements are shared between clients), plain and in pipeline mode; every
result is checked. Prints "PSYCOPG ok=<n> errors=<n>" and exits non-zero on any error."""
import sys
import threading

import psycopg

dsn, threads, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = 0
errors = []
lock = threading.Lock()

QUERIES = [
    ("SELECT %s::int + 1", lambda i: (i,), lambda i: i + 1),
    ("SELECT %s::int * 2", lambda i: (i,), lambda i: i * 2),
    ("SELECT length(%s::text)", lambda i: ("x" * (i % 50),), lambda i: i % 50),
    ("SELECT count(*) FROM pgbench_branches WHERE bid <= %s", lambda i: (1,), lambda i: 1),
]


def worker(n):
    global ok
    good = 0
    try:
        with psycopg.connect(dsn, prepare_threshold=0, autocommit=True) as conn:
            for r in range(rounds):
                i = n * 1000 + r
                for sql, args, want in QUERIES:
                    got = conn.execute(sql, args(i)).fetchone()[0]
                    if got != want(i):
                        raise AssertionError("%s: got %r want %r" % (sql, got, want(i)))
                    good += 1
                with conn.pipeline():
                    curs = [(conn.execute(sql, args(i)), want(i)) for sql, args, want in QUERIES]
                for cur, w in curs:
                    got = cur.fetchone()[0]
                    if got != w:
                        raise AssertionError("pipeline: got %r want %r" % (got, w))
                    good += 1
                # a transaction of prepared statements
                with conn.transaction():
                    a = conn.execute("SELECT %s::int + 1", (i,)).fetchone()[0]
                    b = conn.execute("SELECT %s::int * 2", (a,)).fetchone()[0]
                    if b != (i + 1) * 2:
                        raise AssertionError("transaction: got %r" % b)
                    good += 1
    except Exception as e:  # noqa: BLE001 - every failure is reported
        with lock:
            errors.append("client %d: %s: %s" % (n, type(e).__name__, e))
    with lock:
        ok += good


ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
for e in errors[:5]:
    print(e)
print("PSYCOPG ok=%d errors=%d" % (ok, len(errors)))
sys.exit(1 if errors else 0)
