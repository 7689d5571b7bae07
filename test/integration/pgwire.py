#!/usr/bin/env python3
"""Minimal PostgreSQL wire-protocol client for pgusher's integration tests (stdlib only).

Every subcommand prints one line per event, easy to grep from shell:
    SSL-REPLY N            answer byte to SSLRequest / GSSENCRequest
    AUTH <kind>            authentication request seen (ok, cleartext, md5, sasl)
    ERROR S=.. C=.. M=..   an ErrorResponse (severity, SQLSTATE, message)
    NOTICE ...             a NoticeResponse
    READY <status>         ReadyForQuery
    ROW a|b|c              a DataRow
    CLOSED after <s>       the peer closed the connection (seconds since the last send)
    OPEN after <s>         still open when our wait ran out
    BYTES <hex>            bytes that are not a valid message stream

Subcommands:
    startup  [--ssl-first|--gss-first] [--password P] [--param K=V]... [--query Q]...
                                     normal login (--param: extra startup parameters)
    raw      --hex HEX [--close]     send raw bytes (e.g. garbage); report what comes back
    idle                             connect, send nothing, report when the peer closes
    stall                            send StartupMessage, never answer the auth request;
                                     report what comes back and when the peer closes
    blackhole --listen-port P        a "server" that accepts and never answers; prints
                                     ACCEPTED / PEER-CLOSED after <s> per connection
    maxconn  --n N                   log in N clients and hold them, try client N+1,
                                     then run SELECT 1 on the first N
    unread   --n N --query Q [--reset] [--hold S] [--valid]
                                     N clients one after the other: log in, send Q (a large
                                     result) and never read it, send a bad message header
                                     (not with --valid), then reset the connection (--reset)
                                     or keep it open, still unread, S seconds; prints
                                     UNREAD-DONE N
    flood    --what ssl|query [--query Q] [--max-mb M] [--seconds S] [--rss-pid PID]
                                     send SSLRequests (before login) or queries (after
                                     login) as fast as the pooler takes them, never reading;
                                     stop at M MB, S seconds, when the pooler stops reading
                                     (1 s) or closes; prints FLOOD sent=<bytes> end=<why> and,
                                     with --rss-pid, RSS-GROWTH-KB <n> of that process, taken
                                     while the connection is still open
    hold     --n N [--query Q]... [--unread Q] [--hold S] [--rss-pid PID]
                                     log in N clients, each runs the queries (and sends the
                                     --unread one, whose result it never reads), then all stay
                                     idle S seconds and leave (Terminate); prints HELD N (and,
                                     with --rss-pid, RSS-PER-CLIENT-B <n>: that process's RSS
                                     growth over the logins per client), then RELEASED N
    badlogins --n N --password P     N logins, each to a new random database name, with a
                                     wrong password; prints BADLOGINS refused=<n> of <N>
    extended --script FILE           extended-protocol messages, one per line, over one or
                                     more connections ("@N " prefix picks connection N, 0 by
                                     default): P name|query[|oid,..], B stmt[|p1,p2], E, S, H,
                                     D S|P name, C S|P name, Q sql, PBIG name BYTES (a Parse
                                     whose query text is BYTES long), RUN shell-command,
                                     a name ~N: N characters long,
                                     WAIT (read until every
                                     Sync/Query sent on that connection is answered); prints
                                     "N: EVENT" lines: PARSE-OK BIND-OK CLOSE-OK PARAMS n
                                     ROWDESC n NODATA ROW a|b COMPLETE tag SUSPENDED EMPTY
                                     ERROR .. READY s
"""
import argparse
import base64
import hashlib
import hmac
import os
import socket
import struct
import subprocess
import sys
import time

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
PROTO_30 = 196608


def out(*a):
    print(*a, flush=True)


