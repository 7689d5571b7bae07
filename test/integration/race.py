#!/usr/bin/env python3
"""Client-isolation scenarios for pgusher's integration tests (stdlib only, uses pgwire.py).

Each scenario runs several raw-protocol clients against one database whose pool has a single
server, so that whatever one client leaves on that server reaches the next one. Every client
checks that it receives exactly its own results. Prints one line per finding and a last line
"RESULT ok" or "RESULT FAIL <why>"; exit status 0 only for ok.

    race.py --port P --db D --user U pipeline      P/B/E/S then P/B/E before the Sync's
                                                   ReadyForQuery (JDBC batches, libpq pipelines)
    race.py ... partial                            P/B/E/S then half of a large Parse
    race.py ... split                              a small pipeline split at every offset
    race.py ... cancel [--rounds N]                100 cancels for one client's query must not
                                                   cancel the next client's query on that server
    race.py ... columns --freeze-pid PID           a cancel held up by a frozen postmaster:
                                                   SHOW POOLS's cancel columns, cancel_wait_timeout
"""
import argparse
import os
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgwire import Conn, fmt_error, msg, startup_packet  # noqa: E402

WAIT = 20.0


class Client:
    """A logged-in raw connection that remembers its cancel key."""

    def __init__(self, a):
        self.c = Conn("127.0.0.1", a.port, WAIT)
        self.c.send(startup_packet(a.user, a.db))
        self.pid = self.key = None
        while True:
            m = self.c.read_msg(WAIT)
            if m is None:
                raise RuntimeError("login: connection closed")
            typ, body = m
            if typ == b"E":
                raise RuntimeError("login: " + fmt_error(body))
            if typ == b"K":
                self.pid, self.key = struct.unpack("!II", body[:8])
            if typ == b"Z":
                return

    def send(self, data):
        self.c.send(data)

    def results(self, syncs):
        """Read until `syncs` ReadyForQuery messages; returns ([rows], [errors])."""
        rows, errors = [], []
        while syncs > 0:
            m = self.c.read_msg(WAIT)
            if m is None:
                errors.append("no answer (closed or timed out)")
                return rows, errors
            typ, body = m
            if typ == b"D":
                (ln,) = struct.unpack("!i", body[2:6])
                rows.append(body[6 : 6 + ln].decode() if ln >= 0 else None)
            elif typ == b"E":
                errors.append(fmt_error(body))
            elif typ == b"Z":
                syncs -= 1
        return rows, errors

    def close(self):
        try:
            self.c.send(msg(b"X", b""))
        except OSError:
            pass
        self.c.close()


def parse(sql):
    return msg(b"P", b"\0" + sql.encode() + b"\0\0\0")


BIND = msg(b"B", b"\0\0\0\0\0\0\0\0")
EXEC = msg(b"E", b"\0\0\0\0\0")
SYNC = msg(b"S", b"")


def pbe(sql):
    return parse(sql) + BIND + EXEC


def query(sql):
    return msg(b"Q", sql.encode() + b"\0")


def short(rows):
    return [r if r is None or len(r) <= 20 else "%s...(%d chars)" % (r[:8], len(r)) for r in rows]


def expect(who, got, want, problems):
    rows, errors = got
    if errors or rows != want:
        problems.append(
            "%s got rows %r errors %r, expected %r" % (who, short(rows), errors, short(want))
        )


def scenario_pipeline(a):
    """A pipelines P/B/E/S and P/B/E of its next batch; B asks meanwhile."""
    problems = []
    ca, cb = Client(a), Client(a)
    ca.send(pbe("select 'A1'") + SYNC + pbe("select 'A2'"))
    time.sleep(0.3)  # A's first ReadyForQuery is back; the server still holds A's P/B/E
    cb.send(query("select 'B'"))
    time.sleep(0.3)
    ca.send(SYNC)
    expect("A", ca.results(2), ["A1", "A2"], problems)
    expect("B", cb.results(1), ["B"], problems)
    ca.close()
    cb.close()
    return problems


def scenario_partial(a):
    """A sends P/B/E/S and the first part of a large Parse; the rest comes a moment later."""
    problems = []
    ca, cb = Client(a), Client(a)
    big = pbe("select '%s'" % ("A" * 100000)) + SYNC
    cut = 7  # the type byte, the length and two bytes of the statement name/query
    ca.send(pbe("select 'A1'") + SYNC + big[:cut])
    time.sleep(0.3)
    cb.send(query("select 'B'"))
    time.sleep(0.3)
    ca.send(big[cut:])
    expect("A", ca.results(2), ["A1", "A" * 100000], problems)
    expect("B", cb.results(1), ["B"], problems)
    ca.close()
    cb.close()
    return problems


def scenario_split(a):
    """The same small pipeline split at every offset, with another client queued behind."""
    problems = []
    data = pbe("select 'A1'") + SYNC + pbe("select 'A2'") + SYNC + query("select 'A3'")
    ca, cb = Client(a), Client(a)
    for cut in range(1, len(data)):
        ca.send(data[:cut])
        cb.send(query("select 'B%d'" % cut))
        time.sleep(0.02)
        ca.send(data[cut:])
        expect("A@%d" % cut, ca.results(3), ["A1", "A2", "A3"], problems)
        expect("B@%d" % cut, cb.results(1), ["B%d" % cut], problems)
        if problems:
            break
    ca.close()
    cb.close()
    return problems


