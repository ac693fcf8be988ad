"""Personal data and consent in tracked messages, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import text

from patronage import db
from patronage.customers import service as customers_service
from patronage.customers.consent import Purpose
from tests.collect.helpers import basic, mid, new_source, track
from tests.conftest import bearer, login

EMAIL = "Grace.Hopper@Example.org"
PHONE = "+1 202 555 0147"


def _rows(sql: str) -> list[tuple[object, ...]]:
    with db.transaction() as s:
        return [tuple(r) for r in s.execute(text(sql))]


def _json(value: object) -> dict:  # type: ignore[type-arg]
    return value if isinstance(value, dict) else json.loads(str(value))


def raw_database_text() -> str:
    """Every text and JSON value of the event, customer and identity tables, as stored."""
    out = []
    with db.transaction() as s:
        for table in ("events", "customers", "identities", "consents", "customer_merges", "orders"):
            for row in s.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out.append(bytes(value).decode("latin-1"))
                    else:
                        out.append(
                            json.dumps(value, default=str)
                            if isinstance(value, dict | list)
                            else str(value)
                        )
    return "\n".join(out)


def test_personal_traits_go_to_encrypted_fields_only(client, staff):
    h = basic(new_source())
    identify = {
        "type": "identify",
        "messageId": mid(),
        "userId": "u-grace",
        "traits": {
            "email": EMAIL,
            "phone": PHONE,
            "firstName": "Grace",
            "lastName": "Hopper",
            "birthday": "1906-12-09",
            "address": {
                "street": "1 Navy Yard",
                "city": "Arlington",
                "state": "VA",
                "postalCode": "22201",
                "country": "US",
            },
            "gender": "F",
            "plan": "admiral",
        },
        "context": {"traits": {"phone": PHONE}, "page": {"url": f"https://x.example/?e={EMAIL}"}},
    }
    order = track(
        "Order Completed",
        {
            "order_id": "o-g",
            "total": 5,
            "email": "grace.billing@example.org",
            "note": f"for {EMAIL}",
        },
        userId="u-grace",
    )
    r = client.post("/v1/batch", json={"batch": [identify, order]}, headers=h)
    assert r.status_code == 200, r.text
    items = client.get(
        "/api/customers", params={"user_id": "u-grace"}, headers=bearer(staff["agent"])
    )
    cid = items.json()["items"][0]["id"]
    c = client.get(f"/api/customers/{cid}", headers=bearer(staff["agent"])).json()["customer"]
    assert (
        c["email"],
        c["phone"],
        c["first_name"],
        c["last_name"],
        c["street"],
        c["birthday"],
    ) == (
        "grace.hopper@example.org",
        PHONE,
        "Grace",
        "Hopper",
        "1 Navy Yard",
        "1906-12-09",
    )
    assert (
        c["gender"],
        c["city"],
        c["region"],
        c["country"],
        c["postcode_prefix"],
        c["birth_year"],
    ) == (
        "female",
        "Arlington",
        "VA",
        "US",
        "222",
        1906,
    )
    assert c["traits"] == {"plan": "admiral"}
    props = {k: _json(v) for k, v in _rows("SELECT type, properties FROM events")}
    assert props["identify"] == {
        "email": "[pii]",
        "phone": "[pii]",
        "firstName": "[pii]",
        "lastName": "[pii]",
        "birthday": "[pii]",
        "address": {
            "street": "[pii]",
            "city": "Arlington",
            "state": "VA",
            "postalCode": "222",
            "country": "US",
        },
        "gender": "F",
        "plan": "admiral",
    }
    assert props["track"] == {"order_id": "o-g", "total": 5, "email": "[pii]", "note": "[pii]"}
    stored = raw_database_text().lower()
    for secret in (
        "grace.hopper@example.org",
        "grace.billing",
        "202 555 0147",
        "2025550147",
        "hopper",
        "navy yard",
        "1906-12-09",
    ):
        assert secret not in stored, secret
    # the order's email did not overwrite the identify's (properties only fill gaps)
    assert c["email"] == "grace.hopper@example.org"


def test_consent_from_category_preferences_with_history(client, staff):
    h = basic(new_source())

    def said(prefs: dict) -> dict:  # type: ignore[type-arg]
        return track("Viewed", userId="u-c", context={"consent": {"categoryPreferences": prefs}})

    first = said({"Analytics": True, "Functional": True, "Advertising": True, "C0005": True})
    again = said({"Analytics": True, "Functional": True, "Advertising": True})
    withdrawn = said({"analytics": False, "Marketing": False, "email": True})
    for msg in (first, again, withdrawn):
        assert client.post("/v1/track", json=msg, headers=h).status_code == 200
    cid = _rows("SELECT id FROM customers")[0][0]
    history = _rows(
        f"SELECT purpose, granted, source FROM consents WHERE customer_id = {cid} ORDER BY id"
    )
    # "Advertising": yes grants no message channel; "Marketing": no withdraws all three;
    # unknown categories (C0005) are ignored; repeated preferences record nothing new
    assert history == [
        ("analytics", True, "event:web shop"),
        ("personalisation", True, "event:web shop"),
        ("analytics", False, "event:web shop"),
        ("marketing_email", True, "event:web shop"),
        ("marketing_sms", False, "event:web shop"),
        ("marketing_push", False, "event:web shop"),
    ]
    with db.transaction() as s:
        assert customers_service.may_use(s, int(cid), Purpose.PERSONALISATION) is True
        assert customers_service.may_use(s, int(cid), Purpose.ANALYTICS) is False
        assert customers_service.may_use(s, int(cid), Purpose.MARKETING_EMAIL) is True
        assert customers_service.may_use(s, int(cid), Purpose.MARKETING_SMS) is False


def test_staff_change_consent_on_the_customer_page(client, staff):
    h = basic(new_source())
    assert (
        client.post("/v1/track", json=track("Viewed", userId="u-p"), headers=h).status_code == 200
    )
    cid = _rows("SELECT id FROM customers")[0][0]
    login(client, "agent")
    page = client.get(f"/customers/{cid}")
    assert 'action="/customers/' in page.text and "/consent" in page.text
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    r = client.post(
        f"/customers/{cid}/consent",
        data={"purpose": "marketing_email", "granted": "true", "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _rows(f"SELECT purpose, granted, source FROM consents WHERE customer_id = {cid}") == [
        ("marketing_email", True, "staff:agent")
    ]
    login(client, "analyst")
    denied = client.post(
        f"/customers/{cid}/consent",
        data={"purpose": "analytics", "granted": "true", "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert denied.status_code == 403
    assert _rows("SELECT count(*) FROM consents") == [(1,)]
