"""The segment builder in a real browser: live count through HTMX, add a condition, save,
the segment's page with its members and chart — under the console's CSP, without errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import test_console as console
from tests.e2e.test_console import ADMIN_PASSWORD, Server, _shot, _watched_page

# the console test's module-scoped fixtures: a server of this module's own, its browser
server = console.server
browser = console.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_build_a_segment_and_see_its_members(server: Server, browser: Any) -> None:
    problems: list[str] = []
    context, page = _watched_page(browser, problems)
    page.goto(server.url + "/login?next=/segments")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/segments")
    # the built-in families were created on the first visit
    assert page.locator("[data-testid=seg-family-demographic]").count() == 1
    assert (
        page.locator("[data-testid=seg-family-geographic] tr", has_text="Country: GB").count() == 1
    )
    _shot(page, "segments-01-list")

    page.get_by_test_id("seg-new").click()
    page.wait_for_url(server.url + "/segments/new")
    page.get_by_test_id("seg-name").fill("Londoners")
    first = page.locator("[data-testid=seg-condition]").nth(0)
    first.get_by_label("subject").fill("country")
    first.get_by_label("value").fill("GB")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=seg-count]')?.textContent === '2'"
    )
    page.get_by_test_id("seg-add").click()
    second = page.locator("[data-testid=seg-condition]").nth(1)
    second.wait_for()
    second.get_by_label("subject").fill("city")
    second.get_by_label("value").fill("London")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=seg-count]')?.textContent === '1'"
    )
    assert page.get_by_test_id("seg-text").inner_text() == 'country is "GB" and city is "London"'
    _shot(page, "segments-02-builder")

    page.get_by_test_id("seg-save").click()
    page.wait_for_url(f"{server.url}/segments/*")
    assert page.locator("main h1").inner_text().startswith("Londoners")
    members = page.locator("[data-testid=seg-members] tbody tr")
    assert members.count() == 1 and "London" in members.inner_text()
    page.wait_for_function("() => window.Chart && Chart.getChart('segment-chart')")
    _shot(page, "segments-03-page")
    assert problems == []
    context.close()
