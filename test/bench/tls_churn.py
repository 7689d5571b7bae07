#!/usr/bin/env python3
"""TLS connection churn that resumes sessions (libpq, hence pgbench -C, never does): each
worker connects, asks for TLS (SSLRequest), offers the session of its previous connection
(TLS 1.3 ticket or TLS 1.2 session), logs in (trust), runs one pgbench -S style SELECT,
says Terminate and closes; again until the time is up. Prints pgbench's summary lines and
writes pgbench_log.* files (latency in microseconds in the third column) so that bench.sh
reads it like pgbench. Stdlib only.

usage: tls_churn.py -h HOST -p PORT -U USER -T SECONDS -c WORKERS [--no-resume] DBNAME
"""
import argparse, multiprocessing as mp, os, random, socket, ssl, struct, time


def msg(t, body):
    return t + struct.pack("!I", len(body) + 4) + body


def read_until_ready(s):
    """Read messages until ReadyForQuery; raise on ErrorResponse."""
    buf = b""
    while True:
        while len(buf) >= 5:
            n = struct.unpack("!I", buf[1:5])[0]
            if len(buf) < n + 1:
                break
            t, body, buf = buf[:1], buf[5:n + 1], buf[n + 1:]
            if t == b"E":
                raise RuntimeError("server error: " + body.decode(errors="replace"))
            if t == b"Z":
                return
        d = s.recv(65536)
        if not d:
            raise RuntimeError("connection closed")
        buf += d


def one(host, port, user, db, ctx, session):
    raw = socket.create_connection((host, port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    raw.sendall(struct.pack("!II", 8, 80877103))
    if raw.recv(1) != b"S":
        raise RuntimeError("TLS refused")
    s = ctx.wrap_socket(raw, session=session)
    params = b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
    s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
    read_until_ready(s)
    aid = random.randint(1, 100000)
    s.sendall(msg(b"Q", b"SELECT abalance FROM pgbench_accounts WHERE aid = %d;\0" % aid))
    read_until_ready(s)
    s.sendall(msg(b"X", b""))
    reused = s.session_reused
    sess = s.session
    s.close()
    return sess, reused


def worker(i, a, q):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    end = time.monotonic() + a.T
    n = failed = reused = 0
    session = None
    with open("pgbench_log.%d.%d" % (os.getpid(), i), "w") as log:
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                sess, r = one(a.h, a.p, a.U, a.dbname, ctx, session if a.resume else None)
                session = sess
                reused += r
                n += 1
                log.write("%d %d %d 0 0 0\n" % (i, n, (time.monotonic() - t0) * 1e6))
            except (OSError, RuntimeError, ssl.SSLError) as e:
                failed += 1
                if failed == 1:
                    q.put(("error", str(e)))
    q.put(("done", n, failed, reused))


def main():
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("-h"), ap.add_argument("-p", type=int), ap.add_argument("-U")
    ap.add_argument("dbname"), ap.add_argument("-T", type=float), ap.add_argument("-c", type=int)
    ap.add_argument("--no-resume", dest="resume", action="store_false")
    a = ap.parse_args()
    q = mp.Queue()
    t0 = time.monotonic()
    ps = [mp.Process(target=worker, args=(i, a, q)) for i in range(a.c)]
    for p in ps:
        p.start()
    n = failed = reused = 0
    left = a.c
    while left:
        m = q.get()
        if m[0] == "error":
            print("tls_churn: error: %s" % m[1])
            continue
        n, failed, reused, left = n + m[1], failed + m[2], reused + m[3], left - 1
    for p in ps:
        p.join()
    el = time.monotonic() - t0
    print("number of transactions actually processed: %d" % n)
    print("number of failed transactions: %d" % failed)
    print("sessions resumed: %d of %d" % (reused, n))
    if n:
        print("latency average = %.3f ms" % (a.c * el * 1000 / n))
        print("tps = %f (including reconnection times)" % (n / el))


if __name__ == "__main__":
    main()
