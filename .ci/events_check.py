#!/usr/bin/env python3
"""Change events of identity-provider traffic, received by a real receiver.

    events_check.py setup ROOT ADMIN_TOKEN TENANT RECEIVER_URL   prints the new push stream's id
    events_check.py verify ROOT ADMIN_TOKEN TENANT STREAM RECEIVED_FILE

`setup` attaches a push stream (from the beginning of the log) to the tenant. `verify` waits
(at most 60 s) until the stream has delivered everything, then checks that every event of the
tenant's feed reached the receiver (`set-receiver` writes `<arrival> <jti>` per SET), first
arrivals in sequence order, and that the feed holds events of every kind the traffic made.
Ends with a line "N passed, M failed".
"""
import json
import sys
import time
import urllib.request


def admin(root, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(root + "/admin/v1" + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def setup(root, token, tenant, receiver):
    stream = admin(root, token, "POST", "/tenants/%s/streams" % tenant,
                   {"name": "ci", "endpoint": receiver, "from": "beginning"})
    print(stream["id"])


def verify(root, token, tenant, stream, received_file):
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else " -- " + str(detail)[:400]))

    deadline = time.time() + 60
    while True:
        s = admin(root, token, "GET", "/tenants/%s/streams/%s" % (tenant, stream))
        if s["backlog"] == 0 or time.time() > deadline:
            break
        time.sleep(0.2)
    check("the stream delivered everything", s["backlog"] == 0 and s["state"] == "active", s)
    feed, after = [], 0
    while True:
        page = admin(root, token, "GET", "/tenants/%s/events?after=%d&limit=1000" % (tenant, after))
        feed += page["events"]
        after = page["cursor"]
        if not page["more"]:
            break
    seqs = [e["seq"] for e in feed]
    first = []
    for line in open(received_file):
        _, jti = line.split()
        sid, seq = jti.rsplit(".", 1)
        if sid == stream and int(seq) not in first:
            first.append(int(seq))
    check("every event of the log reached the receiver", sorted(first) == seqs,
          "log %d events, received %d" % (len(seqs), len(first)))
    check("first arrivals in sequence order", first == sorted(first))
    kinds = set()
    for e in feed:
        for uri in e["events"]:
            kinds.add(uri.split(":prov:")[1].split(":")[0])
    check("the traffic made creates, patches and deletes", {"create", "patch", "delete"} <= kinds, kinds)
    print("%d events of the replayed traffic delivered" % len(first))
    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup"] and len(sys.argv) == 6:
        setup(*sys.argv[2:])
    elif sys.argv[1:2] == ["verify"] and len(sys.argv) == 7:
        verify(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)
