#!/usr/bin/env python3
"""A scripted fake PostgreSQL server for pgusher's hostile-server tests (stdlib only).

    fakepg.py --user U --password P --ports-file F SCENARIO...

listens on 127.0.0.1, one ephemeral port per SCENARIO, writes "SCENARIO PORT" lines to F
once all are listening, and then serves every connection (threads) by its scenario. An
SSLRequest is answered 'N'. Every scenario starts like a real server asking for
SCRAM-SHA-256 (a correct server side, with U's password P), and departs from it somewhere:

    good            the whole exchange, correct; queries get one row "fake:good"
    ok-after-sasl   AuthenticationOk right after the SASLInitialResponse (no signature)
    bad-signature   the exchange with a wrong server signature in SASLFinal
    repeat-sasl     a second AuthenticationSASL instead of SASLContinue, then Ok
    iterations      SASLContinue asking for 10^9 PBKDF2 iterations
    cleartext       AuthenticationCleartextPassword instead of SASL
    params-flood    a correct login followed by 5000 ParameterStatus messages
    probe-row       a correct login; every query is answered with a DataRow of length 4
                    (no column count at all) before its CommandComplete

Whatever a scenario accepts as a "successful" login, it then answers every Query with a
row "fake:<scenario>" (so a pooler that was fooled shows it to its client), except
pgusher's health check query, which gets a primary's answer. Events go to
stdout, one line each: CONN <scenario>, PASSWORD <scenario> <text> (a cleartext password
was received), LOGGED-IN <scenario>, QUERY <scenario> <sql>, GONE <scenario>.
"""
import argparse
import base64
import hashlib
import hmac
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgwire import PROTO_30, SSL_REQUEST, GSSENC_REQUEST, msg  # noqa: E402

ITERATIONS = 4096
SCENARIOS = ("good", "ok-after-sasl", "bad-signature", "repeat-sasl", "iterations",
             "cleartext", "params-flood", "probe-row")


OUT_LOCK = threading.Lock()


def out(*a):
    with OUT_LOCK:
        print(*a, flush=True)


def auth(code, extra=b""):
    return msg(b"R", struct.pack("!I", code) + extra)


def param(k, v):
    return msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")


def ready():
    return msg(b"Z", b"I")


class Gone(Exception):
    pass


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Gone()
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def first_packet(self):
        (n,) = struct.unpack("!I", self.read(4))
        return self.read(n - 4)

    def message(self):
        typ = self.read(1)
        (n,) = struct.unpack("!I", self.read(4))
        return typ, self.read(n - 4)

    def send(self, data):
        self.sock.sendall(data)


def sasl_initial(body):
    """Mechanism and client-first-message of a SASLInitialResponse body."""
    mech, rest = body.split(b"\0", 1)
    (n,) = struct.unpack("!i", rest[:4])
    return mech.decode(), rest[4:4 + n].decode()


class Scram:
    """The server side of SCRAM-SHA-256 for one password."""

    def __init__(self, password, iterations=ITERATIONS):
        self.salt = os.urandom(16)
        self.iterations = iterations
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, ITERATIONS)
        self.client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def first(self, client_first):
        self.client_first_bare = client_first.split(",", 2)[2]
        cnonce = dict(a.split("=", 1) for a in self.client_first_bare.split(","))["r"]
        self.nonce = cnonce + base64.b64encode(os.urandom(18)).decode()
        self.server_first = "r=%s,s=%s,i=%d" % (
            self.nonce, base64.b64encode(self.salt).decode(), self.iterations)
        return self.server_first

    def final(self, client_final, forge=False):
        without_proof, proof = client_final.rsplit(",p=", 1)
        auth_msg = ",".join((self.client_first_bare, self.server_first, without_proof)).encode()
        stored = hashlib.sha256(self.client_key).digest()
        sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
        want = bytes(a ^ b for a, b in zip(self.client_key, sig))
        if base64.b64decode(proof) != want:
            return None
        server_sig = hmac.new(self.server_key, auth_msg, hashlib.sha256).digest()
        if forge:
            server_sig = bytes(b ^ 0xFF for b in server_sig)
        return "v=" + base64.b64encode(server_sig).decode()


def sasl_request():
    return auth(10, b"SCRAM-SHA-256\0\0")


