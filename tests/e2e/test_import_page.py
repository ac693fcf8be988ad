"""The Import page in a real browser: upload, preview with the refused rows, confirm with
"skip the refused ones", then the list (no inline script: the CSP would report it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_console import (  # noqa: F401  (module fixtures: server, browser)
    ADMIN_PASSWORD,
    Server,
    _shot,
    _watched_page,
    browser,
    server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LINES = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART,6,12/01/2010 08:26,2.55,17850,United Kingdom\n"
    "536366,22633,HAND WARMER,6,12/01/2010 08:28,1.85,17851,France\n"
    "536367,84879,BIRD,abc,12/01/2010 08:34,1.69,13047,United Kingdom\n"
)


def test_upload_preview_confirm(server: Server, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    problems: list[str] = []
    context, page = _watched_page(browser, problems)
    page.goto(server.url + "/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Import").click()
    page.wait_for_url(server.url + "/collect/imports")
    source = tmp_path / "shop.csv"
    source.write_text(LINES)
    page.get_by_test_id("import-kind").select_option("orders")
    page.get_by_test_id("import-preset").select_option("order-lines")
    page.get_by_test_id("import-file").set_input_files(str(source))
    page.get_by_test_id("import-check").click()
    page.wait_for_url("**/collect/imports/*")
    assert page.get_by_test_id("import-status").inner_text() == "invalid"
    assert page.get_by_test_id("import-refused").inner_text() == "1"
    rejects = page.get_by_test_id("import-rejects").locator("tbody tr td")
    assert rejects.all_inner_texts() == ["3", "Quantity", "not a whole number"]
    _shot(page, "20-import-preview")
    page.get_by_test_id("import-skip").check()
    page.get_by_test_id("import-confirm").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("import-status").inner_text() == "done"
    assert page.get_by_test_id("import-valid").inner_text() == "2"
    _shot(page, "21-import-done")
    page.get_by_role("link", name="All imports").click()
    row = page.get_by_test_id("import-runs").locator("tbody tr").first
    assert "shop.csv" in row.inner_text() and "done" in row.inner_text()
    assert problems == []
    context.close()
