#!/usr/bin/env python3
"""Report of one soak run (test/soak/soak.sh): reads the run directory, never changes it
except for failures.csv. Prints the details and a summary table for the README; exits 1
when a goal is missed (a servable failure, a crash, a stuck client, a sanitizer report, a
client left over, the pooler not answering after the load), else 0.

Run directory: workloads.csv, events.log, load/<name>.log (lines "<epoch> <text>"),
samples.csv, final.txt, sanitizer/, pgusher.stderr. See soak.sh for how failures are counted.
"""
import argparse
import csv
import glob
import os
import re
import sys

ABORT = re.compile(r"client \d+ .*aborted")
FAILED_TX = re.compile(r"number of failed transactions: (\d+)")
PROCESSED = re.compile(r"number of transactions actually processed: (\d+)")
FATAL_START = re.compile(r"could not create connection|pgbench: error: .*(fatal|could not)")
ROUND_END = re.compile(r"SOAK-ROUND \d+ end rc=(\d+)")
RUN_END = re.compile(r"SOAK-RUN \d+ end rc=(\d+)")
ERRORISH = re.compile(r"ERROR|FATAL|error|closed|lost|refused|timeout", re.I)
CYCLE = re.compile(r"^([\d.]+) CYCLE (\d+) (\S+) (\S+) (ok|failed)")
SAN_PATTERNS = [
    ("ASan", re.compile(r"ERROR: AddressSanitizer")),
    ("LSan", re.compile(r"ERROR: LeakSanitizer")),
    ("UBSan", re.compile(r"runtime error:")),
]


