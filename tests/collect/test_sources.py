"""Data sources: `patronage sources …` and the console's Collect page (write key shown once)."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from patronage.cli import app
from tests.collect.helpers import basic, track
from tests.conftest import login


def test_sources_cli(database):
    runner = CliRunner()
    created = runner.invoke(app, ["sources", "create", "web shop"])
    assert created.exit_code == 0, created.output
    key = re.search(r"(wk_[A-Za-z0-9_-]{43})", created.output)
    assert key, created.output
    again = runner.invoke(app, ["sources", "create", "web shop"])
    assert again.exit_code == 1
    assert "source 'web shop' already exists" in again.output
    listed = runner.invoke(app, ["sources", "list"])
    assert listed.exit_code == 0
    assert "web shop" in listed.output and key.group(1)[:9] in listed.output
    assert key.group(1) not in listed.output  # never shown again
    revoked = runner.invoke(app, ["sources", "revoke", "web shop"])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked the write key of web shop" in revoked.output
    assert "revoked" in runner.invoke(app, ["sources", "list"]).output
    missing = runner.invoke(app, ["sources", "revoke", "nope"])
    assert missing.exit_code == 1
    assert "no source 'nope'" in missing.output


def test_sources_page(client, staff):
    login(client, "admin")
    page = client.get("/collect")
    assert page.status_code == 200
    assert 'href="/collect"' in page.text  # the navigation entry is ready
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    created = client.post("/collect/sources", data={"name": "app", "csrf_token": csrf.group(1)})
    assert created.status_code == 201
    key = re.search(r'data-testid="new-write-key">(wk_[^<]+)<', created.text)
    assert key
    assert (
        client.post(
            "/v1/track", json=track("X", userId="u"), headers=basic(key.group(1))
        ).status_code
        == 200
    )
    assert key.group(1) not in client.get("/collect").text
    source_id = re.search(r'action="/collect/sources/(\d+)/revoke"', created.text)
    assert source_id
    revoked = client.post(
        f"/collect/sources/{source_id.group(1)}/revoke",
        data={"csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert "revoked" in client.get("/collect").text
    assert (
        client.post(
            "/v1/track", json=track("X", userId="u"), headers=basic(key.group(1))
        ).status_code
        == 401
    )


def test_sources_page_needs_the_permission(client, staff):
    login(client, "marketer")
    assert client.get("/collect").status_code == 403
    assert 'href="/collect"' not in client.get("/customers").text
