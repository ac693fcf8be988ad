"""The customer pages of the web console, through a real sign-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

from tests.conftest import bearer, login

HOSTILE = "<script>alert(1)</script>"


def _customer(n: int, **extra: object) -> dict[str, object]:
    return {
        "user_id": f"u-{n:03d}",
        "email": f"person{n}@example.com",
        "first_name": f"First{n}",
        "last_name": "Tester",
        "country": "DE",
        "city": "Berlin",
        "signup_at": f"2024-01-{n:02d}T12:00:00Z",
        **extra,
    }


def _create(client, token: str, body: dict[str, object]) -> int:  # type: ignore[no-untyped-def]
    response = client.post("/api/customers", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _user_ids(page: str) -> list[str]:
    """User ids of the table rows, in display order."""
    return re.findall(r"<td>(u-\d{3})", page)


def _links(page: str) -> dict[str, dict[str, list[str]]]:
    """Link label -> its query parameters, for the sort headers and the pager."""
    found = {}
    for href, label in re.findall(r'<a href="\?([^"]*)">([^<]*)</a>', page):
        found[html.unescape(label).strip()] = parse_qs(
            urlsplit("?" + html.unescape(href)).query, keep_blank_values=True
        )
    return found


def _signed_in(client, role: str) -> None:  # type: ignore[no-untyped-def]
    response = login(client, role)
    assert response.status_code == 303, response.text


def _search(client, q: str, **fields: object):  # type: ignore[no-untyped-def]
    """Submit the search form (POST, with the page's CSRF token), as a browser does."""
    page = client.get("/customers")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    data = {"q": q, "csrf_token": token.group(1), **fields}
    return client.post("/customers", data=data, follow_redirects=False)


def test_filters_by_country_and_signup_period(client, staff):
    for n, country in ((1, "DE"), (2, "FR"), (3, "DE"), (4, "DE"), (5, "AT")):
        _create(client, staff["agent"], _customer(n, country=country))
    _signed_in(client, "agent")

    page = client.get("/customers")
    assert page.status_code == 200
    assert _user_ids(page.text) == ["u-001", "u-002", "u-003", "u-004", "u-005"]
    assert 'Customers <span class="muted">(5)</span>' in page.text

    de = client.get("/customers", params={"country": "de"})
    assert _user_ids(de.text) == ["u-001", "u-003", "u-004"]
    assert 'name="country" value="de"' in de.text  # the form keeps what was typed

    # signed up from Jan 2nd up to and including Jan 3rd: days 2 and 3
    period = client.get(
        "/customers", params={"signup_from": "2024-01-02", "signup_to": "2024-01-03"}
    )
    assert _user_ids(period.text) == ["u-002", "u-003"]

    both = client.get(
        "/customers",
        params={"country": "DE", "signup_from": "2024-01-02", "signup_to": "2024-01-31"},
    )
    assert _user_ids(both.text) == ["u-003", "u-004"]

    # empty form fields mean "no filter"
    blank = client.get("/customers", params={"q": "", "country": "", "signup_from": ""})
    assert len(_user_ids(blank.text)) == 5

    none = client.get("/customers", params={"country": "JP"})
    assert _user_ids(none.text) == []
    assert "No customer matches these filters." in none.text

    bad = client.get("/customers", params={"signup_from": "31.01.2024"})
    assert bad.status_code == 422
    assert "dates must look like 2024-01-31" in bad.text


def test_sorting_links(client, staff):
    for n, country in ((1, "FR"), (2, "AT"), (3, "DE")):
        _create(client, staff["agent"], _customer(n, country=country))
    _signed_in(client, "agent")

    page = client.get("/customers", params={"country": "", "size": 25})
    links = _links(page.text)
    # the active column shows its direction; its link reverses it and goes back to page 1
    assert links["ID ▲"]["sort"] == ["-id"]
    assert links["ID ▲"]["page"] == ["1"]
    assert links["ID ▲"]["size"] == ["25"]
    assert links["Country"]["sort"] == ["country"]
    assert links["Signed up"]["sort"] == ["signup_at"]

    by_country = client.get("/customers", params={"sort": "country"})
    assert _user_ids(by_country.text) == ["u-002", "u-003", "u-001"]
    assert _links(by_country.text)["Country ▲"]["sort"] == ["-country"]

    desc = client.get("/customers", params={"sort": "-country"})
    assert _user_ids(desc.text) == ["u-001", "u-003", "u-002"]
    assert _links(desc.text)["Country ▼"]["sort"] == ["country"]

    newest = client.get("/customers", params={"sort": "-signup_at"})
    assert _user_ids(newest.text) == ["u-003", "u-002", "u-001"]

    assert client.get("/customers", params={"sort": "email"}).status_code == 422


def test_pagination(client, staff):
    for n in range(1, 8):
        _create(client, staff["agent"], _customer(n))
    _signed_in(client, "agent")

    first = client.get("/customers", params={"size": 3})
    assert "Page 1 of 3" in first.text
    assert _user_ids(first.text) == ["u-001", "u-002", "u-003"]
    assert "← Previous" not in first.text

    second = client.get("/customers", params={"size": 3, "page": 2})
    assert "Page 2 of 3" in second.text
    assert _user_ids(second.text) == ["u-004", "u-005", "u-006"]
    links = _links(second.text)
    assert links["← Previous"]["page"] == ["1"]
    assert links["Next →"]["page"] == ["3"]
    assert links["Next →"]["size"] == ["3"]

    last = client.get("/customers", params={"size": 3, "page": 3})
    assert "Page 3 of 3" in last.text
    assert _user_ids(last.text) == ["u-007"]
    assert "Next →" not in last.text

    beyond = client.get("/customers", params={"size": 3, "page": 9})
    assert beyond.status_code == 200
    assert _user_ids(beyond.text) == []


def test_hostile_traits_are_escaped(client, staff):
    cid = _create(
        client,
        staff["agent"],
        _customer(1, city=HOSTILE, first_name=HOSTILE, traits={"note": HOSTILE, HOSTILE: "x"}),
    )
    _signed_in(client, "agent")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"

    listing = client.get("/customers")
    assert listing.status_code == 200
    assert HOSTILE not in listing.text
    assert listing.text.count(escaped) == 2  # city and first name

    profile = client.get(f"/customers/{cid}")
    assert profile.status_code == 200
    assert HOSTILE not in profile.text
    assert "<script>" not in profile.text.replace('<script src="/static/vendor/htmx.min.js"', "")
    # heading, first name... the city in the location line, the trait value and the trait key
    assert f"<dd>{escaped}, DE</dd>" in profile.text
    assert f"<dt>note</dt><dd>{escaped}</dd>" in profile.text
    assert f"<dt>{escaped}</dt><dd>x</dd>" in profile.text


def test_personal_data_hidden_for_analysts(client, staff):
    cid = _create(client, staff["agent"], _customer(1, phone="+49 30 1234567", street="Hof 1"))
    _signed_in(client, "analyst")

    listing = client.get("/customers")
    assert listing.status_code == 200
    assert _user_ids(listing.text) == ["u-001"]
    assert "<th>Email</th>" not in listing.text and "<th>Name</th>" not in listing.text
    assert "person1@example.com" not in listing.text and "First1" not in listing.text
    assert 'placeholder="#id or user id"' in listing.text

    profile = client.get(f"/customers/{cid}")
    assert profile.status_code == 200
    assert "hidden for your role" in profile.text
    assert f"<h1>Customer #{cid}" in profile.text
    for secret in ("person1@example.com", "First1", "Tester", "1234567", "Hof 1"):
        assert secret not in profile.text

    by_email = _search(client, "person1@example.com")
    assert by_email.status_code == 403
    assert "searching by email or phone needs a role that may see personal data" in by_email.text
    assert "person1@example.com" not in by_email.text.replace('value="person1@example.com"', "")


def test_agent_sees_personal_data(client, staff):
    cid = _create(client, staff["agent"], _customer(1))
    _signed_in(client, "agent")
    found = _search(client, "PERSON1@example.com")
    assert found.status_code == 200  # answered directly: no redirect to a URL with the email
    assert _user_ids(found.text) == ["u-001"]
    assert "<td>person1@example.com</td>" in found.text
    # the email never goes into a URL, not even in the page's own links
    assert "person1%40example.com" not in found.text and "q=PERSON1" not in found.text

    in_url = client.get("/customers", params={"q": "person1@example.com"})
    assert in_url.status_code == 400
    assert "never in the URL" in in_url.text

    by_country = _search(client, "", country="DE")  # nothing personal: a bookmarkable URL
    assert by_country.status_code == 303
    assert by_country.headers["location"] == "/customers?country=DE&sort=id&size=50&page=1"
    profile = client.get(f"/customers/{cid}")
    assert '<dd data-testid="email">person1@example.com</dd>' in profile.text
    assert "<h1>First1 Tester" in profile.text


def test_error_pages(client, staff):
    _signed_in(client, "admin")

    missing = client.get("/customers/999999")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "404 · Not found" in missing.text
    assert "no customer 999999" in missing.text

    bad_size = client.get("/customers", params={"size": -1})
    assert bad_size.status_code == 422
    assert "text/html" in bad_size.headers["content-type"]
    assert "422 · Invalid input" in bad_size.text
    assert "greater than or equal to 1" in bad_size.text

    not_a_number = client.get("/customers/abc")
    assert not_a_number.status_code == 422


def test_pages_need_sign_in(client, staff):
    response = client.get("/customers", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/customers"
