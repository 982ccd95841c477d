#!/usr/bin/env python3
"""A tenant's data through SCIM, to show that another tenant's traffic leaves it alone.

Usage:
  tenant_data.py seed BASE_URL TOKEN     adds users and a group with members
  tenant_data.py dump BASE_URL TOKEN     prints every user and group, sorted, as JSON

dump leaves out nothing a change would alter (ids, names, versions, timestamps, members).
"""
import json
import sys
import urllib.request

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def scim(base, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data:
        req.add_header("Content-Type", "application/scim+json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
        return json.loads(text) if text else None


def every(base, token, kind):
    out, start = [], 1
    while True:
        page = scim(base, token, "GET", "/%s?startIndex=%d&count=100" % (kind, start))
        out += page.get("Resources", [])
        if start + 100 > page["totalResults"]:
            return sorted(out, key=lambda r: r["id"])
        start += 100


def main():
    cmd, base, token = sys.argv[1:4]
    if cmd == "seed":
        ids = []
        for i in range(5):
            user = scim(base, token, "POST", "/Users", {"schemas": [USER], "userName": "first.tenant.%d@example.com" % i,
                                                         "name": {"givenName": "First", "familyName": "Tenant %d" % i},
                                                         "emails": [{"value": "first.tenant.%d@example.com" % i, "primary": True}]})
            ids.append(user["id"])
        scim(base, token, "POST", "/Groups", {"schemas": [GROUP], "displayName": "First tenant's group",
                                               "members": [{"value": i} for i in ids[:3]]})
        print("seeded 5 users and a group")
        return 0
    if cmd == "dump":
        print(json.dumps({"Users": every(base, token, "Users"), "Groups": every(base, token, "Groups")}, indent=1, sort_keys=True))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
