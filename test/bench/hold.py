#!/usr/bin/env python3
"""Idle clients for test/bench/scale.sh (stdlib asyncio, not a test): logs clients in over
the PostgreSQL protocol (trust or SCRAM-SHA-256), from source addresses spread over
127.0.0.x so that ephemeral ports never run out. Never talks to anything but loopback.
The login storm is test/bench/swarm.c's: this client's CPU per login is above the poolers'.

    hold.py hold   --port P --n N [--db D | --dbs PREFIX:COUNT] --user U [--password PW]
        log N clients in (at most --parallel at a time), print "HELD ok=<n> failed=<n>",
        then keep them open and idle until SIGTERM, --max-seconds or the parent's exit
    hold.py logins --port P --dbs PREFIX:COUNT --user U
        one login per database PREFIX0001..PREFIXCOUNT (so their pools exist), each closed
        again at once; prints "LOGINS ok=<n> failed=<n>"
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import resource
import signal
import struct
import sys
import time

SALTED = {}  # (password, salt, iterations) -> salted password: PBKDF2 once, not per client


def srcs(first, count):
    return ["127.0.0.%d" % (first + i) for i in range(count)]


def msg(typ, payload):
    return typ + struct.pack("!I", len(payload) + 4) + payload


async def read_msg(r):
    hdr = await r.readexactly(5)
    (n,) = struct.unpack("!I", hdr[1:5])
    return hdr[:1], await r.readexactly(n - 4)


async def scram(r, w, password):
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=,r=" + nonce
    first = ("n,," + first_bare).encode()
    w.write(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
    typ, body = await read_msg(r)
    if typ != b"R" or struct.unpack("!I", body[:4])[0] != 11:
        raise RuntimeError("no SASLContinue")
    server_first = body[4:].decode()
    a = dict(kv.split("=", 1) for kv in server_first.split(","))
    key = (password, a["s"], a["i"])
    if key not in SALTED:
        SALTED[key] = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(a["s"]), int(a["i"]))
    ck = hmac.new(SALTED[key], b"Client Key", hashlib.sha256).digest()
    final_wo_proof = "c=biws,r=" + a["r"]
    auth_msg = ",".join([first_bare, server_first, final_wo_proof]).encode()
    sig = hmac.new(hashlib.sha256(ck).digest(), auth_msg, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(x ^ y for x, y in zip(ck, sig))).decode()
    w.write(msg(b"p", (final_wo_proof + ",p=" + proof).encode()))


async def login(port, src, db, user, password):
    """Connect and log in; returns (reader, writer) at ReadyForQuery, raises otherwise."""
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    try:
        body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
        w.write(struct.pack("!I", len(body) + 4) + body)
        while True:
            typ, body = await read_msg(r)
            if typ == b"R":
                code = struct.unpack("!I", body[:4])[0]
                if code == 10:
                    await scram(r, w, password or "")
                elif code == 3:
                    w.write(msg(b"p", (password or "").encode() + b"\0"))
                elif code not in (0, 12):
                    raise RuntimeError("auth request %d" % code)
            elif typ == b"E":
                raise RuntimeError(body.decode(errors="replace"))
            elif typ == b"Z":
                return r, w
    except BaseException:
        w.close()
        raise


def db_names(a):
    if a.dbs:
        prefix, count = a.dbs.rsplit(":", 1)
        return ["%s%04d" % (prefix, i + 1) for i in range(int(count))]
    return [a.db]


async def do_hold(a):
    dbs = db_names(a)
    addrs = srcs(a.src_first, a.src_count)
    sem = asyncio.Semaphore(a.parallel)
    conns, failed = [], [0]

    async def one(i):
        async with sem:
            try:
                c = await asyncio.wait_for(login(a.port, addrs[i % len(addrs)], dbs[i % len(dbs)], a.user, a.password), 30)
                if a.logins_only:  # leave at once: at most --parallel clients at a time
                    c[1].write(msg(b"X", b""))
                    c[1].close()
                conns.append(c)
            except Exception as e:
                failed[0] += 1
                if failed[0] <= 3:
                    print("hold: login failed: %s" % e, file=sys.stderr)

    await asyncio.gather(*(one(i) for i in range(a.n)))
    if a.logins_only:
        print("LOGINS ok=%d failed=%d" % (len(conns), failed[0]), flush=True)
        return
    print("HELD ok=%d failed=%d" % (len(conns), failed[0]), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    parent = os.getppid()
    deadline = time.monotonic() + a.max_seconds
    while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
        try:
            await asyncio.wait_for(stop.wait(), 1)
        except asyncio.TimeoutError:
            pass
    for _, w in conns:
        w.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["hold", "logins"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--db", default="testdb")
    p.add_argument("--dbs", default="")
    p.add_argument("--user", default="u_trust")
    p.add_argument("--password", default="")
    p.add_argument("--parallel", type=int, default=500)
    p.add_argument("--max-seconds", type=float, default=900)
    p.add_argument("--src-first", type=int, default=10)
    p.add_argument("--src-count", type=int, default=40)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    a.logins_only = a.mode == "logins"
    if a.mode == "logins":
        a.n = len(db_names(a))
    asyncio.run(do_hold(a))


if __name__ == "__main__":
    main()
