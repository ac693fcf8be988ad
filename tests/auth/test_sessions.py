"""Sign-in, throttling, sessions, CSRF, API tokens, body limits (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from patronage import db
from patronage.auth.guard import SESSION_COOKIE
from patronage.auth.models import WebSession
from patronage.kit.clock import utcnow
from tests.auth.conftest import csrf_of
from tests.conftest import PASSWORD, bearer, login

WRONG = "not-the-password-1234"


def test_wrong_password_is_401_and_echoes_nothing(client, staff):
    r = login(client, "agent", WRONG)
    assert r.status_code == 401
    assert "Wrong username or password." in r.text
    assert WRONG not in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    unknown = login(client, "mallory.unknown", WRONG)
    assert unknown.status_code == 401
    assert "Wrong username or password." in unknown.text  # same answer as a wrong password
    assert "mallory.unknown" not in unknown.text and WRONG not in unknown.text
    assert client.get("/api/me").status_code == 401


def test_login_without_its_form_token_is_refused(client, staff):
    client.get("/login")
    r = client.post(
        "/login",
        data={"username": "agent", "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert "The form expired. Please try again." in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_per_account_throttling(client, staff, settings_env):
    settings_env(
        PATRONAGE_LOGIN_MAX_FAILURES_PER_ACCOUNT="3",
        PATRONAGE_LOGIN_MAX_FAILURES_PER_IP="100",
        PATRONAGE_LOGIN_THROTTLE_MINUTES="15",
    )
    for name in ("agent", "AGENT", "Agent"):  # one account, however it is typed
        assert login(client, name, WRONG).status_code == 401
    r = login(client, "agent")  # the right password does not help while throttled
    assert r.status_code == 429
    retry = int(r.headers["Retry-After"])
    assert 890 <= retry <= 900
    assert f"Too many failed attempts. Try again in {retry} s." in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert login(client, "analyst").status_code == 303  # other accounts are not locked out


def test_per_ip_throttling(app, staff, settings_env):
    settings_env(
        PATRONAGE_LOGIN_MAX_FAILURES_PER_ACCOUNT="100",
        PATRONAGE_LOGIN_MAX_FAILURES_PER_IP="4",
        PATRONAGE_LOGIN_THROTTLE_MINUTES="10",
    )
    with TestClient(app, client=("203.0.113.7", 4000)) as attacker:
        for i in range(4):  # spraying many accounts from one address
            assert login(attacker, f"guess{i}", WRONG).status_code == 401
        r = login(attacker, "admin")
        assert r.status_code == 429
        assert 590 <= int(r.headers["Retry-After"]) <= 600
        attacker.headers["X-Forwarded-For"] = "198.51.100.1"  # not trusted: still throttled
        assert login(attacker, "admin").status_code == 429
    with TestClient(app, client=("198.51.100.9", 4000)) as colleague:
        assert login(colleague, "admin").status_code == 303


def test_success_clears_the_account_failures(client, staff, settings_env):
    settings_env(
        PATRONAGE_LOGIN_MAX_FAILURES_PER_ACCOUNT="3", PATRONAGE_LOGIN_MAX_FAILURES_PER_IP="100"
    )
    for _ in range(2):
        assert login(client, "agent", WRONG).status_code == 401
    assert login(client, "agent").status_code == 303
    for _ in range(2):
        assert login(client, "agent", WRONG).status_code == 401
    assert login(client, "agent").status_code == 303  # 4 failures in all, but never 3 in a row


@pytest.mark.parametrize("how", ["idle", "absolute"])
def test_expired_session(client, staff, how):
    assert login(client, "agent").status_code == 303
    assert client.get("/api/me").status_code == 200
    with db.transaction() as s:
        past = utcnow() - timedelta(days=30)
        column = "last_seen_at" if how == "idle" else "expires_at"
        s.execute(update(WebSession).values({column: past}))
    page = client.get("/customers?page=2", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/customers&expired=1"
    shown = client.get(page.headers["location"])
    assert shown.status_code == 200
    assert "Your session expired. Please sign in again." in shown.text
    assert 'name="next" value="/customers"' in shown.text
    api = client.get("/api/me")
    assert api.status_code == 401
    assert api.json() == {
        "error": "session_expired",
        "detail": "your session expired; sign in again",
    }


def test_fresh_login_page_says_nothing_about_expiry(client):
    assert "session expired" not in client.get("/login").text


def test_csrf_for_cookie_sessions(client, staff):
    assert login(client, "agent").status_code == 303
    missing = client.post("/api/tokens", json={"name": "laptop"})
    assert missing.status_code == 403
    assert missing.json() == {
        "error": "csrf_failed",
        "detail": "the form is missing its security token or it is stale; reload",
    }
    wrong = client.post("/api/tokens", json={"name": "laptop"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "csrf_failed"
    token = csrf_of(client)
    ok = client.post("/api/tokens", json={"name": "laptop"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201, ok.text
    # HTML forms carry it as a field
    form_missing = client.post("/settings/tokens", data={"name": "desk"})
    assert form_missing.status_code == 403
    form_ok = client.post("/settings/tokens", data={"name": "desk", "csrf_token": token})
    assert form_ok.status_code == 201
    names = [t["name"] for t in client.get("/api/tokens").json()]
    assert names.count("laptop") == 1 and names.count("desk") == 1


def test_bearer_requests_need_no_csrf(client, staff):
    r = client.post("/api/tokens", json={"name": "ci"}, headers=bearer(staff["agent"]))
    assert r.status_code == 201
    assert r.json()["token"].startswith("pat_")


def test_logout_invalidates_the_session(client, staff):
    assert login(client, "agent").status_code == 303
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    token = csrf_of(client)
    refused = client.post("/logout", follow_redirects=False)  # no CSRF: nobody logs you out
    assert refused.status_code == 403
    assert client.get("/api/me").status_code == 200
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    client.cookies.set(SESSION_COOKIE, cookie)  # replaying the old cookie
    again = client.get("/api/me")
    assert again.status_code == 401
    assert again.json()["error"] == "not_authenticated"


def test_revoked_token(client, staff):
    agent = bearer(staff["agent"])
    assert client.get("/api/me", headers=agent).json()["username"] == "agent"
    [mine] = client.get("/api/tokens", headers=agent).json()
    other = client.delete(f"/api/tokens/{mine['id']}", headers=bearer(staff["analyst"]))
    assert other.status_code == 404  # someone else's token is not even there
    revoked = client.delete(f"/api/tokens/{mine['id']}", headers=agent)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    r = client.get("/api/me", headers=agent)
    assert r.status_code == 401
    assert r.json() == {
        "error": "not_authenticated",
        "detail": "the API token is unknown or revoked",
    }
    assert client.get("/api/me", headers=bearer("pat_" + "x" * 43)).status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}).json() == {
        "error": "not_authenticated",
        "detail": "send 'Authorization: Bearer <API token>'",
    }


TOO_LARGE = {"error": "payload_too_large", "detail": "request body over 1048576 bytes"}
TEN_MB = 10 * 1024 * 1024


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"first_name": "'
    for _ in range(total // 65536):
        yield b"a" * 65536
    yield b'"}'


def test_huge_bodies_are_413(client, staff):
    form = client.post("/login", data={"username": "a" * TEN_MB, "password": "x"})
    assert form.status_code == 413
    assert form.json() == TOO_LARGE
    h = bearer(staff["admin"])
    body = client.post("/api/customers", json={"first_name": "a" * TEN_MB}, headers=h)
    assert body.status_code == 413
    assert body.json() == TOO_LARGE
    # no Content-Length (chunked): counted while it streams in
    streamed = client.post(
        "/api/customers",
        content=_chunks(TEN_MB),
        headers={**h, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json() == TOO_LARGE
    with db.transaction() as s:
        from patronage.customers import service as customers

        assert customers.count_customers(s) == 0


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("//evil.example", "/"),
        ("//evil.example/customers", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/customers?page=2", "/customers?page=2"),
    ],
)
def test_next_never_leaves_the_site(client, staff, target, landing):
    page = client.get("/login", params={"next": target})
    shown = re.search(r'name="next" value="([^"]*)"', page.text)
    assert shown is not None and shown.group(1) == landing.replace("&", "&amp;")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={
            "username": "agent",
            "password": PASSWORD,
            "csrf_token": token.group(1),
            "next": target,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == landing
