"""Security properties of the whole app, on SQLite and PostgreSQL.

- personal data is nowhere in the raw database files or rows;
- every API route refuses anonymous callers (401) and roles without its permission (403);
- every page sends anonymous visitors to the sign-in page;
- personal data reaches no log record, and errors carry no traceback.
"""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from patronage.auth.guard import checked_principal
from patronage.auth.roles import Permission, Role, roles_with, roles_without
from tests.conftest import bearer

# -- personal data used below: improbable strings, so any hit is a leak ------------------------

PEOPLE = [
    {
        "user_id": "sec-1",
        "email": "Quentinella.Zyxwar@Example.org",
        "phone": "+49 30 9876 5432",
        "first_name": "Quentinella",
        "last_name": "Zyxwarowski",
        "street": "Vogelweidenstrasse 77",
        "birthday": "1984-02-29",
        "country": "DE",
    },
    {
        "user_id": "sec-2",
        "email": "bartholomew.qq@mailbox-quack.com",
        "phone": "+44 20 7946 0958",
        "first_name": "Bartholomewz",
        "last_name": "Quackenbushy",
        "street": "Threadneedle Lane 12",
        "country": "GB",
    },
]


TRACKED_PERSON = {
    "email": "ottoline.vexbridge@example.net",
    "phone": "+33 4 7212 3456",
    "first_name": "Ottoline",
    "last_name": "Vexbridge",
    "street": "Rue Quincampoixe 9",
}


def _write_key() -> dict[str, str]:
    from patronage import db
    from patronage.auth import service as auth_service

    with db.transaction() as s:
        _, key = auth_service.create_source(s, "security-test")
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def secrets_of(person: dict[str, str]) -> list[str]:
    """Every form in which a person's personal data could leak."""
    values = [person[k] for k in ("email", "phone", "first_name", "last_name", "street")]
    values += [person["email"].lower(), re.sub(r"[^\d+]", "", person["phone"])]
    return values


def create_people(client: TestClient, token: str) -> list[int]:
    ids = []
    for person in PEOPLE:
        r = client.post("/api/customers", json=person, headers=bearer(token))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


# -- raw database -------------------------------------------------------------------------------


def _raw_sqlite(url: str) -> bytes:
    path = Path(make_url(url).database or "")
    blobs = []
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            blobs.append(part.read_bytes())
    assert blobs and len(blobs[0]) > 0
    return b"".join(blobs)


def _raw_postgres(url: str) -> bytes:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    out = []
    with psycopg.connect(conninfo) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        assert len(tables) > 5
        for (name,) in tables:
            for (row,) in conn.execute(f'SELECT t::text FROM "{name}" t'):
                out.append(row)
    return "\n".join(out).encode()


def test_no_personal_data_in_the_raw_database(client, staff, database, backend):
    ids = create_people(client, staff["agent"])
    # and touch them the usual ways: read, search by email and phone, change consent
    h = bearer(staff["agent"])
    for cid, person in zip(ids, PEOPLE, strict=True):
        assert client.get(f"/api/customers/{cid}", headers=h).status_code == 200
        for term in ({"q": person["email"]}, {"phone": person["phone"]}):
            found = client.post("/api/customers/search", json=term, headers=h)
            assert [c["id"] for c in found.json()["items"]] == [cid], found.text
        consent = client.post(
            f"/api/customers/{cid}/consents",
            json={"purpose": "marketing_email", "granted": True},
            headers=h,
        )
        assert consent.status_code == 201
    # and a third person who arrives through the tracking API (identify, then events)
    key = _write_key()
    traits = {
        "email": TRACKED_PERSON["email"],
        "phone": TRACKED_PERSON["phone"],
        "firstName": TRACKED_PERSON["first_name"],
        "lastName": TRACKED_PERSON["last_name"],
        "address": {"street": TRACKED_PERSON["street"], "city": "Lyon", "country": "FR"},
    }
    sent = [
        ("/v1/identify", {"userId": "sec-3", "traits": traits}),
        (
            "/v1/track",
            {
                "userId": "sec-3",
                "event": "Form Submitted",
                "properties": {"note": f"call me at {TRACKED_PERSON['email']}"},
                "context": {"traits": traits},
            },
        ),
    ]
    for path, message in sent:
        r = client.post(path, json=message, headers=key)
        assert r.status_code == 200, r.text
    raw = _raw_sqlite(database) if backend == "sqlite" else _raw_postgres(database)
    assert b"sec-1" in raw and b"sec-2" in raw and b"sec-3" in raw  # the scan sees the rows
    lowered = raw.lower()
    for person in [*PEOPLE, TRACKED_PERSON]:
        for value in secrets_of(person):
            encoded = value.lower().encode()
            assert encoded not in lowered, f"{value!r} stored in clear"
            assert encoded.hex().encode() not in lowered, f"{value!r} stored in clear (hex)"


