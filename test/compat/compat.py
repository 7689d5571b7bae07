#!/usr/bin/env python3
"""Differential harness: the same scenario against pgusher and against PgBouncer 1.25.2.

A scenario (test/compat/scenarios/NAME.scn) is an ini template, an optional auth file, a list
of client actions and the log lines to keep. The harness starts the pooler with that ini, runs
the actions over the wire protocol (stdlib only), records what every client received (rows,
command tags, errors with severity/SQLSTATE/message, NOTICEs, SHOW values) and the selected
log lines, normalises what legitimately differs (times, pids, ports, addresses, versions) and
compares:

  compat.py                     pgusher ($PGUSHER_BIN) against the recorded PgBouncer output
                                (test/compat/expected/NAME.out): what ctest runs, no PgBouncer
                                needed
  compat.py --live              also run PgBouncer ($PGUSHER_REF_BIN, default the 1.25.2 build
                                in ../shared/ref) and compare pgusher against that run
  compat.py --record            run PgBouncer only and (re)write expected/NAME.out
  compat.py NAME...             only these scenarios; -v prints both outputs
  compat.py --readme            rewrite README's list of deliberate differences from the
                                differences file (every run checks that it is current)

Deliberate differences (pgusher's additions, PgBouncer bugs not copied) are listed, each with
its reason, in test/compat/differences: lines matching an entry's pattern are dropped from both
outputs before the comparison. README's "Differences from PgBouncer" list comes from that file.

Scenario format: sections [ini] (the ini body: @PGPORT@, @PRIMARY@, @STANDBY1@, @STANDBY2@,
@DIR@, @PORT@, @BLACKHOLE@ (a port that accepts and never answers), @CLOSEDPORT@ (nothing
listens there) are substituted; listen_addr/listen_port/unix_socket_dir/logfile/pidfile/
auth_file/auth_type/admin_users are added unless set), [ini.N] (alternative bodies for the
`ini N` step), [auth] (auth file; default: the integration tests' users), [steps], [log]
(regular expressions: matching log lines, without their time/pid prefix, are compared), and
[volatile] (extra SHOW column names whose values are not compared). Steps, one a line:

  connect C DB USER [password=P] [K=V]...  log in (K=V: extra startup parameters; \s in V
                           is a space)
  query C SQL              simple query, wait for ReadyForQuery (10 s)
  send C SQL               send a query, do not wait
  wait C [SECONDS]         wait for ReadyForQuery of what was sent
  drain C SECONDS          report whatever arrives until the peer closes or time runs out
  close C                  send Terminate and close
  cancel C                 send a CancelRequest with C's key, report how it ends
  sql DB USER SQL          connect, one query, close (as `connect` + `query` + `close`)
  admin SQL                the same on the console (pgbouncer database, user postgres, TCP)
  unix_admin SQL           the same over the Unix socket
  raw C HEX                connect, send bytes, report what comes back until close (1.5 s)
  ini N                    rewrite the ini with the [ini.N] body
  signal SIG               send SIGHUP/SIGUSR1/SIGUSR2/SIGINT/SIGTERM to the pooler
  sleep S                  pause
  psql DB USER SQL         run psql -c (output and exit status recorded)
Text {x*N} in a step is replaced by N copies of x.
"""
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "test", "integration"))
import pgwire  # noqa: E402

PGPORT = int(os.environ.get("PGUSHER_PGPORT", "15432"))
REF_DEFAULT = os.path.join(os.path.dirname(SRC), "shared", "ref", "pgbouncer-1.25.2", "pgbouncer")
for cand in (REF_DEFAULT, "/work/shared/ref/pgbouncer-1.25.2/pgbouncer"):
    if os.path.exists(cand):
        REF_DEFAULT = cand
        break
WAIT = 10.0

DEFAULT_AUTH = '"postgres" ""\n"u_trust" ""\n"u_md5" "md5pass"\n"u_scram" "scrampass"\n' \
    '"u_plain" "plainpass"\n'

# SHOW columns whose values depend on time, addresses, ports or process ids.
VOLATILE = {
    "ptr", "link", "connect_time", "request_time", "wait", "wait_us", "port", "local_port",
    "remote_pid", "maxwait", "maxwait_us", "total_xact_time", "total_query_time",
    "total_wait_time", "total_received", "total_sent", "avg_xact_time", "avg_query_time",
    "avg_wait_time", "avg_recv", "avg_sent", "bytes_received", "bytes_sent", "xact_time",
    "query_time", "wait_time", "total_server_assignment_count", "avg_server_assignment_count",
    "total_client_parse_count", "total_server_parse_count", "total_bind_count",
    "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count",
    "recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail",
    "send_avail", "close_needed", "state_change",
}


