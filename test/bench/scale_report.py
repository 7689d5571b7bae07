#!/usr/bin/env python3
"""Report of a scaling run (test/bench/scale.sh): medians over the rounds of OUT/results.csv
into OUT/results.md and one chart per series (OUT/<series>.png, matplotlib). Can be re-run:
    python3 test/bench/scale_report.py OUT "setup note"
"""
import csv, os, statistics, sys

out, note = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
TARGETS = ["pgusher", "pgbouncer"]
NAMES = {"pgusher": "pgusher", "pgbouncer": "PgBouncer 1.25.2"}
SERIES = [("idle", "idle clients"), ("pools", "pools (databases)"), ("storm", "SCRAM login storm (clients)"),
          ("hosts_S", "hosts in reads (-S)"), ("hosts_C", "hosts in reads (-S -C)")]
COLS = [("tps", "tps", 1), ("p99_ms", "p99 ms", 3), ("cpu_us_per_xact", "CPU us/xact", 2), ("rss_kb", "RSS kB", 0),
        ("rss_per_client_b", "RSS B/idle client", 0), ("showmem_kb", "SHOW MEM kB", 0),
        ("idle_cpu_pct", "idle CPU % core", 3), ("storm_s", "storm s", 3)]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(vals):
    vals = [v for v in (num(x) for x in vals) if v is not None]
    return statistics.median(vals) if vals else None


agg, points = {}, {}
for s, _ in SERIES:
    for r in rows:
        if r["series"] == s and int(r["point"]) not in points.setdefault(s, []):
            points[s].append(int(r["point"]))
    for p in points.get(s, []):
        for t in TARGETS:
            sel = [r for r in rows if r["series"] == s and int(r["point"]) == p and r["target"] == t]
            if not sel:
                continue
            a = {k: med(r[k] for r in sel) for k, _, _ in COLS}
            a["failed"] = sum(int(num(r["failed"]) or 0) for r in sel)
            bad = [r["status"] for r in sel if r["status"] != "ok"]
            a["runs"] = "%d of %d: %s" % (len(bad), len(sel), bad[0]) if bad else "ok (%d)" % len(sel)
            agg[s, p, t] = a


def f(v, d):
    return "" if v is None else f"{v:,.{d}f}"


def ratio(s, p, k):
    a, b = agg.get((s, p, "pgusher"), {}).get(k), agg.get((s, p, "pgbouncer"), {}).get(k)
    return f"{a / b:.2f}" if a and b else ""


lines = ["# pgusher scaling benchmark", "", "Medians over the rounds, pgusher vs PgBouncer 1.25.2. " + note + ".", "",
         "CPU = pooler on-CPU time (schedstat, all threads) per transaction (storm: per login); RSS and SHOW MEM (memtotal summed) "
         "with the point's clients held; RSS B/idle client = (RSS with them - RSS before them) / clients; "
         "idle CPU = the pooler's CPU while nothing runs (timers, janitor), % of one core; "
         "storm tps = logins served per second.", ""]
for s, title in SERIES:
    if s not in points:
        continue
    used = [c for c in COLS if any(agg.get((s, p, t), {}).get(c[0]) is not None for p in points[s] for t in TARGETS)]
    lines += [f"## {title}", "", "| point | target | " + " | ".join(c[1] for c in used) + " | failed | runs |",
              "|---" * (len(used) + 4) + "|"]
    for p in points[s]:
        for t in TARGETS:
            a = agg.get((s, p, t))
            if a:
                lines.append(f"| {p:,} | {NAMES[t]} | " + " | ".join(f(a[c[0]], c[2]) for c in used) + f" | {a['failed']} | {a['runs']} |")
    lines += ["", "| point | tps pgusher/PgBouncer | CPU pgusher/PgBouncer | p99 pgusher/PgBouncer | RSS pgusher/PgBouncer | tps vs first point (pgusher / PgBouncer) |", "|---|---|---|---|---|---|"]
    first = points[s][0]
    for p in points[s]:
        rel = []
        for t in TARGETS:
            a, b = agg.get((s, p, t), {}).get("tps"), agg.get((s, first, t), {}).get("tps")
            rel.append(f"{a / b:.2f}" if a and b else "")
        lines.append(f"| {p:,} | {ratio(s, p, 'tps')} | {ratio(s, p, 'cpu_us_per_xact')} | {ratio(s, p, 'p99_ms')} | {ratio(s, p, 'rss_kb')} | {' / '.join(rel)} |")
    lines.append("")
open(os.path.join(out, "results.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

for s, title in SERIES:
    if s not in points:
        continue
    used = [c for c in COLS if c[0] != "storm_s" or s == "storm"]
    used = [c for c in used if any(agg.get((s, p, t), {}).get(c[0]) is not None for p in points[s] for t in TARGETS)]
    ncols = min(4, len(used))
    nrows = (len(used) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), squeeze=False)
    flat = [ax for line in axes for ax in line]
    for ax in flat[len(used):]:
        ax.axis("off")
    xs = list(range(len(points[s])))
    for ax, (k, label, _) in zip(flat, used):
        for j, t in enumerate(TARGETS):
            ys = [agg.get((s, p, t), {}).get(k) for p in points[s]]
            w = 0.38
            ax.bar([x + (j - 0.5) * w for x in xs], [y or 0 for y in ys], w, label=NAMES[t])
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{p:,}" for p in points[s]], fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    flat[0].legend(fontsize=7)
    fig.suptitle(title + " (medians)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, s + ".png"), dpi=90)
    plt.close(fig)
