#!/usr/bin/env python3
"""Merges scimd-bench JSON results of one server: for each scenario, the run with the
median requests per second among the inputs (one per round); scenarios found in one input
only (such as members@…) are taken as they are.

Usage: merge.py OUT.json ROUND.json [ROUND.json ...]
"""
import json
import sys

out, inputs = sys.argv[1], [json.load(open(p)) for p in sys.argv[2:]]
by_scenario = {}
for doc in inputs:
    for r in doc["results"]:
        by_scenario.setdefault(r["scenario"], []).append(r)
merged = dict(inputs[0])
merged["runs"] = max(len(runs) for runs in by_scenario.values())
merged["results"] = []
for runs in by_scenario.values():
    runs.sort(key=lambda r: r["rps"])
    median = dict(runs[len(runs) // 2])
    median["runs"] = len(runs)
    merged["results"].append(median)
with open(out, "w") as f:
    json.dump(merged, f, indent=2)