def expand(text):
    return re.sub(r"\{(.+?)\*(\d+)\}", lambda m: m.group(1) * int(m.group(2)), text)


def parse_scenario(path):
    sc = {"ini": "", "inis": {}, "auth": None, "steps": [], "log": [], "volatile": set(),
          "title": ""}
    sect = None
    buf = []

    def flush():
        body = "\n".join(buf).strip("\n") + "\n"
        if sect == "ini":
            sc["ini"] = body
        elif sect and sect.startswith("ini."):
            sc["inis"][sect[4:]] = body
        elif sect == "auth":
            sc["auth"] = body
        elif sect == "steps":
            sc["steps"] = [ln.strip() for ln in buf if ln.strip() and not ln.strip().startswith("#")]
        elif sect == "log":
            sc["log"] = [re.compile(ln.strip()) for ln in buf if ln.strip()]
        elif sect == "volatile":
            sc["volatile"] = {w for ln in buf for w in ln.replace(",", " ").split()}

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^\[(ini(?:\.\w+)?|auth|steps|log|volatile)\]\s*$", line)
            if m:
                flush()
                sect, buf = m.group(1), []
            elif sect is None:
                if line.startswith("#") and not sc["title"]:
                    sc["title"] = line.lstrip("# ")
            else:
                buf.append(line)
    flush()
    return sc


def parse_differences(path):
    """Entries: 'scenario: NAME|*', then 'ignore: REGEX' (drop matching lines) or 'replace:
    REGEX' + 'with: TEXT' (rewrite the match), and 'reason: TEXT'; a blank line between."""
    entries, cur = [], {}
    if not os.path.exists(path):
        return entries
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                if cur:
                    entries.append(cur)
                cur = {}
                continue
            k, _, v = line.partition(":")
            k = k.strip()
            v = v.strip()
            if k == "reason" and "reason" in cur:
                cur["reason"] += " " + v
            else:
                cur[k] = v
    if cur:
        entries.append(cur)
    for e in entries:
        e["re"] = re.compile(e.get("ignore") or e["replace"])
    return entries


