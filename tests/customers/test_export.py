"""CSV export of the customer list: filters, role-aware columns, formula injection."""

from __future__ import annotations

import csv
import io

from tests.conftest import bearer, login


def _make(client, token, n):
    for i in range(n):
        body = {
            "user_id": f"u{i}",
            "email": f"p{i}@example.com",
            "country": "DE" if i % 2 else "FR",
            "city": '=HYPERLINK("x")' if i == 1 else "Lyon",
            "signup_at": f"2024-01-{i + 1:02d}T00:00:00Z",
        }
        assert client.post("/api/customers", json=body, headers=bearer(token)).status_code == 201


def test_export_respects_filters_and_role(client, staff):
    _make(client, staff["agent"], 5)
    login(client, "agent")
    r = client.get("/customers/export.csv", params={"country": "DE"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["user_id"] for row in rows] == ["u1", "u3"]
    assert rows[0]["email"] == "p1@example.com"
    assert rows[0]["city"] == '\'=HYPERLINK("x")'  # never a live formula

    client.cookies.clear()
    login(client, "analyst")
    r = client.get("/customers/export.csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 5
    assert "email" not in rows[0] and "p1@example.com" not in r.text