# -- the route walk -------------------------------------------------------------------------------

PUBLIC = {("GET", "/health")}
ANY_STAFF = {("GET", "/api/me")}  # `Authenticated`: every signed-in role
# permissions every role holds: no role to be refused with
EVERY_ROLE = {Permission.DASHBOARD_READ, Permission.TOKENS_OWN}
SIGN_IN = {("GET", "/login"), ("POST", "/login")}
# pages open to anyone: the API's own documentation (its schema is public at /openapi.json)
# and the favicon (a redirect to a static file)
PUBLIC_PAGES = {*SIGN_IN, ("GET", "/api/docs"), ("GET", "/favicon.ico")}


def _permission(dependant: Any) -> tuple[Permission | None, bool]:
    """(permission its guard requires, whether it authenticates at all)."""
    found: Permission | None = None
    authenticated = False
    for dep in dependant.dependencies:
        if getattr(dep.call, "__permission__", None) is not None:
            found = dep.call.__permission__
        if dep.call is checked_principal:
            authenticated = True
        inner, inner_auth = _permission(dep)
        found = found or inner
        authenticated = authenticated or inner_auth
    return found, authenticated


def operations(app: Any, *, in_schema: bool) -> list[tuple[str, str, Permission | None, bool]]:
    ops = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or bool(ctx.include_in_schema) != in_schema:
            continue
        permission, authenticated = _permission(route.dependant)
        for method in sorted(ctx.methods or ()):
            ops.append((method, str(ctx.path), permission, authenticated))
    return ops


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


# a well-formed tracking message: the tracking API looks for the write key in the body too
TRACKED = {"type": "track", "userId": "u1", "event": "Signed Up"}


def _call(client: TestClient, method: str, path: str, **kw: Any) -> Any:
    if path == "/v1/batch":
        kw.setdefault("json", {"batch": [TRACKED]})
    elif path.startswith("/v1/"):
        kw.setdefault("json", TRACKED)
    if method in {"POST", "PUT", "PATCH"}:
        kw.setdefault("json", {})
    return client.request(method, _url(path), follow_redirects=False, **kw)


def _write_key_routes(app: Any) -> set[tuple[str, str]]:
    """The tracking API: authenticated by a source's write key, not by staff credentials."""
    return {(m, p) for m, p, _, _ in operations(app, in_schema=True) if p.startswith("/v1/")}


def test_openapi_lists_exactly_the_schema_routes(app):
    listed = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    }
    assert listed == {(m, p) for m, p, _, _ in operations(app, in_schema=True)}


def test_every_api_route_refuses_anonymous_callers(client):
    checked = 0
    for method, path, _, _ in operations(client.app, in_schema=True):
        if (method, path) in PUBLIC:
            continue
        r = _call(client, method, path)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"] == "not_authenticated", (method, path, r.text)
        assert set(r.json()) == {"error", "detail"}
        checked += 1
    assert checked >= 20


def test_every_api_route_requires_its_permission(client, staff):
    app = client.app
    write_key = _write_key_routes(app)
    refused = 0
    for method, path, permission, authenticated in operations(app, in_schema=True):
        if (method, path) in PUBLIC or (method, path) in write_key:
            assert permission is None and not authenticated, (method, path)
            continue
        if (method, path) in ANY_STAFF:
            assert permission is None and authenticated, (method, path)
            for role in Role:
                r = _call(client, method, path, headers=bearer(staff[role.value]))
                assert r.status_code == 200, (method, path, role)
            continue
        assert permission is not None, f"{method} {path} has no require(Permission.…) guard"
        lacking = roles_without(permission)
        assert lacking or permission in EVERY_ROLE, (method, path, permission)
        for role in sorted(lacking):
            r = _call(client, method, path, headers=bearer(staff[role.value]))
            assert r.status_code == 403, (method, path, role, r.status_code, r.text)
            assert r.json()["error"] == "forbidden"
            refused += 1
        # and a role that holds it gets past the guard (GET only: nothing is written)
        if method == "GET":
            role = sorted(roles_with(permission))[0]
            r = _call(client, method, path, headers=bearer(staff[role.value]))
            assert r.status_code not in {401, 403}, (method, path, role, r.text)
    assert refused >= 20


def test_staff_tokens_do_not_open_the_tracking_api(client, staff):
    for method, path in sorted(_write_key_routes(client.app)):
        r = _call(client, method, path, headers=bearer(staff["admin"]))
        assert r.status_code == 401, (path, r.text)