class Pooler:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.dir = workdir
        self.port = free_port()
        self.ini = os.path.join(workdir, "pooler.ini")
        self.log = os.path.join(workdir, "pooler.log")
        self.proc = None
        self.run_as = None
        # A "server" that accepts connections (the kernel does) and never answers, and a
        # port where nothing listens: for connect timeouts and refused connections.
        self.blackhole = socket.socket()
        self.blackhole.bind(("127.0.0.1", 0))
        self.blackhole.listen(64)
        self.blackhole_port = self.blackhole.getsockname()[1]
        self.closed_port = free_port()
        if os.getuid() == 0 and os.path.basename(binary).startswith("pgbouncer"):
            self.run_as = "postgres"

    def subst(self, body):
        for k, v in (("@PGPORT@", str(PGPORT)), ("@PRIMARY@", "127.0.0.1"),
                     ("@STANDBY1@", "127.0.0.2"), ("@STANDBY2@", "127.0.0.3"),
                     ("@DIR@", self.dir), ("@PORT@", str(self.port)),
                     ("@BLACKHOLE@", str(self.blackhole_port)),
                     ("@CLOSEDPORT@", str(self.closed_port))):
            body = body.replace(k, v)
        return body

    def write_ini(self, body):
        body = self.subst(body)
        have = set()
        sect = None
        for line in body.splitlines():
            m = re.match(r"^\s*\[([^]]+)\]", line)
            if m:
                sect = m.group(1).lower()
            elif sect == "pgbouncer":
                m = re.match(r"^\s*([A-Za-z_]+)\s*=", line)
                if m:
                    have.add(m.group(1).lower())
        auto = [("listen_addr", "127.0.0.1"), ("listen_port", str(self.port)),
                ("unix_socket_dir", self.dir), ("logfile", self.log),
                ("pidfile", os.path.join(self.dir, "pooler.pid")),
                ("auth_file", os.path.join(self.dir, "userlist.txt")),
                ("auth_type", "trust"), ("admin_users", "postgres")]
        add = "".join("%s = %s\n" % (k, v) for k, v in auto if k not in have)
        out, done = [], False
        for line in body.splitlines():
            out.append(line)
            if re.match(r"^\s*\[pgbouncer\]", line, re.I) and not done:
                out.append(add.rstrip("\n"))
                done = True
        if not done:
            out += ["", "[pgbouncer]", add.rstrip("\n")]
        tmp = self.ini + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(out) + "\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.ini)

    def start(self):
        cmd = [self.binary, self.ini]
        if self.run_as:
            cmd = ["setpriv", "--reuid=" + self.run_as, "--regid=" + self.run_as,
                   "--init-groups", "--"] + cmd
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.stderr, stderr=self.stderr,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pooler exited during startup: " + self.read_stderr())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pooler not listening after 10 s")

    def read_stderr(self):
        try:
            with open(os.path.join(self.dir, "stderr.log"), errors="replace") as f:
                return f.read()[-20000:]
        except OSError:
            return ""

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        self.blackhole.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Client:
    """One client connection; every event is appended to `out` as a line."""

    def __init__(self, name, out, host, port, unix=None):
        self.name = name
        self.out = out
        if unix:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(WAIT)
            sock.connect(unix)
            self.conn = pgwire.Conn.__new__(pgwire.Conn)
            self.conn.sock, self.conn.timeout, self.conn.buf = sock, WAIT, b""
            self.conn.last_send, self.conn.closed = time.monotonic(), False
        else:
            self.conn = pgwire.Conn(host, port, WAIT)
        self.pending = 0

    def emit(self, text):
        # One output line per text line (a DETAIL may span several), as in the recordings.
        self.out.extend(("%s: %s" % (self.name, text)).split("\n"))

    def event(self, typ, body):
        """Record one message; returns 'Z' at ReadyForQuery, 'E' after an error."""
        if typ == b"E" or typ == b"N":
            f = pgwire.fields(body)
            self.emit("%s %s %s %s" % ("ERROR" if typ == b"E" else "NOTICE",
                                       f.get("S", "?"), f.get("C", "?"), f.get("M", "?")))
            if "D" in f:
                self.emit("  DETAIL " + f["D"])
            if "H" in f:
                self.emit("  HINT " + f["H"])
        elif typ == b"T":
            (n,) = struct.unpack("!H", body[:2])
            names, pos = [], 2
            for _ in range(n):
                end = body.index(b"\0", pos)
                names.append(body[pos:end].decode(errors="replace"))
                pos = end + 1 + 18
            self.cols = names
            self.emit("COLUMNS " + "|".join(names))
        elif typ == b"D":
            (n,) = struct.unpack("!H", body[:2])
            pos, vals = 2, []
            for i in range(n):
                (ln,) = struct.unpack("!i", body[pos:pos + 4])
                pos += 4
                if ln < 0:
                    v = "NULL"
                else:
                    v = body[pos:pos + ln].decode(errors="replace")
                    pos += ln
                name = self.cols[i] if i < len(getattr(self, "cols", [])) else ""
                if name in self.volatile:
                    v = "*"
                vals.append(v)
            self.emit("ROW " + "|".join(vals))
        elif typ == b"C":
            self.emit("TAG " + body.rstrip(b"\0").decode(errors="replace"))
        elif typ == b"Z":
            self.emit("READY " + body.decode())
            return "Z"
        elif typ == b"I":
            self.emit("EMPTY")
        elif typ == b"K":
            self.key = body[:8]
        elif typ in (b"S", b"1", b"2", b"3", b"n", b"t"):
            pass
        else:
            self.emit("MSG " + typ.decode(errors="replace"))
        return None

    def login(self, user, db, password, params):
        c = self.conn
        try:
            c.send(pgwire.startup_packet(user, db, params))
        except OSError as e:
            self.emit("SEND-FAILED " + type(e).__name__)
            return False
        while True:
            m = c.read_msg(WAIT)
            if m is None:
                self.emit("CLOSED" if c.closed else "TIMEOUT")
                return False
            typ, body = m
            if typ == b"R":
                (code,) = struct.unpack("!I", body[:4])
                if code == 0:
                    self.emit("AUTH ok")
                elif code == 3:
                    c.send(pgwire.msg(b"p", (password or "").encode() + b"\0"))
                elif code == 5:
                    import hashlib
                    inner = hashlib.md5(((password or "") + user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                    c.send(pgwire.msg(b"p", b"md5" + outer.encode() + b"\0"))
                elif code == 10:
                    r = pgwire.scram_client(c, user, password or "", WAIT)
                    if r is not None:
                        self.event(*r)
                        return False
                continue
            if self.event(typ, body) == "Z":
                return True
            if typ == b"E":
                m = c.read_msg(1.0)
                self.emit("CLOSED" if m is None and c.closed else "OPEN")
                return False

    def send(self, sql):
        try:
            self.conn.send(pgwire.msg(b"Q", sql.encode() + b"\0"))
            self.pending += 1
        except OSError as e:
            self.emit("SEND-FAILED " + type(e).__name__)

    def wait(self, secs=WAIT):
        while self.pending > 0:
            m = self.conn.read_msg(secs)
            if m is None:
                self.emit("CLOSED" if self.conn.closed else "TIMEOUT")
                self.pending = 0
                return
            if self.event(*m) == "Z":
                self.pending -= 1

    def drain(self, secs):
        while True:
            m = self.conn.read_msg(secs)
            if m is None:
                self.emit("CLOSED" if self.conn.closed else "OPEN")
                return
            self.event(*m)

    def close(self):
        try:
            self.conn.send(pgwire.msg(b"X", b""))
            # Until the pooler has closed its side (so it has logged the close): log lines
            # of one connection then never overtake those of the next.
            deadline = time.monotonic() + 2.0
            while not self.conn.closed and self.conn._fill(deadline):
                self.conn.buf = b""
        except OSError:
            pass
        self.conn.close()


LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \S+ \[\d+\] ")


def normalise(line, pooler):
    line = line.replace(pooler.dir, "@DIR@")
    line = re.sub(r"\b0x[0-9a-f]+\b", "0x*", line)
    line = re.sub(r"(127\.0\.0\.\d+|unix):\d+", r"\1:*", line)
    line = re.sub(r"unix\(\d+\)", "unix(*)", line)
    line = re.sub(r"\bport=%d\b" % pooler.port, "port=@PORT@", line)
    line = re.sub(r"\b%d\b" % pooler.port, "@PORT@", line)
    line = re.sub(r"\b%d\b" % pooler.blackhole_port, "@BLACKHOLE@", line)
    line = re.sub(r"\b%d\b" % pooler.closed_port, "@CLOSEDPORT@", line)
    line = re.sub(r"\b%d\b" % PGPORT, "@PGPORT@", line)
    line = re.sub(r"\bpid[= ]\d+", "pid=*", line)
    line = re.sub(r"\b(PgBouncer|pgusher) \d+\.\d+(\.\d+)?\S*", "POOLER-VERSION", line)
    return generic(line)


def generic(line):
    """What differs from run to run whoever runs: applied to recorded output too."""
    return re.sub(r"\(age=\d+s\)", "(age=*)", line)


def run_scenario(name, sc, binary, keep=False):
    workdir = tempfile.mkdtemp(prefix="compat-%s." % name)
    os.chmod(workdir, 0o755)
    pooler = Pooler(binary, workdir)
    if pooler.run_as:
        import pwd
        pw = pwd.getpwnam(pooler.run_as)
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
    with open(os.path.join(workdir, "userlist.txt"), "w") as f:
        f.write(sc["auth"] if sc["auth"] is not None else DEFAULT_AUTH)
    os.chmod(os.path.join(workdir, "userlist.txt"), 0o644)
    out = []
    volatile = VOLATILE | sc["volatile"]
    clients = {}
    pooler.write_ini(sc["ini"])
    pooler.start()
    try:
        for step in sc["steps"]:
            step = expand(pooler.subst(step))
            shown = step if len(step) < 200 else step[:200] + "..."
            out.append("> " + shown)
            words = step.split()
            op = words[0]
            if op == "connect":
                cname, db, user = words[1:4]
                password, params = None, []
                for kv in words[4:]:
                    k, _, v = kv.partition("=")
                    v = v.replace("\\s", " ")
                    if k == "password":
                        password = v
                    else:
                        params.append((k, v))
                try:
                    cl = Client(cname, out, "127.0.0.1", pooler.port)
                except OSError as e:
                    out.append("%s: CONNECT-FAILED %s" % (cname, type(e).__name__))
                    continue
                cl.volatile = volatile
                clients[cname] = cl
                cl.login(user, db, password, params)
            elif op in ("query", "send") and words[1] not in clients:
                out.append("%s: NOT-CONNECTED" % words[1])
            elif op in ("query", "send"):
                cname = words[1]
                parts = step.split(None, 2)
                sql = parts[2] if len(parts) > 2 else ""
                clients[cname].send(sql)
                if op == "query":
                    clients[cname].wait()
            elif op == "wait":
                clients[words[1]].wait(float(words[2]) if len(words) > 2 else WAIT)
            elif op == "drain":
                clients[words[1]].drain(float(words[2]))
            elif op == "close":
                if words[1] in clients:
                    clients.pop(words[1]).close()
            elif op in ("sql", "admin", "unix_admin"):
                if op == "sql":
                    _, db, user, sql = step.split(None, 3)
                else:
                    db, user, sql = "pgbouncer", "postgres", step.split(None, 1)[1]
                unix = os.path.join(workdir, ".s.PGSQL.%d" % pooler.port) \
                    if op == "unix_admin" else None
                try:
                    cl = Client(op, out, "127.0.0.1", pooler.port, unix=unix)
                except OSError as e:
                    out.append("%s: CONNECT-FAILED %s" % (op, type(e).__name__))
                    continue
                cl.volatile = volatile
                if cl.login(user, db, None, []):
                    cl.send(sql)
                    cl.wait()
                cl.close()
            elif op == "raw":
                try:
                    cl = Client(words[1], out, "127.0.0.1", pooler.port)
                except OSError as e:
                    out.append("%s: CONNECT-FAILED %s" % (words[1], type(e).__name__))
                    continue
                cl.volatile = volatile
                try:
                    cl.conn.send(bytes.fromhex(words[2]))
                except OSError as e:
                    cl.emit("SEND-FAILED " + type(e).__name__)
                cl.drain(1.5)
                cl.conn.close()
            elif op == "cancel":
                cl = clients.get(words[1])
                if not cl or not getattr(cl, "key", None):
                    out.append("%s: NO-CANCEL-KEY" % words[1])
                    continue
                cs = socket.create_connection(("127.0.0.1", pooler.port), timeout=WAIT)
                cs.sendall(struct.pack("!II", 16, 80877102) + cl.key)
                cs.settimeout(3.0)
                try:
                    got = cs.recv(100)
                    out.append("cancel: %s" % ("CLOSED" if not got else "GOT %d bytes" % len(got)))
                except socket.timeout:
                    out.append("cancel: OPEN")
                cs.close()
            elif op == "ini":
                pooler.write_ini(sc["inis"][words[1]])
            elif op == "signal":
                pooler.signal(getattr(signal, "SIG" + words[1].upper().replace("SIG", "")))
            elif op == "sleep":
                time.sleep(float(words[1]))
            elif op == "psql":
                _, db, user, sql = step.split(None, 3)
                env = dict(os.environ, PGCONNECT_TIMEOUT="10")
                r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p",
                                    str(pooler.port), "-U", user, "-d", db, "-c", sql],
                                   capture_output=True, text=True, env=env, timeout=30)
                for ln in (r.stdout + r.stderr).splitlines():
                    out.append("psql: " + ln)
                out.append("psql: exit %d" % r.returncode)
            else:
                raise RuntimeError("unknown step: " + step)
        for cl in clients.values():
            cl.close()
        time.sleep(0.2)
    finally:
        pooler.stop()
    # A sanitizer build's report fails the scenario (as lib.sh's pgu_stop does).
    report = pooler.read_stderr()
    if re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                 r"SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer", report):
        print("compat: %s: sanitizer report from the pooler:\n%s" % (name, report[-3000:]))
        out.append("SANITIZER REPORT (see above)")
    try:
        with open(pooler.log, errors="replace") as f:
            for line in f:
                line = normalise(LOG_PREFIX.sub("", line.rstrip("\n")), pooler)
                if any(r.search(line) for r in sc["log"]):
                    out.append("log: " + line)
    except OSError:
        pass
    out = [normalise(ln, pooler) for ln in out]
    if not keep:
        subprocess.run(["rm", "-rf", workdir])
    else:
        print("   (kept %s)" % workdir)
    return out


