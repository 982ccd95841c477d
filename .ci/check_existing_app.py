#!/usr/bin/env python3
"""Checks, in the example application's own tables, what SCIM did to them.

Usage:
  check_existing_app.py snapshot DB OUT.json          before any SCIM traffic
  check_existing_app.py verify DB SNAPSHOT.json BASE_URL TOKEN
DB is sqlite:///path or postgres://...

verify: the application's seeded rows are unchanged; users provisioned by the replays are in
its users table, and the ones SCIM deleted are still there with is_active false; a user and a
group with a membership provisioned now land in users, groups and group_members; a SCIM DELETE
keeps the row with is_active false and drops its membership.
Ends with a line "N passed, M failed".
"""
import json
import sqlite3
import subprocess
import sys
import urllib.request
import uuid


def query(db, sql):
    if db.startswith("sqlite://"):
        con = sqlite3.connect(db[len("sqlite://"):])
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()
    out = subprocess.run(["psql", db, "-At", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line]


def norm(rows):
    """Booleans and integers come back as text from psql: compare as text."""
    return sorted([tuple("1" if v in (1, True, "t") else "0" if v in (0, False, "f") else str(v) for v in r) for r in rows])


SEED_USERS = "SELECT id, email, first_name, last_name, is_active FROM users WHERE id <= 3"
SEED_GROUPS = "SELECT id, name FROM groups WHERE id = 1"
SEED_MEMBERS = "SELECT group_id, user_id FROM group_members WHERE group_id = 1"


def scim(base, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data:
        req.add_header("Content-Type", "application/scim+json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
        return resp.status, (json.loads(text) if text else None)


def main():
    cmd, db = sys.argv[1], sys.argv[2]
    if cmd == "snapshot":
        snap = {"users": norm(query(db, SEED_USERS)), "groups": norm(query(db, SEED_GROUPS)), "members": norm(query(db, SEED_MEMBERS))}
        json.dump(snap, open(sys.argv[3], "w"))
        print("snapshot of %d seeded users" % len(snap["users"]))
        return 0
    snap = json.load(open(sys.argv[3]))
    base, token = sys.argv[4], sys.argv[5]
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else " -- " + detail))

    now = {"users": norm(query(db, SEED_USERS)), "groups": norm(query(db, SEED_GROUPS)), "members": norm(query(db, SEED_MEMBERS))}
    for key in ("users", "groups", "members"):
        got = [list(r) for r in now[key]]
        check("seeded %s unchanged" % key, got == snap[key], "before %s, after %s" % (snap[key], got))
    provisioned = query(db, "SELECT email, is_active FROM users WHERE email LIKE 'okta.u.%@example.com' OR email LIKE 'entra.mgr.%@example.com'")
    check("users provisioned by the replays are in the application's table", len(provisioned) >= 2, str(provisioned))
    check("users the replays deleted are kept with is_active false", provisioned and all(str(a) in ("0", "f", "False") for _, a in provisioned), str(provisioned))

    tag = uuid.uuid4().hex[:8]
    email = "ci.check.%s@example.com" % tag
    status, user = scim(base, token, "POST", "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
                                                       "name": {"givenName": "Check", "familyName": "Run-" + tag}})
    check("SCIM create answers 201", status == 201, str(status))
    row = query(db, "SELECT id, first_name, last_name, is_active FROM users WHERE email = '%s'" % email)
    check("the created user is a row of users", norm(row) == norm([(user["id"], "Check", "Run-" + tag, 1)]), str(row))
    status, group = scim(base, token, "POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                          "displayName": "CI Group " + tag, "members": [{"value": user["id"]}]})
    check("SCIM group create answers 201", status == 201, str(status))
    members = query(db, "SELECT m.group_id, m.user_id FROM group_members m JOIN groups g ON g.id = m.group_id WHERE g.name = 'CI Group %s'" % tag)
    check("the membership is a row of group_members", norm(members) == norm([(group["id"], user["id"])]), str(members))
    status, _ = scim(base, token, "DELETE", "/Users/" + user["id"])
    check("SCIM delete answers 204", status == 204, str(status))
    row = query(db, "SELECT is_active FROM users WHERE email = '%s'" % email)
    check("after a SCIM DELETE the row is kept with is_active false", norm(row) == [("0",)], str(row))
    members = query(db, "SELECT COUNT(*) FROM group_members WHERE user_id = %s" % int(user["id"]))
    check("after a SCIM DELETE its memberships are gone", norm(members) == [("0",)], str(members))
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
