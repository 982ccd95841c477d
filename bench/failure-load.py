"""A bounded load against a SCIM server while something breaks: CLIENTS threads, each on
one keep-alive connection, send GET /Users/{id} and (every third request) a PATCH of
name.givenName, as identity providers send them, for SECONDS seconds (and at most 100,000
requests a thread). Prints the answers by status, and transport failures by kind and by the
answer that came before them on the connection, per second and in all.

Usage: failure-load.py PORT TOKEN SEED_FILE SECONDS [CLIENTS]
"""
import collections
import http.client
import json
import random
import sys
import threading
import time

port, token, seed_file, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
clients = int(sys.argv[5]) if len(sys.argv) > 5 else 8
ids = [u[0] for u in json.load(open(seed_file))["users"]]
patch = json.dumps({
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "name.givenName", "value": "Probe"}],
})
start = time.monotonic()
stop = start + seconds
lock = threading.Lock()
total = collections.Counter()
per_second = collections.defaultdict(collections.Counter)
refusals = collections.Counter()


def client():
    conn, before = None, None
    for n in range(100_000):
        if time.monotonic() >= stop:
            return
        path = f"/scim/v2/Users/{random.choice(ids)}"
        method = "PATCH" if n % 3 == 0 else "GET"
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            headers = {"Authorization": f"Bearer {token}"}
            if method == "PATCH":
                headers["Content-Type"] = "application/scim+json"
            conn.request(method, path, patch if method == "PATCH" else None, headers)
            r = conn.getresponse()
            body = r.read()
            outcome = str(r.status)
            if r.status >= 300:
                with lock:
                    refusals[f"{method} {r.status}: {json.loads(body).get('detail')}"] += 1
            before = f"{method} {r.status}"
        except (OSError, http.client.HTTPException) as e:
            outcome = f"{type(e).__name__} after {before}"
            conn, before = None, None
            time.sleep(0.05)
        with lock:
            total[outcome] += 1
            per_second[int(time.monotonic() - start)][outcome] += 1


threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for second in sorted(per_second):
    print(f"second {second}: {dict(per_second[second])}")
print(f"all: {dict(total)}")
for what, count in refusals.most_common():
    print(f"  {count} x {what}")
