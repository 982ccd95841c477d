#!/usr/bin/env python3
"""The console in a real browser (headless Chromium driven by Selenium), against a real server.

    console_check.py SCIMD_BINARY OUT_DIR [--screenshots DIR]

Starts `scimd serve` on a new SQLite database (activity log on), takes the console URL and the
admin token its first start prints, and walks what an operator does: sign in, create a tenant,
copy its token, provision users and a group over SCIM with that token, find them in the
console, send a failing request and find it with its body in the activity log, revoke the
token and see the next SCIM request refused, sign out. Then, without a browser: a request
without the session, or without (or with a wrong) CSRF token, is refused. Each page's time to
load is printed (for information; no verdict on speed). Screenshots of the main pages go to
OUT_DIR (and to DIR with --screenshots). Ends with a line "N passed, M failed".
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else " -- " + str(detail)[:600]), flush=True)
    return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(binary, workdir):
    port = free_port()
    env = dict(os.environ, SCIMD_DATABASE_URL="sqlite://%s/console.db" % workdir,
               SCIMD_LISTEN="127.0.0.1:%d" % port, SCIMD_ACTIVITY_LOG="true", SCIMD_LOG_LEVEL="warn")
    env.pop("SCIMD_BOOTSTRAP_TOKEN", None)
    out = open(os.path.join(workdir, "stdout.txt"), "w+")
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=out,
                            stderr=open(os.path.join(workdir, "stderr.txt"), "w"))
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit("scimd did not start")
    time.sleep(0.3)
    out.seek(0)
    printed = out.read()
    fields = dict(re.findall(r"^\s+(Console|Admin token):\s+(\S+)\s*$", printed, re.M))
    return proc, port, fields.get("Console"), fields.get("Admin token"), printed


def scim(base, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/scim+json",
                                          "User-Agent": "Okta SCIM Client 1.0.0"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def raw_request(url, method="GET", form=None, cookie=None):
    """A request outside the browser: (status, headers, body); redirects are not followed."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if data else {}
    if cookie:
        headers["Cookie"] = cookie
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=data, method=method, headers=headers), timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu", "--lang=en-US"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=opts)


