#!/usr/bin/env python3
"""Side-by-side table of scimd-bench JSON results, with ratios against the last file.

Usage: compare.py RESULT.json [RESULT.json ...] BASELINE.json
"""
import json
import sys


def load(path):
    doc = json.load(open(path))
    return doc["label"], {r["scenario"]: r for r in doc["results"]}


runs = [load(p) for p in sys.argv[1:]]
base_label, base = runs[-1]
scenarios = list(runs[0][1].keys())
head = "| scenario | " + " | ".join(f"{label} req/s (p50 ms)" for label, _ in runs) + " | " + " | ".join(
    f"{label} / {base_label}" for label, _ in runs[:-1]) + " |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for s in scenarios:
    cells = []
    for _, res in runs:
        r = res.get(s)
        cells.append(f"{r['rps']:.0f} ({r['p50_ms']:.2f})" if r else "—")
    ratios = []
    for _, res in runs[:-1]:
        r, b = res.get(s), base.get(s)
        if r and b and b["rps"] > 0:
            if s.startswith("members@"):
                ratios.append(f"{b['p50_ms'] / r['p50_ms']:.1f}× faster per add" if r["p50_ms"] else "—")
            else:
                ratios.append(f"{r['rps'] / b['rps']:.1f}×")
        else:
            ratios.append("—")
    print(f"| {s} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
# Refused answers are fast; where a server refuses some writes, compare what succeeded.
for s in scenarios:
    ok = [res.get(s) and res[s]["rps"] * (res[s]["requests"] - res[s]["non_2xx"]) / max(res[s]["requests"], 1)
          for _, res in runs]
    if not any(res.get(s) and res[s]["non_2xx"] for _, res in runs):
        continue
    cells = [f"{v:.0f} successful/s" if v is not None else "—" for v in ok]
    ratios = [f"{v / ok[-1]:.1f}×" if v and ok[-1] else "—" for v in ok[:-1]]
    print(f"| {s} (successful) | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
for label, res in runs:
    errs = sum(r["errors"] for r in res.values())
    non2xx = sum(r["non_2xx"] for r in res.values())
    peak = max((r["peak_rss_bytes"] or 0) for r in res.values())
    print(f"\n{label}: {errs} transport errors, {non2xx} non-2xx answers, peak RSS {peak / 1e6:.1f} MB" if peak else
          f"\n{label}: {errs} transport errors, {non2xx} non-2xx answers")