def apply_differences(lines, name, diffs):
    """Drop the lines an 'ignore' entry matches; rewrite those a 'replace' entry matches."""
    mine = [e for e in diffs if e["scenario"] in (name, "*")]
    keep = []
    for ln in lines:
        for e in mine:
            if "replace" in e:
                ln = e["re"].sub(e.get("with", ""), ln)
        if any("ignore" in e and e["re"].search(ln) for e in mine):
            continue
        keep.append(ln)
    return keep


README_BEGIN = "The list below is made from test/compat/differences (compat.py --readme):"
README_END = "(end of the list made from test/compat/differences)"


def readme_block(diffs):
    """The README's list of deliberate differences, one item per entry, wrapped."""
    import textwrap
    out = [README_BEGIN, ""]
    seen = set()
    for e in diffs:
        reason = e.get("reason", "").strip()
        if not reason or reason in seen:
            continue
        seen.add(reason)
        out += textwrap.wrap(reason, 92, initial_indent="- ", subsequent_indent="  ")
    out += ["", README_END]
    return out


def readme_check(diffs, rewrite):
    """True if README's list matches the differences file (rewriting it when asked)."""
    path = os.path.join(SRC, "README")
    with open(path) as f:
        lines = f.read().split("\n")
    try:
        a, b = lines.index(README_BEGIN), lines.index(README_END)
    except ValueError:
        print("compat: README has no list of differences (markers missing)")
        return False
    want = readme_block(diffs)
    if lines[a:b + 1] == want:
        return True
    if rewrite:
        lines[a:b + 1] = want
        with open(path, "w") as f:
            f.write("\n".join(lines))
        print("compat: README's list of differences rewritten")
        return True
    print("compat: README's list of differences is stale: run test/compat/compat.py --readme")
    return False


