"""The dashboard page at / through the real login form."""

from __future__ import annotations

import json
import re

import pytest

from patronage import db
from patronage.analytics import service
from tests.analytics.dataset import NOW, build_shop, expected_months
from tests.conftest import login


@pytest.fixture
def shop(database, monkeypatch):
    monkeypatch.setattr(service, "utcnow", lambda: NOW)
    with db.transaction() as s:
        build_shop(s)


def _tile(html: str, name: str) -> str:
    match = re.search(
        rf'data-testid="kpi-{name}">.*?<div class="value">([^<]*)</div>', html, re.DOTALL
    )
    assert match, name
    return match.group(1)


def _month_rows(html: str) -> list[tuple[str, str, str]]:
    table = html.split('data-testid="revenue-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(
        r'<tr><td>([\d-]+)</td><td class="num">([^<]*)</td><td class="num">([^<]*)</td></tr>',
        table,
    )


def _csrf(html: str) -> str:
    match = re.search(r'"X-CSRF-Token": "([^"]+)"', html)
    assert match
    return match.group(1)


def test_dashboard_tiles_and_month_table(client, staff, shop):
    assert login(client, "analyst").status_code == 303
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    tiles = {n: _tile(html, n) for n in ("customers", "buyers", "orders", "revenue", "aov")}
    assert tiles == {
        "customers": "5",
        "buyers": "4",
        "orders": "6",
        "revenue": "184.95",
        "aov": "30.82",
    }
    assert _tile(html, "repeat") == "50.0%"
    assert "2025-06-15 12:00 UTC" in html
    rows = _month_rows(html)
    assert len(rows) == 24
    assert rows[0] == ("2023-07", "1", "3.00")
    assert rows[-1] == ("2025-06", "2", "125.01")
    assert ("2025-05", "1", "40.00") in rows and ("2024-12", "1", "9.94") in rows
    assert ("2024-01", "0", "0.00") in rows
    data = re.search(r'<script type="application/json" id="revenue-data">(.*?)</script>', html)
    assert data and json.loads(data.group(1)) == expected_months()
    assert '<script src="/static/vendor/chart.min.js" defer></script>' in html
    assert '<script src="/static/js/dashboard.js" defer></script>' in html
    assert "Refresh now" not in html  # analysts may not run jobs
    assert client.get("/static/js/dashboard.js").status_code == 200


def test_refresh_now(client, staff, shop, monkeypatch):
    assert login(client, "admin").status_code == 303
    page = client.get("/")
    assert 'hx-post="/dashboard/refresh"' in page.text
    later = NOW.replace(hour=13, minute=30)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    with db.transaction() as s:
        build_shop(s, prefix="again-")  # the shop doubled since the page was drawn
    without_token = client.post("/dashboard/refresh")
    assert without_token.status_code == 403
    fragment = client.post("/dashboard/refresh", headers={"X-CSRF-Token": _csrf(page.text)})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="kpi-section"')
    assert "<html" not in fragment.text
    assert _tile(fragment.text, "orders") == "12"
    assert "2025-06-15 13:30 UTC" in fragment.text
    with db.transaction() as s:
        assert service.snapshots_on(s, NOW) == 1


def test_seller_manager_sees_but_cannot_refresh(client, staff, shop):
    login(client, "seller_manager")
    page = client.get("/")
    assert page.status_code == 200
    assert "Refresh now" not in page.text
    denied = client.post("/dashboard/refresh", headers={"X-CSRF-Token": _csrf(page.text)})
    assert denied.status_code == 403


def test_visitors_are_sent_to_login(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_empty_shop(client, staff):
    login(client, "analyst")
    html = client.get("/").text
    assert "No orders yet" in html
    assert 'id="revenue-data"' not in html
    assert _tile(html, "orders") == "0"
    assert _tile(html, "revenue") == "0.00"