def send_cancel(port, pid, key):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        s.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
        s.settimeout(WAIT)
        s.recv(1)  # the pooler closes the connection when the cancel is done
        s.close()
    except OSError:
        pass


def scenario_cancel(a):
    """A's long query is cancelled 100 times over; B, queued for the same server, is not."""
    problems = []
    for rnd in range(a.rounds):
        ca, cb = Client(a), Client(a)
        ca.send(query("select pg_sleep(3), 'A'"))
        time.sleep(0.3)
        cb.send(query("select pg_sleep(1)::text || 'B'"))
        time.sleep(0.2)
        threads = [
            threading.Thread(target=send_cancel, args=(a.port, ca.pid, ca.key)) for _ in range(100)
        ]
        for t in threads:
            t.start()
        ra = ca.results(1)
        rb = cb.results(1)
        for t in threads:
            t.join()
        if not any("57014" in e for e in ra[1]):
            problems.append("round %d: A was not cancelled: %r" % (rnd, ra))
        expect("round %d: B" % rnd, rb, ["B"], problems)
        ca.close()
        cb.close()
        if problems:
            break
    return problems


def show_pools(a):
    """The console's SHOW POOLS row of this database as {column: value}."""
    c = Conn("127.0.0.1", a.port, WAIT)
    c.send(startup_packet(a.admin_user, "pgbouncer"))
    while c.read_msg(WAIT)[0] != b"Z":
        pass
    c.send(query("SHOW POOLS"))
    cols, row = [], None
    while True:
        typ, body = c.read_msg(WAIT)
        if typ == b"T":
            (n,) = struct.unpack("!H", body[:2])
            pos = 2
            for _ in range(n):
                end = body.index(b"\0", pos)
                cols.append(body[pos:end].decode())
                pos = end + 1 + 18
        elif typ == b"D":
            vals, pos = [], 2
            for _ in cols:
                (ln,) = struct.unpack("!i", body[pos : pos + 4])
                pos += 4
                vals.append(body[pos : pos + ln].decode() if ln >= 0 else "")
                pos += max(ln, 0)
            if vals[0] == a.db:
                row = dict(zip(cols, vals))
        elif typ == b"Z":
            c.close()
            return row


def pools_expect(a, when, want, problems):
    row = show_pools(a)
    got = {k: row.get(k) for k in want}
    if got != {k: str(v) for k, v in want.items()}:
        problems.append("%s: SHOW POOLS has %r, expected %r" % (when, got, want))


def scenario_columns(a):
    """A cancel that cannot reach the server (its postmaster is frozen) keeps the server away
    from the next client until cancel_wait_timeout; SHOW POOLS counts every side of it."""
    problems = []
    ca, cb = Client(a), Client(a)
    os.kill(a.freeze_pid, signal.SIGSTOP)
    try:
        ca.send(query("select pg_sleep(1.5)::text || 'A'"))
        time.sleep(0.2)
        cancel = threading.Thread(target=send_cancel, args=(a.port, ca.pid, ca.key))
        cancel.start()
        cb.send(query("select 'B'"))
        time.sleep(0.5)
        pools_expect(a, "cancel on its way", {"cl_active": 1, "cl_waiting": 1,
                     "cl_active_cancel_req": 1, "sv_active": 1, "sv_active_cancel": 1}, problems)
        expect("A", ca.results(1), ["A"], problems)  # the cancel never arrived
        time.sleep(0.2)
        pools_expect(a, "A done, cancel still on its way", {"cl_waiting": 1,
                     "sv_being_canceled": 1, "sv_active": 0, "sv_idle": 0}, problems)
        # cancel_wait_timeout gives up on the cancel: B is served, uncancelled.
        expect("B", cb.results(1), ["B"], problems)
        cancel.join()
        pools_expect(a, "after cancel_wait_timeout", {"cl_active_cancel_req": 0,
                     "sv_active_cancel": 0, "sv_being_canceled": 0, "cl_waiting": 0}, problems)
    finally:
        os.kill(a.freeze_pid, signal.SIGCONT)
    ca.close()
    cb.close()
    return problems


SCENARIOS = {
    "columns": scenario_columns,
    "pipeline": scenario_pipeline,
    "partial": scenario_partial,
    "split": scenario_split,
    "cancel": scenario_cancel,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--admin-user", default="postgres")
    ap.add_argument("--freeze-pid", type=int, help="columns: the server's postmaster")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    a = ap.parse_args()
    try:
        problems = SCENARIOS[a.scenario](a)
    except (OSError, RuntimeError) as e:
        problems = ["%s: %s" % (type(e).__name__, e)]
    for p in problems:
        print(p, flush=True)
    print("RESULT " + ("ok" if not problems else "FAIL " + problems[0]), flush=True)
    sys.exit(0 if not problems else 1)


if __name__ == "__main__":
    main()
