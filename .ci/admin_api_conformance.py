#!/usr/bin/env python3
"""Exercises every route of a running scimd's admin API and checks each request and answer
against the API's own OpenAPI document (served at /admin/v1/openapi.json), with the
third-party validators openapi-spec-validator (the document) and openapi-core (the traffic).

Usage: admin_api_conformance.py ROOT_URL ADMIN_TOKEN
Ends with a line "N passed, M failed".
"""
import sys
import uuid

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_spec_validator import validate

root, token = sys.argv[1].rstrip("/"), sys.argv[2]
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else " -- " + str(detail)[:400]))


doc = requests.get(root + "/admin/v1/openapi.json", timeout=10).json()
try:
    validate(doc)
    check("the OpenAPI document is valid OpenAPI 3.1", doc["openapi"].startswith("3.1"))
except Exception as e:  # noqa: BLE001 - report any validator complaint
    check("the OpenAPI document is valid OpenAPI 3.1", False, e)
# The document describes the API at /admin/v1.
doc["servers"] = [{"url": root + "/admin/v1"}]
api = OpenAPI.from_dict(doc)
session = requests.Session()


def call(name, method, path, body=None, auth=True, expect=None, raw=None, content_type=None):
    headers = {"Authorization": "Bearer " + token} if auth else {}
    kwargs = {"headers": headers}
    if raw is not None:
        kwargs["data"] = raw
        headers["Content-Type"] = content_type or "application/json"
    elif body is not None:
        kwargs["json"] = body
    req = requests.Request(method, root + "/admin/v1" + path, **kwargs).prepare()
    resp = session.send(req, timeout=30)
    try:
        # A request the API refuses on purpose is not a valid request: check only the answer.
        if resp.status_code < 400:
            api.validate_request(RequestsOpenAPIRequest(req))
        api.validate_response(RequestsOpenAPIRequest(req), RequestsOpenAPIResponse(resp))
        ok = expect is None or resp.status_code == expect
        check("%s: %s %s -> %d" % (name, method, path, resp.status_code), ok, resp.text)
    except Exception as e:  # noqa: BLE001 - report any validator complaint
        check("%s: %s %s -> %d" % (name, method, path, resp.status_code), False, "%s: %s" % (e, resp.text))
    return resp


slug = "conf-" + uuid.uuid4().hex[:8]
created = call("create a tenant", "POST", "/tenants", {"slug": slug, "name": "Conformance", "settings": {"delete_policy": "erase"}}, expect=201)
call("list tenants", "GET", "/tenants", expect=200)
call("read a tenant", "GET", "/tenants/" + slug, expect=200)
call("rename, change settings", "PATCH", "/tenants/" + slug, {"name": "Renamed", "settings": {"rate_limit_per_second": 5, "delete_policy": None}}, expect=200)
call("counts", "GET", "/tenants/%s/stats" % slug, expect=200)
new = call("a new token", "POST", "/tenants/%s/tokens" % slug, {"name": "rotation", "expires_in": "90d"}, expect=201)
call("a token with defaults", "POST", "/tenants/%s/tokens" % slug, {}, expect=201)
call("list tokens", "GET", "/tenants/%s/tokens" % slug, expect=200)
if new.status_code == 201:
    call("revoke a token", "DELETE", "/tenants/%s/tokens/%s" % (slug, new.json()["id"]), expect=204)
call("disable", "POST", "/tenants/%s/disable" % slug, expect=200)
call("enable", "POST", "/tenants/%s/enable" % slug, expect=200)
# Refusals, each answered with the documented Error object.
call("no token", "GET", "/tenants", auth=False, expect=401)
call("slug taken", "POST", "/tenants", {"slug": slug}, expect=409)
call("invalid slug", "POST", "/tenants", {"slug": "Not A Slug"}, expect=400)
call("unknown field", "POST", "/tenants", {"slug": "x", "colour": "red"}, expect=400)
call("not JSON", "POST", "/tenants", raw="{", expect=400)
call("wrong media type", "POST", "/tenants", raw="slug=x", content_type="application/x-www-form-urlencoded", expect=415)
call("invalid settings", "PATCH", "/tenants/" + slug, {"settings": {"delete_policy": "shred"}}, expect=400)
call("invalid expiry", "POST", "/tenants/%s/tokens" % slug, {"expires_in": "soon"}, expect=400)
call("no such tenant", "GET", "/tenants/no-such-tenant", expect=404)
call("no such token", "DELETE", "/tenants/%s/tokens/000000000000" % slug, expect=404)
# Change events: the feed and event streams.
tenant_token = created.json()["token"]["secret"] if created.status_code == 201 else ""
scim = requests.post(created.json()["scim_base_url"] + "/Users", timeout=10,
                     headers={"Authorization": "Bearer " + tenant_token, "Content-Type": "application/scim+json"},
                     json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "feed@example.com"})