def main():
    args = sys.argv[1:]
    live = "--live" in args
    record = "--record" in args
    verbose = "-v" in args
    keep = "--keep" in args
    names = [a for a in args if not a.startswith("-")]
    sdir = os.path.join(HERE, "scenarios")
    edir = os.path.join(HERE, "expected")
    if not names:
        names = sorted(f[:-4] for f in os.listdir(sdir) if f.endswith(".scn"))
    binary = os.environ.get("PGUSHER_BIN", os.path.join(SRC, "build", "pgusher"))
    ref = os.environ.get("PGUSHER_REF_BIN", REF_DEFAULT)
    diffs = parse_differences(os.path.join(HERE, "differences"))
    if "--readme" in args:
        return 0 if readme_check(diffs, True) else 1
    failed = []
    if not readme_check(diffs, False):
        failed.append("README")
    t0 = time.monotonic()
    for name in names:
        sc = parse_scenario(os.path.join(sdir, name + ".scn"))
        t1 = time.monotonic()
        if record or live:
            if not os.path.exists(ref):
                print("compat: reference %s not found" % ref)
                return 2
            ref_out = run_scenario(name, sc, ref, keep)
            if record:
                with open(os.path.join(edir, name + ".out"), "w") as f:
                    f.write("\n".join(ref_out) + "\n")
                print("compat: %s recorded (%.1fs)" % (name, time.monotonic() - t1))
                continue
        else:
            try:
                with open(os.path.join(edir, name + ".out")) as f:
                    ref_out = f.read().splitlines()
            except OSError:
                print("compat: %s has no recorded output (run --record)" % name)
                failed.append(name)
                continue
        got = run_scenario(name, sc, binary, keep)
        a = apply_differences([generic(x) for x in ref_out], name, diffs)
        b = apply_differences(got, name, diffs)
        if verbose:
            print("---- %s: PgBouncer\n%s\n---- %s: pgusher\n%s" % (
                name, "\n".join(ref_out), name, "\n".join(got)))
        if a != b:
            import difflib
            failed.append(name)
            print("compat: FAIL %s (%.1fs): - PgBouncer 1.25.2, + pgusher" % (
                name, time.monotonic() - t1))
            for ln in difflib.unified_diff(a, b, "pgbouncer", "pgusher", lineterm="", n=2):
                print("   " + ln)
        else:
            print("compat: ok %s (%.1fs)" % (name, time.monotonic() - t1))
    print("compat: %d scenarios, %d failed%s (%.0fs)" % (
        len(names), len(failed), (": " + " ".join(failed)) if failed else "",
        time.monotonic() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
