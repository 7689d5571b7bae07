#!/usr/bin/env python3
"""Never-reading clients for the soak (test/soak/soak.sh), stdlib only.

Until --seconds have passed (or --cycles cycles are done), one cycle at a time: log in to one
of the --database entries (in turn), send --queries big queries (select repeat('x', N)) and
read none of the results, wait a moment, then leave in one of three ways, in turn:
    reset       close with SO_LINGER 0 (the peer sees a TCP RST)
    badheader   send a message with an impossible length, then reset
    close       a plain close (FIN) with the results still unread
One line per cycle on stdout: "<epoch> CYCLE <n> <database> <way> <login ok|failed>".
Uses test/integration/pgwire.py for the startup packet and login.
"""
import argparse
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import pgwire  # noqa: E402

WAYS = ("reset", "badheader", "close")


def one_cycle(a, n, database, way):
    c = pgwire.Conn(a.host, a.port, 10)
    try:
        ok = pgwire.login(c, "u_trust", database, None, 10, quiet=True)
        if ok:
            q = pgwire.msg(b"Q", ("select repeat('x', %d)" % a.size).encode() + b"\0")
            for _ in range(a.queries):
                c.sock.settimeout(2)
                try:
                    c.send(q)
                except (socket.timeout, OSError):
                    break
            time.sleep(random.uniform(a.pause_min, a.pause_max))
            if way == "badheader":
                try:
                    c.send(b"X\xff\xff\xff\xf0")
                except OSError:
                    pass
        if way in ("reset", "badheader"):
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        ok = False
    finally:
        c.close()
    print("%.6f CYCLE %d %s %s %s" % (time.time(), n, database, way, "ok" if ok else "failed"), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--database", action="append", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--cycles", type=int, default=10000)
    p.add_argument("--queries", type=int, default=4)
    p.add_argument("--size", type=int, default=1000000)
    p.add_argument("--pause-min", type=float, default=0.5)
    p.add_argument("--pause-max", type=float, default=2.0)
    p.add_argument("--gap", type=float, default=0.5, help="sleep between cycles")
    a = p.parse_args()
    deadline = time.monotonic() + a.seconds
    n = 0
    while n < a.cycles and time.monotonic() < deadline:
        database = a.database[n % len(a.database)]
        way = WAYS[(n // len(a.database)) % len(WAYS)]
        try:
            one_cycle(a, n, database, way)
        except OSError as e:
            print("%.6f CYCLE %d %s %s failed (%s)" % (time.time(), n, database, way, e), flush=True)
            time.sleep(1)
        n += 1
        time.sleep(a.gap)


if __name__ == "__main__":
    main()
