#!/usr/bin/env python3
"""Judges a replay.py run: every step must pass, except steps listed in the known-defects
file, whose expectations contradict RFC 7643/7644 (each entry says why). A listed step that
starts passing also fails the run, so the list cannot go stale.

Usage: replay_verdict.py REPLAY_OUTPUT KNOWN_DEFECTS
"""
import sys

output, defects_file = sys.argv[1], sys.argv[2]
known = {}
for line in open(defects_file, encoding="utf-8"):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    step, _, why = line.partition(" | ")
    known[step.strip()] = why.strip()

failed, passed = set(), set()
summary = None
for line in open(output, encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("FAIL "):
        failed.add(line[5:].split(" -- ")[0])
    elif line.startswith("PASS "):
        passed.add(line[5:])
    elif " passed, " in line and line.endswith(" failed"):
        summary = line

if summary is None:
    print("replay: no summary line; the replay did not finish")
    sys.exit(1)
unexpected = sorted(failed - set(known))
stale = sorted(s for s in known if s in passed)
missing = sorted(s for s in known if s not in passed and s not in failed)
for s in unexpected:
    print(f"unexpected failure: {s}")
for s in stale:
    print(f"listed as a scenario defect but now passes (remove it from the list): {s}")
for s in missing:
    print(f"listed as a scenario defect but not run: {s}")
for s in sorted(failed & set(known)):
    print(f"scenario defect, not a server failure: {s} ({known[s]})")
ok = not unexpected and not stale and not missing
print(f"replay: {summary}; {len(failed & set(known))} of the failures are listed scenario defects")
print(f"{len(passed)} passed, {len(unexpected) + len(stale) + len(missing)} failed, {len(failed & set(known))} skipped")
sys.exit(0 if ok else 1)
