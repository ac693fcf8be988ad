"""Identity resolution through the tracking API: anonymous profiles, stitching, alias, email
merges (precedence), on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from patronage import config, db
from tests.collect.helpers import basic, mid, new_source, track
from tests.conftest import bearer


def _rows(sql: str) -> list[tuple[object, ...]]:
    with db.transaction() as s:
        return [tuple(r) for r in s.execute(text(sql))]


def _find(client, token: str, user_id: str) -> dict:  # type: ignore[no-untyped-def]
    items = client.get("/api/customers", params={"user_id": user_id}, headers=bearer(token))
    found = items.json()["items"]
    assert len(found) == 1, found
    return client.get(f"/api/customers/{found[0]['id']}", headers=bearer(token)).json()


def identify(user_id: str | None, traits: dict, anonymous_id: str | None = None) -> dict:
    msg = {"type": "identify", "messageId": mid(), "traits": traits}
    if user_id:
        msg["userId"] = user_id
    if anonymous_id:
        msg["anonymousId"] = anonymous_id
    return msg


def test_anonymous_history_is_stitched_on_identify(client, staff):
    h = basic(new_source())
    browsing = [
        track(
            "Product Viewed",
            {"product_id": "p1", "name": "Lamp", "price": 20},
            anonymousId="anon-1",
        ),
        track(
            "Product Added",
            {"product_id": "p1", "name": "Lamp", "price": 20},
            anonymousId="anon-1",
            timestamp="2026-11-20T10:00:01Z",
        ),
    ]
    assert client.post("/v1/batch", json={"batch": browsing}, headers=h).status_code == 200
    assert _rows("SELECT is_anonymous, user_id FROM customers") == [(True, None)]
    signup = identify("u-7", {"plan": "basic"}, anonymous_id="anon-1")
    later = track(
        "Order Completed",
        {"order_id": "o-7", "total": 20, "products": [{"product_id": "p1", "price": 20}]},
        userId="u-7",
        timestamp="2026-11-20T10:00:02Z",
    )
    assert client.post("/v1/batch", json={"batch": [signup, later]}, headers=h).status_code == 200
    profile = _find(client, staff["admin"], "u-7")
    assert profile["customer"]["is_anonymous"] is False
    # newest first: the identify (no timestamp: received now), then the tracked events
    assert [(e["type"], e["name"]) for e in profile["events"]] == [
        ("identify", None),
        ("track", "Order Completed"),
        ("track", "Product Added"),
        ("track", "Product Viewed"),
    ]
    assert len(profile["events"]) == 4
    assert [o["external_id"] for o in profile["orders"]] == ["o-7"]
    assert profile["merges"] == []  # the anonymous profile itself became the known one
    assert _rows("SELECT count(*) FROM customers") == [(1,)]


def test_known_user_on_a_new_device_merges_the_anonymous_profile(client, staff):
    h = basic(new_source())
    assert (
        client.post("/v1/identify", json=identify("u-1", {"plan": "gold"}), headers=h).status_code
        == 200
    )
    anon = [
        track("Viewed", anonymousId="phone-1"),
        {
            "type": "track",
            "messageId": mid(),
            "event": "Consented",
            "anonymousId": "phone-1",
            "context": {"consent": {"categoryPreferences": {"Analytics": True}}},
        },
    ]
    assert client.post("/v1/batch", json={"batch": anon}, headers=h).status_code == 200
    ids = _rows("SELECT id FROM customers ORDER BY id")
    assert len(ids) == 2
    login = identify("u-1", {"language": "fr"}, anonymous_id="phone-1")
    assert client.post("/v1/identify", json=login, headers=h).status_code == 200
    profile = _find(client, staff["admin"], "u-1")
    assert profile["customer"]["id"] == ids[0][0]
    assert profile["customer"]["language"] == "fr"
    assert len(profile["events"]) == 4
    assert [(m["from_customer_id"], m["reason"]) for m in profile["merges"]] == [
        (ids[1][0], "stitch")
    ]
    consents = {c["purpose"]: (c["granted"], c["source"]) for c in profile["consents"]}
    assert consents["analytics"] == (True, "event:web shop")
    assert _rows(f"SELECT merged_into_id FROM customers WHERE id = {ids[1][0]}") == [(ids[0][0],)]
    # the merge shows on the customer page
    from tests.conftest import login as sign_in

    sign_in(client, "admin")
    page = client.get(f"/customers/{ids[0][0]}")
    assert f"#{ids[1][0]} (stitch," in page.text


def test_alias_joins_two_ids(client, staff):
    h = basic(new_source())
    old = identify("old-id", {"plan": "silver"})
    assert client.post("/v1/identify", json=old, headers=h).status_code == 200
    assert client.post("/v1/track", json=track("A", userId="new-id"), headers=h).status_code == 200
    alias = {"type": "alias", "messageId": mid(), "previousId": "old-id", "userId": "new-id"}
    assert client.post("/v1/alias", json=alias, headers=h).status_code == 200
    profile = _find(client, staff["admin"], "new-id")
    assert sorted((i["kind"], i["value"]) for i in profile["identities"]) == [
        ("user_id", "new-id"),
        ("user_id", "old-id"),
    ]
    assert profile["customer"]["traits"] == {"plan": "silver"}
    assert [m["reason"] for m in profile["merges"]] == ["alias"]
    assert len(profile["events"]) == 3


def test_identify_with_a_known_email_merges_when_allowed(client, staff):
    h = basic(new_source())
    created = client.post(
        "/api/customers",
        json={"user_id": "crm-1", "email": "Jo@Example.com", "first_name": "Jo", "country": "DE"},
        headers=bearer(staff["agent"]),
    ).json()
    newer = identify(
        "web-1", {"email": "jo@example.com", "lastName": "Doe", "country": "FR", "vip": True}
    )
    assert client.post("/v1/identify", json=newer, headers=h).status_code == 200
    profile = _find(client, staff["agent"], "crm-1")
    c = profile["customer"]
    assert c["id"] == created["id"]
    # precedence: the identify's traits are written last (country FR); gaps filled
    assert (c["first_name"], c["last_name"], c["country"], c["traits"]) == (
        "Jo",
        "Doe",
        "FR",
        {"vip": True},
    )
    assert sorted(i["value"] for i in profile["identities"] if i["kind"] == "user_id") == [
        "crm-1",
        "web-1",
    ]
    assert [m["reason"] for m in profile["merges"]] == ["email"]
    listed = client.get("/api/customers", headers=bearer(staff["agent"])).json()["items"]
    assert [x["id"] for x in listed] == [created["id"]]


def test_email_merge_can_be_switched_off(client, staff, monkeypatch):
    monkeypatch.setenv("PATRONAGE_MERGE_ON_EMAIL", "false")
    config.get_settings.cache_clear()
    try:
        h = basic(new_source())
        for uid in ("a", "b"):
            msg = identify(uid, {"email": "same@example.com"})
            assert client.post("/v1/identify", json=msg, headers=h).status_code == 200
        assert _rows("SELECT count(*) FROM customers WHERE merged_into_id IS NULL") == [(2,)]
        assert _rows("SELECT count(*) FROM customer_merges") == [(0,)]
    finally:
        monkeypatch.delenv("PATRONAGE_MERGE_ON_EMAIL")
        config.get_settings.cache_clear()


def test_shared_device_does_not_merge_two_known_people(client, staff):
    h = basic(new_source())
    for uid in ("alice", "bob"):
        msg = identify(uid, {"plan": uid}, anonymous_id="family-tablet")
        assert client.post("/v1/identify", json=msg, headers=h).status_code == 200
    assert _rows("SELECT count(*) FROM customers WHERE merged_into_id IS NULL") == [(2,)]
    assert _find(client, staff["admin"], "bob")["customer"]["traits"] == {"plan": "bob"}