check("a SCIM write to feed the log", scim.status_code == 201, scim.text)
feed = call("the event feed", "GET", "/tenants/%s/events?after=0&limit=10" % slug, expect=200)
check("the feed holds the write", feed.status_code == 200 and len(feed.json()["events"]) == 1, feed.text)
call("the feed, past its end", "GET", "/tenants/%s/events?after=1000" % slug, expect=200)
push = call("a push stream", "POST", "/tenants/%s/streams" % slug,
            {"name": "app", "endpoint": "https://receiver.example.com/events", "authorization": "Bearer x",
             "format": "notice", "event_types": ["create", "deactivate"], "from": "beginning"}, expect=201)
poll = call("a poll stream", "POST", "/tenants/%s/streams" % slug, {"delivery": "poll", "alg": "ES256", "from": 0}, expect=201)
call("list streams", "GET", "/tenants/%s/streams" % slug, expect=200)
if push.status_code == 201 and poll.status_code == 201:
    sid, pid = push.json()["id"], poll.json()["id"]
    call("read a stream", "GET", "/tenants/%s/streams/%s" % (slug, sid), expect=200)
    call("pause", "POST", "/tenants/%s/streams/%s/pause" % (slug, sid), expect=200)
    call("resume", "POST", "/tenants/%s/streams/%s/resume" % (slug, sid), expect=200)
    call("replay from a sequence number", "POST", "/tenants/%s/streams/%s/replay" % (slug, sid), {"from": 0}, expect=200)
    call("replay from now", "POST", "/tenants/%s/streams/%s/replay" % (slug, sid), {"from": "now"}, expect=200)
    call("rotate the secret", "POST", "/tenants/%s/streams/%s/rotate-secret" % (slug, sid), expect=200)
    call("an ES256 stream has no secret", "POST", "/tenants/%s/streams/%s/rotate-secret" % (slug, pid), expect=400)
    call("invalid replay", "POST", "/tenants/%s/streams/%s/replay" % (slug, sid), {"from": "yesterday"}, expect=400)
    call("delete a stream", "DELETE", "/tenants/%s/streams/%s" % (slug, pid), expect=204)
    call("deleted stream", "GET", "/tenants/%s/streams/%s" % (slug, pid), expect=404)
call("a push stream without a URL", "POST", "/tenants/%s/streams" % slug, {"delivery": "push"}, expect=400)
call("an unknown event type", "POST", "/tenants/%s/streams" % slug, {"endpoint": "https://r.example.com", "event_types": ["boom"]}, expect=400)
call("feed limit out of range", "GET", "/tenants/%s/events?limit=5000" % slug, expect=400)
call("no such stream", "GET", "/tenants/%s/streams/nope" % slug, expect=404)
# The activity log: the SCIM write above, and filters.
call("the activity log", "GET", "/tenants/%s/activity" % slug, expect=200)
call("failures only, a page", "GET", "/tenants/%s/activity?status=failed&limit=5&before=1000000" % slug, expect=200)
call("by resource and time", "GET", "/tenants/%s/activity?resource_id=x&since=2026-01-01T00:00:00Z&until=2999-01-01T00:00:00Z" % slug, expect=200)
call("an unknown status class", "GET", "/tenants/%s/activity?status=6xx" % slug, expect=400)
call("delete a tenant", "DELETE", "/tenants/" + slug, expect=204)
call("deleted", "GET", "/tenants/" + slug, expect=404)

print("%d passed, %d failed" % (results.count(True), results.count(False)))
sys.exit(0 if all(results) else 1)
