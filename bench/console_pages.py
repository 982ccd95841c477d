#!/usr/bin/env python3
"""Times the console's pages, as a signed-in operator loads them (the HTML only: assets are
cached by the browser after the first page).

    console_pages.py ROOT ADMIN_TOKEN TENANT USER_ID GROUP_ID [ROUNDS]

Prints a Markdown table: each page's median and p90 over ROUNDS loads (20), in milliseconds.
"""
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main():
    root, admin, tenant, user, group = sys.argv[1:6]
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 20
    opener = urllib.request.build_opener(NoRedirect)
    with urllib.request.urlopen(root + "/admin/sign-in") as r:
        nonce = re.search(r'name="csrf" value="([0-9a-f]+)"', r.read().decode()).group(1)
        sign_in_cookie = r.headers["Set-Cookie"].split(";")[0]
    form = urllib.parse.urlencode({"token": admin, "csrf": nonce}).encode()
    req = urllib.request.Request(root + "/admin/sign-in", data=form, headers={"Cookie": sign_in_cookie})
    try:
        opener.open(req)
        raise SystemExit("signing in did not redirect")
    except urllib.error.HTTPError as e:
        session = [c for c in e.headers.get_all("Set-Cookie") if c.startswith("scimd_session=")][0].split(";")[0]
    base = "/admin/tenants/" + tenant
    pages = [("tenants", "/admin/tenants"), ("tenant", base), ("users", base + "/users"),
             ("users, page 100", base + "/users?page=100"), ("user search", base + "/users?q=user42"),
             ("user", base + "/users/" + user), ("groups", base + "/groups"), ("group", base + "/groups/" + group),
             ("activity", base + "/activity"), ("activity, failed", base + "/activity?status=failed")]
    print("| page | median ms | p90 ms |")
    print("|---|---|---|")
    for name, path in pages:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(root + path, headers={"Cookie": session})) as r:
                r.read()
                assert r.status == 200, (path, r.status)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        print("| %s | %.1f | %.1f |" % (name, statistics.median(times), times[int(len(times) * 0.9) - 1]))


if __name__ == "__main__":
    main()