def read_log(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            t, _, text = line.partition(" ")
            try:
                rows.append((float(t), text))
            except ValueError:
                if rows:
                    rows.append((rows[-1][0], line))
    return rows


def target_of(entry):
    return "writes" if entry.startswith("writes") else "reads"


def pgbench_failures(name, entry, rows):
    """(failures, processed): failures as (t, entry, source, message)."""
    fails, processed = [], 0
    counted = 0
    last_err = ""
    for t, text in rows:
        if ERRORISH.search(text) and not text.startswith("SOAK-"):
            last_err = text
        if ABORT.search(text) and "Run was aborted" not in text:
            fails.append((t, entry, name, text))
            counted += 1
        elif FATAL_START.search(text):
            fails.append((t, entry, name, text))
            counted += 1
        elif text.startswith("SOAK-STUCK"):
            fails.append((t, entry, name, "stuck: " + text))
            counted += 1
        m = FAILED_TX.search(text)
        if m and int(m.group(1)) > 0:
            fails.append((t, entry, name, "pgbench failed transactions: " + m.group(1)))
            counted += int(m.group(1))
        m = PROCESSED.search(text)
        if m:
            processed += int(m.group(1))
        m = ROUND_END.search(text)
        if m:
            if int(m.group(1)) != 0 and counted == 0:
                fails.append((t, entry, name, "round exit %s: %s" % (m.group(1), last_err)))
            counted = 0
            last_err = ""
    return fails, processed


def slow_failures(name, entry, rows):
    fails, runs, queries = [], 0, 0
    first_err = ""
    for t, text in rows:
        m = RUN_END.search(text)
        if m:
            runs += 1
            rc = int(m.group(1))
            if rc != 0:
                what = "stuck (killed by timeout): " if rc in (124, 137) else "psql exit %d: " % rc
                fails.append((t, entry, name, what + first_err))
            first_err = ""
        elif text.startswith("SOAK-"):
            continue
        elif ERRORISH.search(text):
            first_err = first_err or text
        elif "|" in text:
            queries += 1
    return fails, runs, queries


def noread_cycles(name, path):
    fails, cycles = [], 0
    if not os.path.exists(path):
        return fails, cycles
    with open(path, errors="replace") as f:
        for line in f:
            m = CYCLE.match(line)
            if not m:
                continue
            cycles += 1
            if m.group(5) == "failed":
                fails.append((float(m.group(1)), m.group(3), name, "login failed (%s)" % m.group(4)))
    return fails, cycles


class Timeline:
    """Standby faults from events.log: when each started, when each host was down."""

    def __init__(self, events, window, grace):
        self.window, self.grace = window, grace
        self.fault_starts = []  # (t, host, kind)
        self.down = {}  # host -> [(from, to)]
        self.begin = events[0][0] if events else 0
        opened = {}
        for t, kind, host, _ in events:
            if kind in ("kill", "freeze"):
                self.fault_starts.append((t, host, kind))
                opened[host] = t
            elif kind == "up" and host in opened:
                self.down.setdefault(host, []).append((opened.pop(host), t))
        for host, t in opened.items():
            self.down.setdefault(host, []).append((t, float("inf")))
        self.hosts = sorted(set(h for _, h, _ in self.fault_starts) | {"127.0.0.2", "127.0.0.3"})

    def stable_up(self, host, t):
        last_up = float("-inf")
        for a, b in self.down.get(host, []):
            if a <= t <= b:
                return False
            if b <= t:
                last_up = max(last_up, b)
        return t - last_up >= self.grace

    def classify(self, t, entry):
        if target_of(entry) == "writes":
            return "servable"  # the primary is never faulted
        for f, _, _ in self.fault_starts:
            if f <= t <= f + self.window:
                return "at_fault"
        if not any(self.stable_up(h, t) for h in self.hosts):
            return "no_standby"
        return "servable"


def slope_per_min(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return 60.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--date", default="")
    ap.add_argument("--build", default="normal")
    ap.add_argument("--fault-window", type=float, default=12)
    ap.add_argument("--up-grace", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=60)
    a = ap.parse_args()
    run = a.run

    events = []
    for t, text in read_log(os.path.join(run, "events.log")):
        parts = text.split(" ", 2) + ["", ""]
        events.append((t, parts[0], parts[1], parts[2]))
    tl = Timeline(events, a.fault_window, a.up_grace)
    begin = next((e for e in events if e[1] == "begin"), None)
    duration = 0
    if begin:
        m = re.search(r"duration=(\d+)", begin[3])
        duration = int(m.group(1)) if m else 0

    fails, processed, slow_runs, slow_queries, cycles, noread_fails = [], 0, 0, 0, 0, []
    with open(os.path.join(run, "workloads.csv")) as f:
        workloads = list(csv.DictReader(f))
    per_wl = []
    for w in workloads:
        path = os.path.join(run, "load", w["name"] + ".log")
        if w["kind"] == "pgbench":
            fl, pr = pgbench_failures(w["name"], w["entry"], read_log(path))
            processed += pr
            per_wl.append((w, len(fl), "%d transactions" % pr))
            fails += fl
        elif w["kind"] == "slow":
            fl, runs, q = slow_failures(w["name"], w["entry"], read_log(path))
            slow_runs += runs
            slow_queries += q
            per_wl.append((w, len(fl), "%d sessions, %d queries" % (runs, q)))
            fails += fl
        else:
            fl, c = noread_cycles(w["name"], path)
            cycles += c
            per_wl.append((w, len(fl), "%d cycles, %d logins failed" % (c, len(fl))))
            noread_fails += fl

    classes = {"servable": [], "at_fault": [], "no_standby": []}
    with open(os.path.join(run, "failures.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["epoch", "elapsed_s", "source", "entry", "class", "message"])
        for t, entry, src, msg in sorted(fails + noread_fails):
            cl = tl.classify(t, entry)
            wr.writerow(["%.3f" % t, "%.1f" % (t - tl.begin), src, entry, cl, msg[:300]])
    for t, entry, src, msg in fails:
        classes[tl.classify(t, entry)].append((t, entry, src, msg))
    nr_servable = [x for x in noread_fails if tl.classify(x[0], x[1]) == "servable"]
    serv_w = sum(1 for x in classes["servable"] if target_of(x[1]) == "writes")
    serv_r = len(classes["servable"]) - serv_w

    nkill = sum(1 for e in events if e[1] == "kill")
    nfreeze = sum(1 for e in events if e[1] == "freeze")
    nreload = sum(1 for e in events if e[1] == "reload")
    crashed = [e for e in events if e[1] == "crash"]
    stuck_workers = [e for e in events if e[1] == "stuck"]
    stuck_fails = [x for x in fails if x[3].startswith("stuck")]

    samples = []
    with open(os.path.join(run, "samples.csv")) as f:
        for r in csv.DictReader(f):
            try:
                samples.append((int(r["elapsed_s"]), int(r["rss_kb"]), int(r["fds"]), r))
            except (ValueError, TypeError):
                pass
    post = [s for s in samples if s[0] >= a.warmup] or samples

    final = {}
    if os.path.exists(os.path.join(run, "final.txt")):
        with open(os.path.join(run, "final.txt"), errors="replace") as f:
            for line in f:
                k, eq, v = line.rstrip("\n").partition("=")
                if eq:
                    final[k] = v

    san = {}
    san_first = []
    files = sorted(glob.glob(os.path.join(run, "sanitizer", "*"))) + [os.path.join(run, "pgusher.stderr")]
    for p in files:
        if not os.path.isfile(p):
            continue
        with open(p, errors="replace") as f:
            text = f.read()
        for name, rx in SAN_PATTERNS:
            n = len(rx.findall(text))
            if n:
                san[name] = san.get(name, 0) + n
        for line in text.splitlines():
            if line.startswith("SUMMARY:") or "runtime error:" in line:
                san_first.append("%s: %s" % (os.path.basename(p), line.strip()))
    san_files = [os.path.basename(p) for p in glob.glob(os.path.join(run, "sanitizer", "*"))]

    # ---------------------------------------------------------------- details
    out = print
    out("=" * 78)
    out("pgusher soak, %s build, %d s of load, run %s" % (a.build, duration, os.path.basename(run)))
    out("faults: %d standby kills, %d standby freezes, %d reloads (events.log)" % (nkill, nfreeze, nreload))
    out("")
    out("workloads:")
    for w, nf, what in per_wl:
        out("  %-12s %-16s %-40s %s, %d failure(s)" % (w["name"], w["entry"], w["description"][:40], what, nf))
    out("")
    out("failures (details in failures.csv):")
    out("  servable (a healthy host could have served): %d  (writes %d, reads %d)" % (len(classes["servable"]), serv_w, serv_r))
    out("  at a standby fault (within %g s of a kill/freeze): %d" % (a.fault_window, len(classes["at_fault"])))
    out("  while no standby had been up %g s: %d" % (a.up_grace, len(classes["no_standby"])))
    out("  never-reading clients' logins refused while servable: %d (of %d failed logins)" % (len(nr_servable), len(noread_fails)))
    for t, entry, src, msg in sorted(classes["servable"])[:20]:
        out("    t=%.1f %s %s: %s" % (t - tl.begin, src, entry, msg[:160]))
    for t, entry, src, msg in sorted(nr_servable)[:10]:
        out("    t=%.1f %s %s: %s" % (t - tl.begin, src, entry, msg[:160]))
    out("")
    rss_line = fds_line = "no samples"
    if post:
        r0, r1, rmax = post[0][1], post[-1][1], max(s[1] for s in post)
        f0, f1, fmax = post[0][2], post[-1][2], max(s[2] for s in post)
        rs = slope_per_min([s[0] for s in post], [s[1] for s in post])
        fs = slope_per_min([s[0] for s in post], [s[2] for s in post])
        out("RSS and fds, %d samples, %d after the %g s warm-up (samples.csv):" % (len(samples), len(post), a.warmup))
        out("  RSS kB:  at start %d, after warm-up %d, last %d, max %d, slope %+.0f kB/min" % (samples[0][1], r0, r1, rmax, rs))
        out("  fds:     at start %d, after warm-up %d, last %d, max %d, slope %+.2f /min" % (samples[0][2], f0, f1, fmax, fs))
        rss_line = "%.1f / %.1f / %.1f MB, slope %+.0f kB/min" % (r0 / 1024, r1 / 1024, rmax / 1024, rs)
        fds_line = "%d / %d / %d, slope %+.2f /min" % (f0, f1, fmax, fs)
        uc = [int(s[3]["used_clients"] or 0) for s in samples if s[3].get("used_clients")]
        us = [int(s[3]["used_servers"] or 0) for s in samples if s[3].get("used_servers")]
        if uc:
            out("  SHOW LISTS used_clients max %d, used_servers max %d" % (max(uc), max(us or [0])))
        refused = [s for s in samples if not s[3].get("used_clients")]
        if refused:
            out("  console did not answer SHOW LISTS in %d samples (first at %d s)" % (len(refused), refused[0][0]))
    after = final.get("sample_after", "")
    if after:
        parts = after.split(",")
        out("  5 s after the load: RSS %s kB, fds %s, clients left %s, server connections %s"
            % (parts[2], parts[3], final.get("clients_after", "?"), final.get("servers_after", "?")))
        out("  sockets unaccounted for then (not a server, client or baseline socket: closed by the"
            " peer, never by the pooler): %s" % final.get("sockets_unaccounted_after", "?"))
        out("  TCP sockets held then: %s from clients (%s), %s to servers; fds by kind: %s"
            % (final.get("client_sockets_after", "?"), final.get("client_socket_states_after", "").strip("; ") or "none",
               final.get("server_sockets_after", "?"), final.get("fd_kinds_after", "?").strip("; ")))
    out("")
    out("pooler: %s; queries after the load: %s; SIGTERM exit took %s s"
        % ("CRASHED (" + crashed[0][3] + ", " + final.get("exit_status", "?") + ")" if crashed or final.get("alive") == "0" else "alive to the end",
           "ok" if final.get("query_after_ok") == "1" else "FAILED " + final.get("query_after_error", ""),
           final.get("stop_seconds", "?")))
    if a.build == "asan":
        out("sanitizer: %s" % (", ".join("%s %d" % kv for kv in sorted(san.items())) or "no report") +
            " (%d file(s) in sanitizer/)" % len(san_files))
        for line in san_first[:10]:
            out("  " + line)
    elif san:
        out("sanitizer messages in pgusher.stderr: %s" % san)

    # ---------------------------------------------------------------- table
    stuck = len(stuck_fails) + len(stuck_workers)
    clients_left = final.get("clients_after", "?")
    sockets_left = final.get("client_sockets_after", "?")
    unaccounted = final.get("sockets_unaccounted_after", "?")
    out("")
    out("---- summary (paste into README) ----")
    rows = [
        ("date, build, load time", "%s, %s, %d s" % (a.date, a.build, duration)),
        ("faults", "%d standby kills, %d freezes, %d reloads" % (nkill, nfreeze, nreload)),
        ("load served", "%d pgbench transactions, %d slow-client queries, %d never-reading cycles" % (processed, slow_queries, cycles)),
        ("failures a healthy host could serve", "%d (writes %d, reads %d) + %d refused logins" % (len(classes["servable"]), serv_w, serv_r, len(nr_servable))),
        ("failures at a standby fault", "%d (in flight on it / before detection)" % len(classes["at_fault"])),
        ("RSS after warm-up / last / max", rss_line),
        ("fds after warm-up / last / max", fds_line),
        ("stuck clients; clients, sockets left", "%d; %s, %s (+%s closed by the peer, never by pgusher)" % (stuck, clients_left, sockets_left, unaccounted)),
        ("crash", "yes" if crashed or final.get("alive") == "0" else "no"),
        ("sanitizer reports", (", ".join("%s %d" % kv for kv in sorted(san.items())) or "none") if a.build == "asan" else "n/a (normal build)"),
    ]
    for k, v in rows:
        out("    %-38s %s" % (k, v))

    bad = (len(classes["servable"]) or nr_servable or crashed or final.get("alive") == "0" or stuck or san
           or final.get("query_after_ok") != "1" or clients_left != "0" or sockets_left != "0" or unaccounted != "0")
    out("result: %s" % ("FAIL (a goal was missed, see above)" if bad else "PASS (all goals met)"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
