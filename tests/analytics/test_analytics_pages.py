"""The Analytics section's pages and the customer page's Scores card, through the real login."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from patronage import db
from patronage.analytics import refresh
from tests.analytics.test_features import NOW, build
from tests.conftest import bearer, login

PAGES = ("/analytics", "/analytics/rfm", "/analytics/clv", "/analytics/cohorts",
         "/analytics/funnel", "/analytics/patterns")  # fmt: skip


@pytest.fixture
def shop(database: str) -> dict[str, int]:
    with db.transaction() as s:
        ids = build(s)
        refresh.run(s, NOW)
    return ids


def _table(html: str, testid: str) -> list[list[str]]:
    body = html.split(f'data-testid="{testid}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)
    return [
        [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.DOTALL)
        ]
        for r in rows
    ]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_pages_before_any_refresh(client: TestClient, staff: dict[str, str], database: str) -> None:
    assert login(client, "marketer").status_code == 303
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert 'data-testid="no-refresh"' in page.text, path
        assert 'data-testid="analytics-nav"' in page.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_overview_and_refresh_button(
    client: TestClient, staff: dict[str, str], shop: dict[str, int]
) -> None:
    assert login(client, "analyst").status_code == 303
    page = client.get("/analytics")
    assert page.status_code == 200
    rows = dict(r[:2] for r in _table(page.text, "latest-refresh"))
    assert rows["Computed at"] == "2025-06-15 12:00 UTC"
    assert (rows["Engine"], rows["Customers"], rows["Buyers (RFM scored)"]) == ("duckdb", "6", "4")
    assert rows["Orders dated in the future (ignored)"] == "1"
    assert "analytics-refresh-now" not in page.text  # the analyst may not run jobs
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    token = csrf.group(1) if csrf else ""
    denied = client.post("/analytics/refresh", data={"csrf_token": token})
    assert denied.status_code == 403


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_admin_queues_a_refresh(
    client: TestClient, staff: dict[str, str], shop: dict[str, int]
) -> None:
    assert login(client, "admin").status_code == 303
    page = client.get("/analytics")
    assert "analytics-refresh-now" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    queued = client.post(
        "/analytics/refresh", data={"csrf_token": token.group(1)}, follow_redirects=False
    )
    assert queued.status_code == 303
    assert queued.headers["location"] == "/analytics?queued=true"
    assert 'data-testid="refresh-queued"' in client.get("/analytics?queued=true").text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_rfm_page(client: TestClient, staff: dict[str, str], shop: dict[str, int]) -> None:
    assert login(client, "seller_manager").status_code == 303
    page = client.get("/analytics/rfm")
    assert page.status_code == 200
    segments = {row[0]: row[2] for row in _table(page.text, "segments-table")[1:]}
    assert len(segments) == 11
    assert sum(int(n) for n in segments.values()) == 4
    grid = _table(page.text, "rfm-grid")
    assert grid[0] == ["F \\ R", "R1", "R2", "R3", "R4", "R5"]
    assert sum(int(c) for row in grid[1:] for c in row[1:]) == 4
    assert 'data-chart="rfm-chart-data"' in page.text
    assert '<script src="/static/js/analytics.js" defer></script>' in page.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_clv_cohorts_funnel_patterns_pages(
    client: TestClient, staff: dict[str, str], shop: dict[str, int]
) -> None:
    assert login(client, "marketer").status_code == 303
    clv = client.get("/analytics/clv")
    assert clv.status_code == 200
    assert 'data-testid="top-clv"' in clv.text and 'data-testid="top-risk"' in clv.text
    cohorts = _table(client.get("/analytics/cohorts").text, "cohort-table")
    assert cohorts[0][:4] == ["Cohort", "Buyers", "+0", "+1"]
    row = next(r for r in cohorts if r[0] == "2025-01")
    assert row[:8] == ["2025-01", "1", "100.0%", "0.0%", "100.0%", "0.0%", "0.0%", "100.0%"]
    funnel = _table(client.get("/analytics/funnel").text, "funnel-table")
    assert funnel[1:] == [
        ["viewed a product", "Product Viewed", "1", "100.0%", "0.0%"],
        ["added to cart", "Product Added", "1", "100.0%", "100.0%"],
        ["started checkout", "Checkout Started", "0", "0.0%", "–"],
        ["ordered", "Order Completed", "0", "0.0%", "–"],
    ]
    patterns = client.get("/analytics/patterns").text
    assert ["31–60 days", "1"] in _table(patterns, "intervals-table")
    assert ["50 %", "2", "100.0%"] in _table(patterns, "concentration-table")
    timing = _table(patterns, "timing-table")
    assert timing[4][0] == "Thu" and timing[4][1 + 14] == "1"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_scores_card_on_the_customer_page(
    client: TestClient, staff: dict[str, str], shop: dict[str, int]
) -> None:
    assert login(client, "agent").status_code == 303
    a = shop["A"]
    profile = client.get(f"/customers/{a}")
    assert profile.status_code == 200
    assert f'hx-get="/analytics/customers/{a}/scores"' in profile.text
    card = client.get(f"/analytics/customers/{a}/scores")
    assert card.status_code == 200
    rows = dict(r[:2] for r in _table(card.text, "customer-scores"))
    assert rows["RFM"] == "R3 F4 M4 · Loyal"
    assert rows["Orders · total spend"] == "3 · 160.00"
    assert rows["Last order"] == "2025-06-05 (10 days ago)"
    assert rows["P(alive)"] == "–"  # six customers: too few to fit the models, and it says so
    assert rows["Why"].startswith("Not scored: the purchase model could not be fitted")
    none = client.get(f"/analytics/customers/{shop['C']}/scores")
    assert "no counted orders: not scored" in none.text
    assert client.get("/analytics/customers/999999/scores").status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_pages_need_a_login(client: TestClient, database: str, staff: dict[str, str]) -> None:
    for path in (*PAGES, "/analytics/customers/1/scores"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code in (303, 401), path
    # a bearer token is no console session either way the guard answers the same shape
    assert client.get("/analytics/rfm", headers=bearer(staff["admin"])).status_code == 200
