"""The Import page: upload, preview with the rejects, confirm, list, rejects download, and
the HTMX progress fragment."""

from __future__ import annotations

import re

from sqlalchemy import text

from patronage import db
from tests.conftest import login

LINES = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,=cmd|' /C calc'!A0,6,12/01/2010 08:26,2.55,17850,United Kingdom\n"
    "536366,22633,HAND WARMER,6,12/01/2010 08:28,1.85,17851,France\n"
    "536367,84879,BIRD,6,12/01/3000 08:34,1.69,13047,United Kingdom\n"
)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_upload_preview_confirm_and_list(client, staff):
    assert login(client, "analyst").status_code == 303
    page = client.get("/collect/imports")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text and "No imports yet." in page.text
    assert '<a href="/collect/imports"' in client.get("/").text  # in the navigation
    r = client.post(
        "/collect/imports",
        data={"csrf_token": _csrf(page.text), "kind": "orders", "preset": "order-lines"},
        files={"file": ("shop.csv", LINES.encode(), "text/csv")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    detail_url = r.headers["location"]
    detail = client.get(detail_url)
    assert 'data-testid="import-status">invalid<' in detail.text
    assert (
        "<td>3</td><td>InvoiceDate</td><td>date out of range (before 1900 or in the future)</td>"
        in detail.text
    )
    with db.transaction() as s:
        assert s.execute(text("SELECT count(*) FROM orders")).scalar_one() == 0
    rejects = client.get(detail_url + "/rejects.csv")
    assert rejects.text == (
        "row,column,reason\n3,InvoiceDate,date out of range (before 1900 or in the future)\n"
    )
    done = client.post(
        detail_url + "/run",
        data={"csrf_token": _csrf(detail.text), "skip_invalid": "true"},
        follow_redirects=True,
    )
    assert 'data-testid="import-status">done<' in done.text
    with db.transaction() as s:
        names = s.execute(text("SELECT name FROM products ORDER BY external_id")).scalars().all()
    assert names == ["HAND WARMER", "=cmd|' /C calc'!A0"]  # kept as text, as written
    listing = client.get("/collect/imports").text
    assert "shop.csv" in listing and ">done<" in listing and "rejects CSV" in listing
    # the progress fragment of a finished run asks the page to reload
    fragment = client.get(detail_url + "/progress")
    assert fragment.headers["HX-Refresh"] == "true"
    assert "hx-trigger" not in fragment.text


def test_a_bad_mapping_is_shown_on_the_form(client, staff):
    login(client, "admin")
    page = client.get("/collect/imports")
    r = client.post(
        "/collect/imports",
        data={"csrf_token": _csrf(page.text), "kind": "orders", "mapping": "[fields]\na = 5"},
        files={"file": ("x.csv", b"a\n1\n", "text/csv")},
    )
    assert r.status_code == 422
    assert "mapping: [fields] must map field names to strings" in r.text
    assert 'data-testid="import-error"' in r.text


def test_the_navigation_marks_import_alone_as_current(client, staff):
    login(client, "admin")
    html = client.get("/collect/imports").text
    assert re.findall(r'<a href="([^"]+)" class="active" aria-current="page">', html) == [
        "/collect/imports"
    ]
    html = client.get("/collect").text
    assert re.findall(r'<a href="([^"]+)" class="active" aria-current="page">', html) == [
        "/collect"
    ]
    html = client.get("/").text
    assert re.findall(r'<a href="([^"]+)" class="active" aria-current="page">', html) == ["/"]