def serve_queries(peer, scenario):
    """After a 'login': answer every Query with one row (or the hostile DataRow)."""
    while True:
        typ, body = peer.message()
        if typ == b"X":
            return
        if typ != b"Q":
            continue
        out("QUERY", scenario, body.rstrip(b"\0").decode(errors="replace"))
        rowdesc = msg(b"T", struct.pack("!H", 1) + b"fake\0" + struct.pack("!IHIhih", 0, 0, 25,
                                                                          -1, -1, 0))
        if scenario == "probe-row":
            peer.send(rowdesc + msg(b"D", b"") + msg(b"C", b"SELECT 1\0") + ready())
            continue
        if body.startswith(b"SELECT pg_is_in_recovery()"):
            # pgusher's health check: a primary, as PostgreSQL would answer.
            cols = [b"f", b"0/3000148", b"0"]
            row = struct.pack("!H", 4) + b"".join(struct.pack("!I", len(c)) + c for c in cols)
            row += struct.pack("!i", -1)
            peer.send(msg(b"D", row) + msg(b"C", b"SELECT 1\0") + ready())
            continue
        val = ("fake:" + scenario).encode()
        row = msg(b"D", struct.pack("!HI", 1, len(val)) + val)
        peer.send(rowdesc + row + msg(b"C", b"SELECT 1\0") + ready())


def welcome(peer, scenario):
    peer.send(auth(0))
    msgs = [param("server_version", "17.0 (fakepg)"), param("client_encoding", "UTF8"),
            param("in_hot_standby", "off")]
    if scenario == "params-flood":
        msgs += [param("fake_param_%d" % i, "x" * 20) for i in range(5000)]
    msgs += [msg(b"K", struct.pack("!II", 4242, 4343)), ready()]
    peer.send(b"".join(msgs))
    out("LOGGED-IN", scenario)
    serve_queries(peer, scenario)


def play(peer, scenario, user, password):
    pkt = peer.first_packet()
    (code,) = struct.unpack("!I", pkt[:4])
    if code in (SSL_REQUEST, GSSENC_REQUEST):
        peer.send(b"N")
        pkt = peer.first_packet()
        (code,) = struct.unpack("!I", pkt[:4])
    if code != PROTO_30:
        return
    if scenario == "cleartext":
        peer.send(auth(3))
        typ, body = peer.message()
        out("PASSWORD", scenario, body.rstrip(b"\0").decode(errors="replace"))
        return welcome(peer, scenario)

    scram = Scram(password, 1000000000 if scenario == "iterations" else ITERATIONS)
    peer.send(sasl_request())
    typ, body = peer.message()
    mech, client_first = sasl_initial(body)
    if scenario == "ok-after-sasl":
        return welcome(peer, scenario)
    if scenario == "repeat-sasl":
        peer.send(sasl_request())
        peer.message()
        return welcome(peer, scenario)
    peer.send(auth(11, scram.first(client_first).encode()))
    typ, body = peer.message()
    final = scram.final(body.decode(), forge=scenario == "bad-signature")
    if final is None:
        peer.send(msg(b"E", b"SFATAL\0C28P01\0Mfakepg: wrong proof\0\0"))
        return
    peer.send(auth(12, final.encode()))
    welcome(peer, scenario)


def handle(conn, scenario, user, password):
    out("CONN", scenario)
    try:
        play(Peer(conn), scenario, user, password)
    except (Gone, OSError, ValueError, KeyError, struct.error):
        pass
    finally:
        out("GONE", scenario)
        conn.close()


def listen(scenario, user, password, sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=handle, args=(conn, scenario, user, password),
                         daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", default="evil")
    ap.add_argument("--password", default="evilpass")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ports-file", required=True)
    ap.add_argument("scenario", nargs="+", choices=SCENARIOS)
    a = ap.parse_args()
    lines, threads = [], []
    for sc in a.scenario:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a.host, 0))
        s.listen(64)
        lines.append("%s %d\n" % (sc, s.getsockname()[1]))
        threads.append(threading.Thread(target=listen, args=(sc, a.user, a.password, s),
                                        daemon=True))
    for t in threads:
        t.start()
    tmp = a.ports_file + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.rename(tmp, a.ports_file)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