class Conn:
    def __init__(self, host, port, timeout, rcvbuf=0):
        self.backend_key = None
        if host.startswith("/"):
            # A Unix socket directory, as libpq takes it.
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect("%s/.s.PGSQL.%d" % (host, port))
        elif rcvbuf:
            # Set before connecting, so that the window the peer sees is small from the start.
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.last_send = time.monotonic()
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)
        self.last_send = time.monotonic()

    def _fill(self, deadline):
        """Read more bytes; False when the peer closed or the deadline passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def read_bytes(self, n, wait):
        deadline = time.monotonic() + wait
        while len(self.buf) < n:
            if not self._fill(deadline):
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_msg(self, wait):
        """(type, body) or None on close/timeout."""
        deadline = time.monotonic() + wait
        while True:
            if len(self.buf) >= 5:
                typ = self.buf[0:1]
                (length,) = struct.unpack("!I", self.buf[1:5])
                if length < 4 or length > 100_000_000 or not (typ.isalpha() or typ in b"123"):
                    out("BYTES " + self.buf[:64].hex())
                    self.buf = b""
                    return None
                if len(self.buf) >= 1 + length:
                    body = self.buf[5 : 1 + length]
                    self.buf = self.buf[1 + length :]
                    return typ, body
            if not self._fill(deadline):
                return None

    def report_end(self):
        el = time.monotonic() - self.last_send
        if self.closed:
            out("CLOSED after %.1f" % el)
        else:
            out("OPEN after %.1f" % el)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def fields(body):
    res = {}
    for part in body.split(b"\0"):
        if part:
            res[chr(part[0])] = part[1:].decode(errors="replace")
    return res


def fmt_error(body):
    f = fields(body)
    return "S=%s C=%s M=%s" % (f.get("S", "?"), f.get("C", "?"), f.get("M", "?"))


def startup_packet(user, database, extra=()):
    params = [("user", user)]
    if database is not None:
        params.append(("database", database))
    params += list(extra)
    payload = struct.pack("!I", PROTO_30)
    for k, v in params:
        payload += k.encode() + b"\0" + v.encode() + b"\0"
    payload += b"\0"
    return struct.pack("!I", len(payload) + 4) + payload


def msg(typ, payload):
    return typ + struct.pack("!I", len(payload) + 4) + payload


def scram_client(conn, user, password, wait):
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=,r=" + nonce
    first = ("n,," + first_bare).encode()
    mech = b"SCRAM-SHA-256\0"
    conn.send(msg(b"p", mech + struct.pack("!I", len(first)) + first))
    m = conn.read_msg(wait)
    if not m or m[0] != b"R" or struct.unpack("!I", m[1][:4])[0] != 11:
        return m
    server_first = m[1][4:].decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(ck).digest()
    final_wo_proof = "c=biws,r=" + attrs["r"]
    auth_msg = ",".join([first_bare, server_first, final_wo_proof]).encode()
    sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig))).decode()
    conn.send(msg(b"p", (final_wo_proof + ",p=" + proof).encode()))
    return None


def login(conn, user, database, password, wait, quiet=False, extra=()):
    """Send StartupMessage, answer auth; returns True at ReadyForQuery."""
    conn.send(startup_packet(user, database, extra))
    while True:
        m = conn.read_msg(wait)
        if m is None:
            if not quiet:
                conn.report_end()
            return False
        typ, body = m
        if typ == b"R":
            (code,) = struct.unpack("!I", body[:4])
            if code == 0:
                quiet or out("AUTH ok")
            elif code == 3:
                quiet or out("AUTH cleartext")
                conn.send(msg(b"p", (password or "").encode() + b"\0"))
            elif code == 5:
                quiet or out("AUTH md5")
                inner = hashlib.md5(((password or "") + user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                conn.send(msg(b"p", b"md5" + outer.encode() + b"\0"))
            elif code == 10:
                quiet or out("AUTH sasl")
                r = scram_client(conn, user, password or "", wait)
                if r is not None and r[0] == b"E":
                    out("ERROR " + fmt_error(r[1]))
                    return False
            elif code in (11, 12):
                pass
            else:
                out("AUTH unsupported %d" % code)
                return False
        elif typ == b"E":
            out("ERROR " + fmt_error(body))
            if not quiet:
                conn.read_msg(min(wait, 2))
                conn.report_end()
            return False
        elif typ == b"N":
            quiet or out("NOTICE " + fmt_error(body))
        elif typ == b"Z":
            quiet or out("READY " + body.decode())
            return True
        elif typ == b"K":
            conn.backend_key = body
        # S (ParameterStatus): ignore


def query(conn, sql, wait, quiet=False):
    """Simple query; prints rows/errors; returns (ok, rows)."""
    conn.send(msg(b"Q", sql.encode() + b"\0"))
    ok, rows = True, []
    while True:
        m = conn.read_msg(wait)
        if m is None:
            conn.report_end()
            return False, rows
        typ, body = m
        if typ == b"D":
            (n,) = struct.unpack("!H", body[:2])
            pos, vals = 2, []
            for _ in range(n):
                (ln,) = struct.unpack("!i", body[pos : pos + 4])
                pos += 4
                if ln < 0:
                    vals.append("")
                else:
                    vals.append(body[pos : pos + ln].decode(errors="replace"))
                    pos += ln
            rows.append("|".join(vals))
            quiet or out("ROW " + "|".join(vals))
        elif typ == b"E":
            ok = False
            out("ERROR " + fmt_error(body))
        elif typ == b"Z":
            quiet or out("READY " + body.decode())
            return ok, rows


def cmd_startup(a):
    c = Conn(a.host, a.port, a.wait)
    if a.ssl_first or a.gss_first:
        code = SSL_REQUEST if a.ssl_first else GSSENC_REQUEST
        c.send(struct.pack("!II", 8, code))
        r = c.read_bytes(1, a.wait)
        if r is None:
            out("SSL-REPLY none")
            c.report_end()
            return 1
        out("SSL-REPLY " + r.decode(errors="replace"))
        if r != b"N":
            return 1
    extra = [kv.split("=", 1) for kv in a.param or []]
    if not login(c, a.user, a.database, a.password, a.wait, extra=extra):
        return 1
    for q in a.query or []:
        ok, _ = query(c, q, a.wait)
        if c.closed:
            return 1
    if a.hold:
        # Sit idle; report anything the pooler sends and when it closes on us.
        c.last_send = time.monotonic()
        while True:
            m = c.read_msg(a.hold)
            if m is None:
                c.report_end()
                return 0
            typ, body = m
            if typ == b"E":
                out("ERROR " + fmt_error(body))
            else:
                out("MSG %s len=%d" % (typ.decode(), len(body)))
    c.send(msg(b"X", b""))
    c.close()
    return 0


def cmd_raw(a):
    c = Conn(a.host, a.port, a.wait)
    try:
        c.send(bytes.fromhex(a.hex))
        if a.close:
            c.sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        out("CLOSED after 0.0")
        return 0
    while True:
        m = c.read_msg(a.wait)
        if m is None:
            c.report_end()
            return 0
        typ, body = m
        if typ in (b"E", b"N"):
            out(("ERROR " if typ == b"E" else "NOTICE ") + fmt_error(body))
        else:
            out("MSG %s len=%d" % (typ.decode(), len(body)))


def cmd_idle(a):
    c = Conn(a.host, a.port, a.wait)
    while True:
        m = c.read_msg(a.wait)
        if m is None:
            c.report_end()
            return 0
        typ, body = m
        if typ == b"E":
            out("ERROR " + fmt_error(body))
        else:
            out("MSG %s len=%d" % (typ.decode(), len(body)))


def cmd_stall(a):
    c = Conn(a.host, a.port, a.wait)
    c.send(startup_packet(a.user, a.database))
    while True:
        m = c.read_msg(a.wait)
        if m is None:
            c.report_end()
            return 0
        typ, body = m
        if typ == b"R":
            out("AUTH request %d" % struct.unpack("!I", body[:4])[0])
        elif typ == b"E":
            out("ERROR " + fmt_error(body))
        else:
            out("MSG %s len=%d" % (typ.decode(), len(body)))


def cmd_blackhole(a):
    import select

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.listen_port))
    ls.listen(16)
    out("LISTENING %s:%d" % (a.host, a.listen_port))
    conns = {}
    end = time.monotonic() + a.wait
    while time.monotonic() < end:
        r, _, _ = select.select([ls] + list(conns), [], [], 0.1)
        for s in r:
            if s is ls:
                cs, _ = ls.accept()
                conns[cs] = time.monotonic()
                out("ACCEPTED")
            else:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    out("PEER-CLOSED after %.1f" % (time.monotonic() - conns.pop(s)))
                    s.close()
    return 0


def cmd_maxconn(a):
    held = []
    for i in range(a.n):
        c = Conn(a.host, a.port, a.wait)
        if not login(c, a.user, a.database, a.password, a.wait, quiet=True):
            out("HELD-LOGIN-FAILED %d" % i)
            return 1
        held.append(c)
    out("HELD %d" % len(held))
    extra = Conn(a.host, a.port, a.wait)
    if login(extra, a.user, a.database, a.password, a.wait, quiet=True):
        out("EXTRA-LOGIN-OK")
    else:
        out("EXTRA-REFUSED")
    extra.close()
    good = 0
    for c in held:
        ok, rows = query(c, "select 1", a.wait, quiet=True)
        if ok and rows == ["1"]:
            good += 1
    out("HELD-QUERIES-OK %d" % good)
    for c in held:
        c.send(msg(b"X", b""))
        c.close()
    return 0


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cmd_hold(a):
    """Many idle logged-in clients: what each costs the pooler while it does nothing."""
    rss0 = rss_kb(a.rss_pid) if a.rss_pid else 0
    held = []
    for i in range(a.n):
        c = Conn(a.host, a.port, a.wait, rcvbuf=4096 if a.unread else 0)
        if not login(c, a.user, a.database, a.password, a.wait, quiet=True):
            out("HOLD-LOGIN-FAILED %d" % i)
            return 1
        for q in a.query or []:
            ok, _ = query(c, q, a.wait, quiet=True)
            if not ok:
                out("HOLD-QUERY-FAILED %d" % i)
                return 1
        if a.unread:
            c.send(msg(b"Q", a.unread.encode() + b"\0"))
        held.append(c)
    if a.rss_pid:
        time.sleep(0.5)
        out("RSS-PER-CLIENT-B %d" % ((rss_kb(a.rss_pid) - rss0) * 1024 // max(a.n, 1)))
    out("HELD %d" % len(held))
    time.sleep(a.hold)
    for c in held:
        c.send(msg(b"X", b""))
        c.close()
    out("RELEASED %d" % len(held))
    return 0


def cmd_unread(a):
    """Clients the pooler must close and free although they never take their output."""
    held = []
    for i in range(a.n):
        # A small receive window, so that the result piles up in the pooler at once.
        c = Conn(a.host, a.port, a.wait, rcvbuf=4096)
        if not login(c, a.user, a.database, a.password, a.wait, quiet=True):
            out("UNREAD-LOGIN-FAILED %d" % i)
            return 1
        c.send(msg(b"Q", a.query[0].encode() + b"\0"))
        time.sleep(0.2)
        if not a.valid:
            c.send(b"Q" + struct.pack("!I", 2))  # length 2: shorter than the length field itself
            time.sleep(0.05)
        if a.reset:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        else:
            held.append(c)
    out("UNREAD-DONE %d" % a.n)
    if held:
        time.sleep(a.hold)
        for c in held:
            c.close()
    return 0


def cmd_flood(a):
    import select

    rss0 = rss_kb(a.rss_pid) if a.rss_pid else 0
    c = Conn(a.host, a.port, a.wait, rcvbuf=4096)  # little room for what we never read
    if a.what == "ssl":
        chunk = struct.pack("!II", 8, SSL_REQUEST) * 8192
    else:
        if not login(c, a.user, a.database, a.password, a.wait, quiet=True):
            out("FLOOD-LOGIN-FAILED")
            return 1
        q = msg(b"Q", a.query[0].encode() + b"\0")
        chunk = q * max(1, 65536 // len(q))
    c.sock.setblocking(False)
    sent, end, why = 0, time.monotonic() + a.seconds, "limit"
    pending = memoryview(chunk)
    while sent < a.max_mb * 1024 * 1024 and time.monotonic() < end:
        _, w, _ = select.select([], [c.sock], [], 1.0)
        if not w:
            why = "blocked"  # the pooler stopped reading us
            break
        try:
            n = c.sock.send(pending)
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            why = "closed"
            break
        sent += n
        pending = pending[n:] if n < len(pending) else memoryview(chunk)
    out("FLOOD sent=%d end=%s" % (sent, why))
    if a.rss_pid:
        time.sleep(1.0)  # let the pooler work through what it has read
        out("RSS-GROWTH-KB %d" % (rss_kb(a.rss_pid) - rss0))
    c.close()
    return 0


def cmd_badlogins(a):
    refused = 0
    for i in range(a.n):
        c = Conn(a.host, a.port, a.wait)
        name = "rnd_%s" % os.urandom(6).hex()
        if login(c, a.user, name, a.password, a.wait, quiet=True):
            out("BADLOGIN-ACCEPTED %s" % name)
        else:
            refused += 1
        c.close()
    out("BADLOGINS refused=%d of %d" % (refused, a.n))
    return 0


def cmd_cancel(a):
    """Run a long query, cancel it over another connection (to --cancel-host/--cancel-port,
    e.g. another process of a peered group), report whether it was cancelled:
    KEY <hex>, then CANCELED <sqlstate> after <s> | NOT-CANCELED <what> after <s>."""
    conn = Conn(a.host, a.port, a.wait)
    if not login(conn, a.user, a.database, a.password, a.wait, quiet=True):
        out("LOGIN-FAILED")
        return 1
    key = bytes.fromhex(a.hex) if a.hex else conn.backend_key
    out("KEY " + key.hex())
    conn.send(msg(b"Q", ("select pg_sleep(%g)" % a.seconds).encode() + b"\0"))
    time.sleep(0.3)
    t0 = time.monotonic()
    cc = Conn(a.cancel_host or a.host, a.cancel_port or a.port, a.wait)
    cc.send(struct.pack("!II", 16, 80877102) + key)
    while cc.read_msg(a.wait) is not None:
        pass
    cc.close()
    while True:
        m = conn.read_msg(a.seconds + a.wait)
        if m is None:
            out("NOT-CANCELED closed after %.1f" % (time.monotonic() - t0))
            return 0
        typ, body = m
        if typ == b"E":
            code = [f[1:] for f in body.split(b"\0") if f.startswith(b"C")]
            out("CANCELED %s after %.1f" % (code[0].decode() if code else "?", time.monotonic() - t0))
            return 0
        if typ == b"Z":
            out("NOT-CANCELED completed after %.1f" % (time.monotonic() - t0))
            return 0


def ext_events(conn, idx, typ, body):
    """One line per extended-protocol response; returns True at ReadyForQuery."""
    names = {b"1": "PARSE-OK", b"2": "BIND-OK", b"3": "CLOSE-OK", b"n": "NODATA", b"s": "SUSPENDED",
             b"I": "EMPTY"}
    if typ in names:
        out("%d: %s" % (idx, names[typ]))
    elif typ == b"t":
        out("%d: PARAMS %d" % (idx, struct.unpack("!H", body[:2])[0]))
    elif typ == b"T":
        out("%d: ROWDESC %d" % (idx, struct.unpack("!H", body[:2])[0]))
    elif typ == b"D":
        (n,) = struct.unpack("!H", body[:2])
        pos, vals = 2, []
        for _ in range(n):
            (ln,) = struct.unpack("!i", body[pos : pos + 4])
            pos += 4
            vals.append("" if ln < 0 else body[pos : pos + ln].decode(errors="replace"))
            pos += max(ln, 0)
        out("%d: ROW %s" % (idx, "|".join(vals)))
    elif typ == b"C":
        out("%d: COMPLETE %s" % (idx, body.rstrip(b"\0").decode()))
    elif typ == b"E":
        f = fields(body)
        out("%d: ERROR C=%s M=%s" % (idx, f.get("C", "?"), f.get("M", "?")))
    elif typ == b"Z":
        out("%d: READY %s" % (idx, body.decode()))
        return True
    return False


def cmd_extended(a):
    conns, owed = {}, {}

    def conn(i):
        if i not in conns:
            c = Conn(a.host, a.port, a.wait)
            if not login(c, a.user, a.database, a.password, a.wait, quiet=True):
                raise SystemExit("login failed on connection %d" % i)
            conns[i], owed[i] = c, 0
        return conns[i]

    def nm(x):  # "~N" stands for a statement name N characters long
        return "n" * int(x[1:]) if x.startswith("~") and x[1:].isdigit() else x

    with open(a.script) as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip() and not ln.startswith("#")]
    for line in lines:
        i = 0
        if line.startswith("@"):
            head, line = line.split(" ", 1)
            i = int(head[1:])
        c = conn(i)
        op, _, arg = line.partition(" ")
        if op == "P":
            parts = arg.split("|")
            oids = [int(x) for x in parts[2].split(",")] if len(parts) > 2 and parts[2] else []
            c.send(msg(b"P", nm(parts[0]).encode() + b"\0" + parts[1].encode() + b"\0" +
                       struct.pack("!H", len(oids)) + b"".join(struct.pack("!I", o) for o in oids)))
        elif op == "PBIG":
            name, size = arg.split(" ")
            head = "SELECT length('"
            text = head + "x" * (int(size) - len(head) - 3) + "')"
            c.send(msg(b"P", name.encode() + b"\0" + text.encode() + b"\0" + struct.pack("!H", 0)))
        elif op == "B":
            parts = arg.split("|")
            vals = parts[1].split(",") if len(parts) > 1 else []
            body = b"\0" + nm(parts[0]).encode() + b"\0" + struct.pack("!H", 0) + struct.pack("!H", len(vals))
            for v in vals:
                body += struct.pack("!I", len(v)) + v.encode()
            c.send(msg(b"B", body + struct.pack("!H", 0)))
        elif op == "E":
            c.send(msg(b"E", b"\0" + struct.pack("!I", 0)))
        elif op == "S":
            c.send(msg(b"S", b""))
            owed[i] += 1
        elif op == "H":
            c.send(msg(b"H", b""))
        elif op in ("D", "C"):
            kind, _, name = arg.partition(" ")
            c.send(msg(op.encode(), kind.encode() + nm(name).encode() + b"\0"))
        elif op == "Q":
            c.send(msg(b"Q", arg.encode() + b"\0"))
            owed[i] += 1
        elif op == "RUN":
            # a shell command between steps (RECONNECT on the console, killing a server...)
            rc = subprocess.call(arg, shell=True, stdout=subprocess.DEVNULL)
            out("%d: RUN rc=%d" % (i, rc))
        elif op == "WAIT":
            while owed[i] > 0:
                m = c.read_msg(a.wait)
                if m is None:
                    out("%d: TIMEOUT" % i)
                    c.report_end()
                    return 1
                if ext_events(c, i, *m):
                    owed[i] -= 1
        else:
            raise SystemExit("bad script line: " + line)
    for c in conns.values():
        c.send(msg(b"X", b""))
        c.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["startup", "raw", "idle", "stall", "blackhole", "maxconn", "unread", "flood", "cancel",
                                      "badlogins", "extended", "hold"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--listen-port", type=int, default=0)
    p.add_argument("--cancel-host", default="", help="cancel: send the CancelRequest here")
    p.add_argument("--cancel-port", type=int, default=0)
    p.add_argument("--hold", type=float, default=0,
                   help="startup, unread, hold: stay idle this long at the end")
    p.add_argument("--user", default="u_trust")
    p.add_argument("--database", default="testdb")
    p.add_argument("--password")
    p.add_argument("--query", action="append")
    p.add_argument("--param", action="append", help="startup: extra startup parameter KEY=VALUE")
    p.add_argument("--ssl-first", action="store_true")
    p.add_argument("--gss-first", action="store_true")
    p.add_argument("--hex", default="")
    p.add_argument("--close", action="store_true", help="raw: half-close after sending")
    p.add_argument("--reset", action="store_true", help="unread: reset each connection")
    p.add_argument("--valid", action="store_true")
    p.add_argument("--what", choices=["ssl", "query"], default="ssl", help="flood: what to send")
    p.add_argument("--max-mb", type=float, default=8, help="flood: stop after this many MB")
    p.add_argument("--seconds", type=float, default=5, help="flood: stop after this long")
    p.add_argument("--rss-pid", type=int, default=0, help="flood: report this process's RSS growth")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--unread", default="", help="hold: send this query, never read its result")
    p.add_argument("--script", help="extended: the message script")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for each answer")
    a = p.parse_args()
    try:
        cmds = {"startup": cmd_startup, "raw": cmd_raw, "idle": cmd_idle, "stall": cmd_stall,
                "blackhole": cmd_blackhole, "maxconn": cmd_maxconn, "unread": cmd_unread,
                "flood": cmd_flood, "badlogins": cmd_badlogins, "cancel": cmd_cancel,
                "extended": cmd_extended, "hold": cmd_hold}
        return cmds[a.cmd](a)
    except ConnectionRefusedError:
        out("REFUSED")
        return 2


if __name__ == "__main__":
    sys.exit(main())
