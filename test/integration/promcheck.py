#!/usr/bin/env python3
"""Strict checker of the Prometheus text exposition format 0.0.4 (stdin or a file), or with
--openmetrics of OpenMetrics 1.0.0 (counter families named without _total, info families,
"# EOF" last).

Checks that the text is UTF-8 and every line: HELP/TYPE comments, metric and label names, label value escapes, sample
values; TYPE before a family's samples and once; a family's samples contiguous; no series
twice; counters named *_total; histograms with an le label on _bucket, cumulative buckets
ending with +Inf equal to _count, and _sum. Exit 0 with "ok: N families, M samples", else 1
with "LINE: problem" per error. Used by t_metrics.sh (promtool is not packaged here).
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
SAMPLE = re.compile(r"^(" + NAME + r")(\{(.*)\})? (\S+)( -?[0-9]+)?$")
LABELPAIR = re.compile(r'(' + LABEL + r')="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(text, errs, ln):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABELPAIR.match(text, pos)
        if not m:
            errs.append(f"{ln}: bad label list {{{text}}}")
            return None
        if m.group(1) in labels:
            errs.append(f"{ln}: label {m.group(1)} twice")
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def value(s):
    if s in ("NaN", "+Inf", "-Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", s):
        raise ValueError(s)
    return float(s)


def family_of(name, types, om):
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[: -len(suf)]) in ("histogram", "summary"):
            return name[: -len(suf)]
    if om:
        for suf, t in (("_total", "counter"), ("_info", "info")):
            if name.endswith(suf) and types.get(name[: -len(suf)]) == t:
                return name[: -len(suf)]
        if types.get(name) in ("counter", "info"):
            return None  # a counter/info sample without its suffix
    return name


def main():
    args = sys.argv[1:]
    om = "--openmetrics" in args
    args = [a for a in args if a != "--openmetrics"]
    raw = open(args[0], "rb").read() if args else sys.stdin.buffer.read()
    try:
        text = raw.decode("utf-8")  # strict: Prometheus refuses a scrape with bad UTF-8
    except UnicodeDecodeError as e:
        print(f"byte {e.start}: not UTF-8")
        return 1
    errs, types, helps, seen, done = [], {}, {}, set(), set()
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "count": v, "sum": v}
    current, nsamples = None, 0
    if text and not text.endswith("\n"):
        errs.append("end: no final newline")
    lines = text.split("\n")[:-1]
    if om:
        if not lines or lines[-1] != "# EOF":
            errs.append("end: no '# EOF' last")
        else:
            lines = lines[:-1]
        TYPES.add("info")
    elif lines and lines[-1] == "# EOF":
        errs.append("end: '# EOF' in the 0.0.4 format")
    for ln, line in enumerate(lines, 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not re.fullmatch(NAME, name):
                    errs.append(f"{ln}: bad metric name {name!r}")
                if parts[1] == "TYPE":
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in TYPES:
                        errs.append(f"{ln}: bad type {t!r}")
                    if name in types:
                        errs.append(f"{ln}: TYPE {name} twice")
                    if name in done or name == current:
                        errs.append(f"{ln}: TYPE {name} after its samples")
                    types[name] = t
                    if om and t == "counter" and name.endswith("_total"):
                        errs.append(f"{ln}: OpenMetrics counter family {name} named *_total")
                    elif not om and t == "counter" and not name.endswith("_total"):
                        errs.append(f"{ln}: counter {name} not named *_total")
                else:
                    if name in helps:
                        errs.append(f"{ln}: HELP {name} twice")
                    helps[name] = True
            continue
        if not line.strip():
            errs.append(f"{ln}: empty line")
            continue
        m = SAMPLE.match(line)
        if not m:
            errs.append(f"{ln}: not a sample: {line!r}")
            continue
        name, labels = m.group(1), {}
        if m.group(3):
            labels = parse_labels(m.group(3), errs, ln)
            if labels is None:
                continue
        try:
            v = value(m.group(4))
        except ValueError:
            errs.append(f"{ln}: bad value {m.group(4)!r}")
            continue
        fam = family_of(name, types, om)
        if fam is None:
            errs.append(f"{ln}: {name}: sample without its _total/_info suffix")
            continue
        if types.get(fam) == "info" and v != 1:
            errs.append(f"{ln}: info {name} = {v}")
        if fam not in types:
            errs.append(f"{ln}: sample of {fam} without TYPE")
        if fam != current:
            if fam in done:
                errs.append(f"{ln}: samples of {fam} not contiguous")
            if current:
                done.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            errs.append(f"{ln}: series twice: {line}")
        seen.add(key)
        nsamples += 1
        if types.get(fam) == "counter" and (v < 0 or math.isnan(v)):
            errs.append(f"{ln}: counter {name} = {v}")
        if types.get(fam) == "histogram":
            base = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            h = hist.setdefault((fam, base), {"buckets": [], "count": None, "sum": None})
            if name.endswith("_bucket"):
                if "le" not in labels:
                    errs.append(f"{ln}: bucket without le")
                    continue
                h["buckets"].append((value(labels["le"]), v))
            elif name.endswith("_count"):
                h["count"] = v
            elif name.endswith("_sum"):
                h["sum"] = v
            else:
                errs.append(f"{ln}: histogram sample {name}")
    for (fam, base), h in hist.items():
        b = h["buckets"]
        where = f"{fam}{dict(base)}"
        if not b or not math.isinf(b[-1][0]):
            errs.append(f"{where}: no +Inf bucket last")
        if any(b[i][0] >= b[i + 1][0] or b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            errs.append(f"{where}: buckets not ascending and cumulative")
        if h["count"] is None or h["sum"] is None:
            errs.append(f"{where}: _count or _sum missing")
        elif b and b[-1][1] != h["count"]:
            errs.append(f"{where}: +Inf bucket {b[-1][1]} != _count {h['count']}")
    for e in errs[:50]:
        print(e)
    if errs:
        return 1
    print(f"ok: {len(types)} families, {nsamples} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