def main():
    args = sys.argv[1:]
    shots_dirs = []
    if "--screenshots" in args:
        i = args.index("--screenshots")
        shots_dirs.append(args[i + 1])
        del args[i:i + 2]
    binary, out_dir = args
    os.makedirs(out_dir, exist_ok=True)
    shots_dirs.insert(0, out_dir)
    workdir = tempfile.mkdtemp(prefix="scimd-console-")
    proc, port, console_url, admin_token, printed = start_server(binary, workdir)
    root = "http://127.0.0.1:%d" % port
    check("the first start prints the console URL and an admin token",
          console_url == root + "/admin" and (admin_token or "").startswith("scimd_admin_"), printed)
    driver = browser()
    wait = WebDriverWait(driver, 10)
    timings = []

    def visit(url):
        start = time.time()
        driver.get(url)
        timings.append((url.replace(root, ""), time.time() - start))

    def shot(name):
        for d in shots_dirs:
            os.makedirs(d, exist_ok=True)
            driver.save_screenshot(os.path.join(d, "console-%s.png" % name))

    def text():
        return driver.find_element(By.TAG_NAME, "body").text

    def submit_in(form_css):
        driver.find_element(By.CSS_SELECTOR, form_css + " button[type=submit]").click()

    try:
        # Signing in: the console sends an unknown visitor to the sign-in page.
        visit(console_url)
        check("without a session the console asks to sign in", "/admin/sign-in" in driver.current_url,
              driver.current_url)
        driver.find_element(By.ID, "token").send_keys("scimd_admin_" + "0" * 64)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
        check("a wrong admin token is refused", "not a valid admin token" in text(), text())
        driver.find_element(By.ID, "token").send_keys(admin_token)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait.until(EC.url_contains("/admin/tenants"))
        check("signing in with the admin token opens the tenants", driver.find_element(By.TAG_NAME, "h1").text
              == "Tenants", text())
        cookie = driver.get_cookie("scimd_session") or {}
        check("the session cookie is HttpOnly and SameSite=Strict",
              cookie.get("httpOnly") is True and cookie.get("sameSite") == "Strict", cookie)

        # A tenant: created in the console, its URL and token shown once, with copy buttons.
        driver.find_element(By.NAME, "slug").send_keys("acme")
        driver.find_element(By.NAME, "name").send_keys("Acme Corp")
        submit_in("form[action='/admin/tenants']")
        wait.until(EC.presence_of_element_located((By.ID, "token")))
        token = driver.find_element(By.ID, "token").text
        scim_url = driver.find_element(By.ID, "scim-url").text
        shot("tenant-created")
        check("creating a tenant shows its SCIM URL and first token",
              scim_url == root + "/t/acme/scim/v2" and token.startswith("scimd_"), (scim_url, token))
        driver.find_element(By.CSS_SELECTOR, "button[data-copy=token]").click()
        copied = driver.execute_script("return window.getSelection().toString()")
        button = driver.find_element(By.CSS_SELECTOR, "button[data-copy=token]").text
        check("the copy button copies the token (or selects it where there is no clipboard)",
              button == "Copied" or copied == token, (button, copied))

        # Provisioning over SCIM with that token.
        people = [("alice@acme.example", "Alice", "Liddell"), ("bob@acme.example", "Bob", "Builder"),
                  ("carol@acme.example", "Carol", "Danvers")]
        ids = {}
        for user_name, given, family in people:
            status, body = scim(scim_url, token, "POST", "/Users", {
                "schemas": [USER], "userName": user_name, "externalId": "ext-" + given.lower(),
                "name": {"givenName": given, "familyName": family, "formatted": given + " " + family},
                "emails": [{"value": user_name, "type": "work", "primary": True}], "password": "Pa55word!"})
            ids[given] = body and body.get("id")
            check("SCIM create %s" % user_name, status == 201, (status, body))
        status, group = scim(scim_url, token, "POST", "/Groups", {
            "schemas": [GROUP], "displayName": "Engineering",
            "members": [{"value": ids["Alice"]}, {"value": ids["Bob"]}]})
        check("SCIM create a group with two members", status == 201, (status, group))

        # Finding them in the console.
        visit(root + "/admin/tenants")
        row = driver.find_element(By.XPATH, "//a[text()='Acme Corp']/ancestor::tr").text
        check("the tenants list counts the users and groups", " 3 3 1 " in " %s " % row.replace("\n", " "), row)
        shot("tenants")
        visit(root + "/admin/tenants/acme/users")
        search = driver.find_element(By.NAME, "q")
        search.send_keys("alice")
        search.submit()
        wait.until(EC.url_contains("q=alice"))
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        check("searching users by userName finds Alice alone",
              len(rows) == 1 and "alice@acme.example" in rows[0].text, [r.text for r in rows])
        visit(root + "/admin/tenants/acme/users?q=ext-carol")
        check("searching by externalId finds Carol", "carol@acme.example" in text(), text())
        visit(root + "/admin/tenants/acme/users?q=Danvers")
        check("searching by name finds Carol", "carol@acme.example" in text(), text())
        visit(root + "/admin/tenants/acme/users")
        shot("users")
        driver.find_element(By.LINK_TEXT, "alice@acme.example").click()
        wait.until(EC.url_contains("/users/"))
        detail = text()
        check("a user's page shows its SCIM JSON and its groups",
              '"userName": "alice@acme.example"' in detail and "Engineering" in detail
              and "Pa55word" not in detail, detail)
        check("a user's page shows its recent events", "create" in driver.find_element(
            By.XPATH, "//h2[text()='Recent events']/following-sibling::ul[1]").text, detail)
        shot("user")
        visit(root + "/admin/tenants/acme/groups")
        driver.find_element(By.LINK_TEXT, "Engineering").click()
        wait.until(EC.url_contains("/groups/"))
        members = driver.find_element(By.XPATH, "//h2[starts-with(text(),'Members')]/following-sibling::ul[1]").text
        check("a group's page lists its members",
              "alice@acme.example" in members and "bob@acme.example" in members
              and "carol" not in members, members)

        # A failing request, found with its body in the activity log.
        status, body = scim(scim_url, token, "POST", "/Users", {
            "schemas": [USER], "userName": "ALICE@acme.example", "password": "Secret-Of-Alice-9"})
        check("a duplicate userName is refused (409 uniqueness)", status == 409, (status, body))
        found = ""
        for _ in range(50):
            visit(root + "/admin/tenants/acme/activity?status=failed")
            items = driver.find_elements(By.CSS_SELECTOR, "ol.activity > li")
            if items:
                items[0].find_element(By.TAG_NAME, "summary").click()
                found = items[0].text
                break
            time.sleep(0.1)
        check("the failed request is in the activity log with its answer and body",
              "409" in found and "uniqueness" in found and "ALICE@acme.example" in found
              and "[redacted]" in found, found)
        check("the logged body holds no password", "Secret-Of-Alice-9" not in driver.page_source)
        shot("activity")
        visit(root + "/admin/tenants/acme/activity")
        check("the whole log lists the successful requests too",
              len(driver.find_elements(By.CSS_SELECTOR, "ol.activity > li")) >= 5, text())

        # An event stream to a receiver that is not there: its failures show on the tenant.
        req = urllib.request.Request(root + "/admin/v1/tenants/acme/streams", method="POST",
                                     data=json.dumps({"name": "warehouse", "endpoint": "http://127.0.0.1:9/events",
                                                      "from": "beginning"}).encode(),
                                     headers={"Authorization": "Bearer " + admin_token,
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()
        failing = ""
        for _ in range(60):
            visit(root + "/admin/tenants/acme")
            failing = driver.find_element(By.XPATH, "//h2[text()='Event streams']/following-sibling::div[1]").text
            if "failed attempt" in failing:
                break
            time.sleep(0.25)
        check("the tenant's page shows the stream's backlog and last error",
              "warehouse" in failing and "failed attempt" in failing and "never" in failing, failing)
        driver.find_element(By.XPATH, "//tr[contains(., 'warehouse')]//button[text()='Pause']").click()
        wait.until(EC.url_contains("notice=paused"))
        check("pausing a stream from the console", "The stream is paused." in text()
              and "paused" in driver.find_element(By.XPATH, "//tr[contains(., 'warehouse')]").text, text())
        driver.find_element(By.XPATH, "//tr[contains(., 'warehouse')]//button[text()='Resume']").click()
        wait.until(EC.url_contains("notice=resumed"))
        check("resuming it", "The stream is delivering again." in text(), text())
        shot("tenant")

        # On a phone's screen: nothing wider than the screen but the tables, which scroll.
        driver.set_window_size(390, 844)
        for path in ["/admin/tenants", "/admin/tenants/acme", "/admin/tenants/acme/activity?status=failed"]:
            visit(root + path)
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            check("%s fits a phone's screen" % path, overflow <= 0, "%d px too wide" % overflow)
        shot("phone")
        driver.set_window_size(1280, 1000)
        visit(root + "/admin/tenants/acme")

        # Revoking the token from the console: the identity provider is refused at once.
        row = driver.find_element(By.XPATH, "//td[text()='initial']/ancestor::tr")
        row.find_element(By.XPATH, ".//button[text()='Revoke']").click()
        alert = wait.until(EC.alert_is_present())
        alert.accept()
        wait.until(EC.url_contains("notice=revoked"))
        check("the console says the token is revoked", "The token is revoked" in text(), text())
        status, _ = scim(scim_url, token, "GET", "/Users")
        check("the revoked token's next SCIM request is refused (401)", status == 401, status)

        # A new token, shown once.
        driver.find_element(By.XPATH, "//form[contains(@action,'/tokens')]//input[@name='name']").clear()
        driver.find_element(By.XPATH, "//form[contains(@action,'/tokens')]//input[@name='name']").send_keys("okta")
        driver.find_element(By.XPATH, "//button[text()='Create a token']").click()
        wait.until(EC.presence_of_element_located((By.ID, "token")))
        second = driver.find_element(By.ID, "token").text
        check("a new token from the console works", scim(scim_url, second, "GET", "/Users")[0] == 200, second)

        # The form tokens: taken from this page, then misused outside the browser.
        csrf = driver.find_element(By.NAME, "csrf").get_attribute("value")
        session = "scimd_session=" + driver.get_cookie("scimd_session")["value"]
        console_js = raw_request(root + "/admin/assets/console.js")
        check("the script is served by the console itself", console_js[0] == 200
              and "data-copy" in console_js[2], console_js[0])
        page = raw_request(root + "/admin/tenants", cookie=session)
        csp = page[1].get("Content-Security-Policy", "")
        check("pages are sent with a strict Content-Security-Policy",
              "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp)
        check("pages are not cached", page[1].get("Cache-Control") == "no-store", page[1].get("Cache-Control"))

        # Signing out ends the session (in the browser and for its cookie anywhere).
        driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
        wait.until(EC.url_contains("/admin/sign-in"))
        check("signing out returns to the sign-in page", "You are signed out." in text(), text())
        visit(root + "/admin/tenants")
        check("after signing out the console asks to sign in again", "/admin/sign-in" in driver.current_url,
              driver.current_url)
        after = raw_request(root + "/admin/tenants", cookie=session)
        check("the signed-out session's cookie opens nothing", after[0] == 303
              and "/admin/sign-in" in after[1].get("Location", ""), after[0])
        # (Failed requests the walk made on purpose, such as the wrong token's 401, are the
        # network's; anything else is a page's fault.)
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and e.get("source") != "network"]
        check("no page broke the Content-Security-Policy or raised a script error", not logs, logs)
    finally:
        driver.quit()

    # Forms without the session or the CSRF token, outside the browser (a forged request).
    form_csrf = lambda page: re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    status, headers, page = raw_request(root + "/admin/sign-in")
    nonce = form_csrf(page)
    sign_in_cookie = headers.get("Set-Cookie", "").split(";")[0]
    status, headers, _ = raw_request(root + "/admin/sign-in", "POST",
                                     {"token": admin_token, "csrf": nonce}, cookie=None)
    check("signing in without the sign-in form's cookie is refused (403)", status == 403, status)
    status, headers, _ = raw_request(root + "/admin/sign-in", "POST",
                                     {"token": admin_token, "csrf": "0" * 64}, cookie=sign_in_cookie)
    check("signing in with a wrong form token is refused (403)", status == 403, status)
    status, headers, _ = raw_request(root + "/admin/sign-in", "POST",
                                     {"token": admin_token, "csrf": nonce, "next": "https://evil.example/"},
                                     cookie=sign_in_cookie)
    session = headers.get("Set-Cookie", "").split(";")[0]
    check("signing in outside the browser (with the form's cookie) works, and never leaves the console",
          status == 303 and headers.get("Location") == "/admin/tenants" and session.startswith("scimd_session="),
          (status, headers.get("Location")))
    status, _, page = raw_request(root + "/admin/tenants", cookie=session)
    token_field = form_csrf(page)
    for label, form, cookie in [
        ("without the CSRF token", {"slug": "forged"}, session),
        ("with a wrong CSRF token", {"slug": "forged", "csrf": "f" * 64}, session),
        ("with another session's CSRF token", {"slug": "forged", "csrf": csrf}, session),
        ("without the session", {"slug": "forged", "csrf": token_field}, None),
    ]:
        status, _, _ = raw_request(root + "/admin/tenants", "POST", form, cookie=cookie)
        check("a form %s is refused (403)" % label, status == 403, status)
    status, _, _ = raw_request(root + "/admin/tenants/acme/disable", "POST", {"csrf": token_field}, cookie=session)
    check("with the session and its CSRF token the same form works", status == 303, status)
    tenants = json.loads(urllib.request.urlopen(urllib.request.Request(
        root + "/admin/v1/tenants", headers={"Authorization": "Bearer " + admin_token}), timeout=10).read())
    slugs = {t["slug"]: t["state"] for t in tenants["tenants"]}
    check("no forged form changed anything", "forged" not in slugs and slugs.get("acme") == "disabled", slugs)
    proc.terminate()
    proc.wait(timeout=30)

    print("page loads (browser, including assets):")
    for url, secs in timings:
        print("  %7.1f ms  %s" % (secs * 1000, url))
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