def test_every_page_sends_anonymous_visitors_to_sign_in(client):
    pages = 0
    for method, path, permission, _ in operations(client.app, in_schema=False):
        if (method, path) in PUBLIC_PAGES:
            assert permission is None, (method, path)
            continue
        assert permission is not None, f"page {method} {path} has no require(Permission.…)"
        r = client.request(method, _url(path), follow_redirects=False)
        assert r.status_code == 303, (method, path, r.status_code)
        assert r.headers["location"] == "/login?next=" + quote(_url(path)), (method, path)
        pages += method == "GET"
    assert pages >= 5


def test_every_page_requires_its_permission(client, staff):
    for method, path, permission, _ in operations(client.app, in_schema=False):
        if (method, path) in PUBLIC_PAGES:
            continue
        for role in sorted(roles_without(permission)):
            r = client.request(
                method, _url(path), headers=bearer(staff[role.value]), follow_redirects=False
            )
            assert r.status_code == 403, (method, path, role, r.status_code)
            assert "text/html" in r.headers["content-type"]


# -- logs and errors ------------------------------------------------------------------------------


def test_no_personal_data_in_logs(client, staff, caplog):
    caplog.set_level(logging.DEBUG)
    agent = bearer(staff["agent"])
    ids = create_people(client, staff["agent"])
    for cid, person in zip(ids, PEOPLE, strict=True):
        assert client.get(f"/api/customers/{cid}", headers=agent).status_code == 200
        assert client.get(f"/customers/{cid}", headers=agent).status_code == 200
        for q in (person["email"], person["phone"]):
            r = client.post("/api/customers/search", json={"q": q}, headers=agent)
            assert r.status_code == 200 and r.json()["meta"]["total"] == 1
            r = client.post("/customers", data={"q": q}, headers=agent)
            assert r.status_code == 200 and person["last_name"] in r.text
        # refused and invalid requests too
        r = client.post(
            "/api/customers/search",
            json={"email": person["email"]},
            headers=bearer(staff["analyst"]),
        )
        assert r.status_code == 403
        r = client.get("/api/customers", params={"q": person["email"]}, headers=agent)
        assert r.status_code == 400
        r = client.post("/api/customers", json={**person, "email": "broken@"}, headers=agent)
        assert r.status_code == 422
        r = client.post("/api/customers", json=person, headers=agent)
        assert r.status_code == 409
    assert caplog.records, "expected some log records at DEBUG"
    # the test client's own request log (httpx) is not the application's
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}".lower() for r in ours)
    for person in PEOPLE:
        for value in secrets_of(person):
            assert value.lower() not in text, f"{value!r} logged"


def test_unexpected_errors_carry_no_message_and_no_traceback(app, staff, caplog, monkeypatch):
    from patronage.customers import service as customers

    leak = PEOPLE[0]["email"]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"row for {leak} is broken")

    monkeypatch.setattr(customers, "profile", broken)
    caplog.set_level(logging.DEBUG)
    # raise_server_exceptions=True: the error must not escape to the server (which logs it)
    with TestClient(app, raise_server_exceptions=True) as client:
        api = client.get("/api/customers/1", headers=bearer(staff["admin"]))
        page = client.get("/customers/1", headers=bearer(staff["admin"]))
    assert api.status_code == 500
    assert api.json() == {
        "error": "internal_error",
        "detail": "an unexpected error occurred; it has been logged",
    }
    assert api.headers["x-content-type-options"] == "nosniff"
    assert page.status_code == 500 and "text/html" in page.headers["content-type"]
    for body in (api.text, page.text):
        assert "Traceback" not in body and leak not in body and "RuntimeError" not in body
    unhandled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unhandled")]
    assert [m.splitlines()[0] for m in unhandled] == [
        "unhandled RuntimeError on GET /api/customers/1",
        "unhandled RuntimeError on GET /customers/1",
    ]
    # where it happened, in our code, for whoever debugs; no framework frames, no message
    assert "customers/api.py" in unhandled[0] and "in get_profile" in unhandled[0]
    assert "site-packages" not in unhandled[0]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert leak not in logged


def test_client_errors_carry_no_traceback(client, staff):
    h = bearer(staff["admin"])
    for r in (
        client.get("/api/customers/not-a-number", headers=h),
        client.post(
            "/api/customers",
            content=b"{not json",
            headers={**h, "Content-Type": "application/json"},
        ),
        client.get("/api/nowhere", headers=h),
        client.put("/api/me", headers=h),
    ):
        assert 400 <= r.status_code < 500
        assert set(r.json()) == {"error", "detail"}
        assert "Traceback" not in r.text and 'File "' not in r.text
