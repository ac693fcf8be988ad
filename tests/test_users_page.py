"""Admins manage staff users in the console; deactivation locks a user out at once."""

from __future__ import annotations

import re

from tests.conftest import bearer, login


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_admin_creates_and_deactivates_a_user(client, staff):
    assert login(client, "admin").status_code == 303
    page = client.get("/settings/users")
    assert page.status_code == 200
    assert page.text.count('<span class="badge ok">active</span>') == 5
    created = client.post(
        "/settings/users",
        data={
            "username": "zoe",
            "password": "long enough pw",
            "role": "agent",
            "csrf_token": _csrf(page.text),
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    page = client.get("/settings/users")
    assert "<td>zoe</td><td>agent</td>" in page.text

    agent_id = client.get("/api/users", headers=bearer(staff["admin"])).json()
    target = next(u["id"] for u in agent_id if u["username"] == "agent")
    off = client.post(
        f"/settings/users/{target}/active",
        data={"active": "false", "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert off.status_code == 303
    # the agent's API token stops working immediately
    assert client.get("/api/me", headers=bearer(staff["agent"])).status_code == 401


def test_users_page_needs_admin(client, staff):
    login(client, "marketer")
    page = client.get("/settings/users")
    assert page.status_code == 403
    assert "may not use this" in page.text


def test_cannot_deactivate_yourself(client, staff):
    login(client, "admin")
    page = client.get("/settings/users")
    me = next(
        u["id"]
        for u in client.get("/api/users", headers=bearer(staff["admin"])).json()
        if u["username"] == "admin"
    )
    r = client.post(
        f"/settings/users/{me}/active", data={"active": "false", "csrf_token": _csrf(page.text)}
    )
    assert r.status_code == 422
    assert "you cannot deactivate yourself" in r.text
