#!/usr/bin/env python3
"""Report of a benchmark run: medians over the rounds of OUT/results.csv into
OUT/results.md (and OUT/tps.dat for the chart). Called by bench.sh; can be re-run:
    python3 test/bench/report.py OUT "servers note"
"""
import csv, statistics, sys, os
out = sys.argv[1]
note = sys.argv[2]
rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
for r in rows:  # results.csv files from before the kernel-share and context-switch columns
    r.setdefault("sys_pct", "")
    r.setdefault("cs_per_xact", "")
    r.setdefault("status", "ok")
def med(vals):
    vals = [float(v) for v in vals if v not in ("", None)]
    return statistics.median(vals) if vals else None
work = []
for r in rows:
    if r["workload"] not in work and not r["workload"].startswith("idle"):
        work.append(r["workload"])
targets = ["pgusher", "pgbouncer", "pgbhap", "direct"]
names = {"pgusher": "pgusher", "pgbouncer": "PgBouncer 1.25.2", "pgbhap": "PgBouncer+HAProxy", "direct": "direct"}
agg = {}
for w in work:
    for t in targets:
        sel = [r for r in rows if r["workload"] == w and r["target"] == t]
        if sel:
            agg[w, t] = {k: med([r[k] for r in sel]) for k in ("tps", "lat_avg_ms", "lat_p99_ms", "cpu_us_per_xact", "rss_kb", "sys_pct", "cs_per_xact")}
            agg[w, t]["failed"] = sum(int(r["failed"]) for r in sel if r["failed"].isdigit())
            bad = [r for r in sel if r["status"] != "ok"]
            # A failed run (pgbench aborted) is shown, not hidden in the medians.
            agg[w, t]["rows"] = f"{len(bad)} of {len(sel)} runs failed" if bad else ""
def f(v, d=1):
    return "" if v is None else f"{v:.{d}f}"
def ratio(w, a, b, k):
    x, y = agg.get((w, a), {}).get(k), agg.get((w, b), {}).get(k)
    return f"{x / y:.2f}" if x and y else ""
lines = ["# pgusher benchmark", "", "Medians over the rounds. CPU = pooler user+sys time per transaction (PgBouncer+HAProxy: both processes).",
         "Setup: " + note + ".", "",
         "Kernel % = the kernel's share of that CPU time; ctx sw/xact = the pooler's context switches (voluntary + involuntary) per transaction.",
         "tls_* rows: client TLS (sslmode=require) and server TLS (server_tls_sslmode=require; direct: sslmode=require to the server).", "",
         "| workload | target | tps | avg ms | p99 ms | CPU us/xact | kernel % | ctx sw/xact | RSS kB | failed | runs |", "|---|---|---|---|---|---|---|---|---|---|---|"]
for w in work:
    for t in targets:
        a = agg.get((w, t))
        if a:
            lines.append(f"| {w} | {names[t]} | {f(a['tps'])} | {f(a['lat_avg_ms'],3)} | {f(a['lat_p99_ms'],3)} | {f(a['cpu_us_per_xact'],2)} | {f(a['sys_pct'],0)} | {f(a['cs_per_xact'],2)} | {f(a['rss_kb'],0)} | {a['failed']} | {a['rows'] or 'ok'} |")
lines += ["", "| workload | tps pgusher/PgBouncer | tps pgusher/(PgBouncer+HAProxy) | tps pgusher/direct | CPU pgusher/PgBouncer | CPU pgusher/(PgBouncer+HAProxy) | p99 pgusher/PgBouncer | p99 pgusher/(PgBouncer+HAProxy) |", "|---|---|---|---|---|---|---|---|"]
for w in work:
    lines.append(f"| {w} | {ratio(w,'pgusher','pgbouncer','tps')} | {ratio(w,'pgusher','pgbhap','tps')} | {ratio(w,'pgusher','direct','tps')} | {ratio(w,'pgusher','pgbouncer','cpu_us_per_xact')} | {ratio(w,'pgusher','pgbhap','cpu_us_per_xact')} | {ratio(w,'pgusher','pgbouncer','lat_p99_ms')} | {ratio(w,'pgusher','pgbhap','lat_p99_ms')} |")
idle = [r for r in rows if r["workload"].startswith("idle")]
if idle:
    lines += ["", "| idle clients | target | RSS kB | bytes per idle client |", "|---|---|---|---|"]
    for r in idle:
        lines.append(f"| {r['workload']} | {names[r['target']]} | {r['rss_kb']} | {r['failed'].split('=')[-1]} |")
open(os.path.join(out, "results.md"), "w").write("\n".join(lines) + "\n")
with open(os.path.join(out, "tps.dat"), "w") as d:
    d.write("workload " + " ".join(names[t].replace(" ", "_") for t in targets) + "\n")
    for w in work:
        d.write(w + " " + " ".join(f(agg.get((w, t), {}).get("tps")) or "0" for t in targets) + "\n")
print("\n".join(lines))
