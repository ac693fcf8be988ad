"""The Analytics pages in a real browser: charts drawn by the static script (the CSP would
report any inline one), and the customer page's Scores card loaded by HTMX."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.e2e.test_console import (  # noqa: F401  (module fixtures: server, browser)
    ADMIN_PASSWORD,
    Server,
    _shot,
    _watched_page,
    browser,
    server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_rfm_chart_and_scores_card(server: Server, browser: Any) -> None:  # noqa: F811
    refreshed = httpx.post(
        server.url + "/api/analytics/refresh", headers=bearer(server.token), timeout=120
    )
    assert refreshed.status_code == 201, refreshed.text
    problems: list[str] = []
    context, page = _watched_page(browser, problems)
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Analytics").click()
    page.wait_for_url(server.url + "/analytics")
    assert page.get_by_test_id("engine").inner_text() == "duckdb"
    page.get_by_role("link", name="RFM segments").first.click()
    page.wait_for_url(server.url + "/analytics/rfm")
    page.wait_for_function(
        "() => window.Chart && window.Chart.getChart(document.querySelector('canvas[data-chart]'))"
    )
    _shot(page, "30-analytics-rfm")
    page.goto(f"{server.url}/customers/{server.ada_id}")
    card = page.get_by_test_id("customer-scores")
    card.wait_for()
    assert "RFM" in card.inner_text()
    _shot(page, "31-customer-scores")
    assert problems == []
    context.close()
