"""REST and console pages of segments: permissions, bad input, members, export, builder."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from patronage import db
from patronage.customers import service as customers_service
from patronage.customers.schemas import CustomerCreate
from tests.conftest import bearer, login

DE = {"type": "trait", "field": "country", "op": "eq", "value": "DE"}


@pytest.fixture
def people(database: str) -> list[int]:
    with db.transaction() as s:
        return [
            customers_service.create_customer(
                s,
                CustomerCreate(
                    email=f"p{i}@example.com", first_name=f"P{i}", country=country, city="Berlin"
                ),
            ).id
            for i, country in enumerate(["DE", "DE", "FR"])
        ]


def test_create_preview_members_export_delete(
    client: Any, staff: dict[str, str], people: list[int]
) -> None:
    marketer, agent, analyst = (bearer(staff[r]) for r in ("marketer", "agent", "analyst"))
    body = {"name": "Germany", "rule": DE}
    assert client.post("/api/segments", json=body, headers=agent).status_code == 403
    created = client.post("/api/segments", json=body, headers=marketer)
    assert created.status_code == 201, created.text
    seg = created.json()
    assert (seg["size"], seg["text"], seg["created_by"]) == (2, 'country is "DE"', "marketer")
    sid = seg["id"]

    preview = client.post(
        "/api/segments/preview", json={"rule": {**DE, "value": "FR"}}, headers=agent
    )
    assert preview.json()["count"] == 1 and preview.json()["sample"] == [people[2]]

    as_analyst = client.get(f"/api/segments/{sid}/members", headers=analyst).json()
    assert [m["customer_id"] for m in as_analyst["items"]] == people[:2]
    assert as_analyst["items"][0]["email"] is None and not as_analyst["items"][0]["pii_visible"]
    as_agent = client.get(f"/api/segments/{sid}/members", headers=agent).json()
    assert as_agent["items"][0]["email"] == "p0@example.com"

    plain = list(
        csv.reader(io.StringIO(client.get(f"/api/segments/{sid}/export.csv", headers=analyst).text))
    )
    assert plain[0] == ["customer_id", "entered_at", "country", "city", "language", "gender"]
    assert [row[0] for row in plain[1:]] == [str(p) for p in people[:2]]
    full = list(
        csv.reader(io.StringIO(client.get(f"/api/segments/{sid}/export.csv", headers=agent).text))
    )
    assert full[0][-3:] == ["email", "first_name", "last_name"] and full[1][-3] == "p0@example.com"

    history = client.get(f"/api/segments/{sid}/history", headers=analyst).json()
    assert [(d["entered"], d["left"]) for d in history["days"]] == [(2, 0)]
    assert (
        client.get(f"/api/segments/customers/{people[0]}", headers=analyst).json()[0]["name"]
        == "Germany"
    )

    renamed = client.patch(f"/api/segments/{sid}", json={"name": "Deutschland"}, headers=marketer)
    assert renamed.json()["name"] == "Deutschland"
    assert client.delete(f"/api/segments/{sid}", headers=agent).status_code == 403
    assert client.delete(f"/api/segments/{sid}", headers=marketer).status_code == 204
    assert client.get(f"/api/segments/{sid}", headers=marketer).status_code == 404


def test_bad_input_is_refused_precisely_and_nothing_is_saved(
    client: Any, staff: dict[str, str], people: list[int]
) -> None:
    marketer = bearer(staff["marketer"])
    bad = {
        "name": "Bad",
        "rule": {"type": "and", "conditions": [DE, {**DE, "op": "regex", "value": "(a+)+$"}]},
    }
    answer = client.post("/api/segments", json=bad, headers=marketer)
    assert answer.status_code == 422
    assert answer.json()["error"] == "validation_error"
    assert answer.json()["detail"][0]["path"] == "$.conditions[1].op"
    huge = {"name": "Huge", "rule": {"type": "or", "conditions": [DE] * 10_000}}
    assert client.post("/api/segments", json=huge, headers=marketer).json()["detail"] == [
        {"path": "$", "problem": "a rule has at most 200 conditions"}
    ]
    unknown = client.post(
        "/api/segments", json={"name": "X", "rule": DE, "colour": 1}, headers=marketer
    )
    assert unknown.status_code == 422
    no_persona = client.post(
        "/api/segments",
        json={"name": "P", "rule": {"type": "persona", "personas": [4]}},
        headers=marketer,
    )
    assert no_persona.status_code == 422
    assert no_persona.json()["detail"] == [
        {
            "path": "$.personas[0]",
            "problem": "persona 4 does not exist; there are no personas yet: "
            "run `patronage segments personas refresh`",
        }
    ]
    # injection attempts are values like any other: stored, compared, matched by nobody
    sneaky = "DE' OR '1'='1"
    made = client.post(
        "/api/segments",
        json={"name": "Robert'); DROP TABLE segments;--", "rule": {**DE, "value": sneaky}},
        headers=marketer,
    )
    assert made.status_code == 201 and made.json()["size"] == 0
    names = [
        s["name"] for s in client.get("/api/segments", headers=marketer).json() if not s["builtin"]
    ]
    assert names == ["Robert'); DROP TABLE segments;--"]


def test_the_list_creates_the_builtin_families(
    client: Any, staff: dict[str, str], people: list[int]
) -> None:
    listed = client.get("/api/segments", headers=bearer(staff["analyst"])).json()
    keys = {(s["family"], s["name"]) for s in listed}
    assert {
        ("demographic", "Age 25–34"),
        ("demographic", "Gender: female"),
        ("geographic", "Country: DE"),
        ("geographic", "Country: FR"),
        ("geographic", "Metropolitan"),
        ("behavioural", "RFM: Champions"),
        ("behavioural", "Cart abandoners"),
        ("behavioural", "Lapsed buyers"),
        ("behavioural", "Most valuable"),
        ("psychographic", "Loyalty: gold"),
    } <= keys
    again = client.get("/api/segments", headers=bearer(staff["analyst"])).json()
    assert len(again) == len(listed)  # created once
    done = client.post("/api/segments/evaluate", headers=bearer(staff["marketer"])).json()
    sizes = {e["name"]: e["size"] for e in done}
    assert (sizes["Country: DE"], sizes["Country: FR"], sizes["Metropolitan"]) == (2, 1, 3)


def test_console_builder_preview_and_pages(
    client: Any, staff: dict[str, str], people: list[int]
) -> None:
    login(client, "marketer")
    page = client.get("/segments")
    assert page.status_code == 200 and "New segment" in page.text
    assert client.get("/segments/new").status_code == 200
    form = {
        "name": "German Berliners",
        "combine": "and",
        "negate": ["", ""],
        "kind": ["trait", "trait"],
        "subject": ["country", "city"],
        "op": ["eq", "eq"],
        "value": ["DE", "Berlin"],
        "days": ["", ""],
    }
    headers = {"X-CSRF-Token": _csrf(client)}
    preview = client.post("/segments/preview", data=form, headers=headers)
    assert 'data-testid="seg-count">2<' in preview.text
    wrong = client.post("/segments/preview", data={**form, "op": ["eq", "gt"]}, headers=headers)
    assert "$.conditions[1]: &#39;gt&#39; compares numbers; city is text" in wrong.text
    created = client.post("/segments/new", data=form, headers=headers, follow_redirects=False)
    assert created.status_code == 303, created.text
    detail = client.get(created.headers["location"])
    assert "country is &#34;DE&#34; and city is &#34;Berlin&#34;" in detail.text
    assert "p0@example.com" not in detail.text  # a marketer sees no personal data
    # a persona row names personas by id or by name; unknown ones are refused precisely
    persona_row = {**form, "kind": ["trait", "persona"], "subject": ["country", "Nobody, 7"]}
    refused = client.post("/segments/preview", data=persona_row, headers=headers)
    assert (
        "$.conditions[1].personas[0]: a persona is named by its id (a whole number); "
        "got &#34;Nobody&#34;"
    ) in refused.text


def test_builder_persona_rows() -> None:
    from patronage.segments.builder import Row, condition

    names = {"Young City Shoppers": 5}
    row = Row(kind="persona", subject="2, young city shoppers ,")
    assert condition(row, names) == {"type": "persona", "personas": [2, 5]}
    assert condition(Row(kind="persona", subject="3", negate=True)) == {
        "type": "not",
        "condition": {"type": "persona", "personas": [3]},
    }


def _csrf(client: Any) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/segments/new").text)
    assert found
    return found.group(1)
