"""Customer 360 through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.conftest import bearer

ALICE = {
    "user_id": "u-alice",
    "email": "Alice.Example@Example.com",
    "phone": "+49 30 1234 5678",
    "first_name": "Alice",
    "last_name": "Liddell",
    "street": "Rabbit Hole 1",
    "birthday": "1990-05-04",
    "gender": "female",
    "language": "de",
    "country": "DE",
    "city": "Berlin",
    "postcode": "10115",
    "signup_at": "2024-03-01T10:00:00Z",
}


def test_create_find_and_read_profile(client, staff):
    created = client.post("/api/customers", json=ALICE, headers=bearer(staff["agent"]))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == "alice.example@example.com"
    assert body["postcode_prefix"] == "101"
    assert body["birth_year"] == 1990
    cid = body["id"]

    found = client.post(
        "/api/customers/search",
        json={"email": " ALICE.example@example.COM "},
        headers=bearer(staff["agent"]),
    )
    assert found.status_code == 200
    assert [c["id"] for c in found.json()["items"]] == [cid]
    by_phone = client.post(
        "/api/customers/search", json={"q": "+4930 12345678"}, headers=bearer(staff["agent"])
    )
    assert [c["id"] for c in by_phone.json()["items"]] == [cid]
    by_user = client.get("/api/customers", params={"q": "u-alice"}, headers=bearer(staff["agent"]))
    assert [c["id"] for c in by_user.json()["items"]] == [cid]

    # emails and phones never travel in URLs (logs, proxies, browser history)
    for q in (ALICE["email"], "+4930 12345678"):
        in_url = client.get("/api/customers", params={"q": q}, headers=bearer(staff["agent"]))
        assert in_url.status_code == 400
        assert in_url.json()["error"] == "personal_data_in_url"
    unknown = client.get(
        "/api/customers", params={"email": ALICE["email"]}, headers=bearer(staff["agent"])
    )
    assert unknown.status_code == 200  # not a filter of this route: ignored, like any other

    profile = client.get(f"/api/customers/{cid}", headers=bearer(staff["agent"])).json()
    assert profile["customer"]["first_name"] == "Alice"
    assert profile["orders"] == [] and profile["orders_total"] == 0
    assert {m["kind"]: (m["month"], m["day"]) for m in profile["milestones"]} == {
        "birthday": (5, 4)
    }
    assert [i["kind"] for i in profile["identities"]] == ["user_id"]
    consents = {c["purpose"]: c["granted"] for c in profile["consents"]}
    assert consents == {
        "necessary": True,
        "analytics": False,
        "personalisation": False,
        "marketing_email": False,
        "marketing_sms": False,
        "marketing_push": False,
    }


def test_analyst_sees_no_personal_data(client, staff):
    cid = client.post("/api/customers", json=ALICE, headers=bearer(staff["agent"])).json()["id"]
    profile = client.get(f"/api/customers/{cid}", headers=bearer(staff["analyst"])).json()
    assert profile["customer"]["pii_visible"] is False
    assert profile["customer"]["email"] is None and profile["customer"]["first_name"] is None
    assert "alice" not in str(profile).lower().replace("u-alice", "")
    denied = client.post(
        "/api/customers/search", json={"email": ALICE["email"]}, headers=bearer(staff["analyst"])
    )
    assert denied.status_code == 403
    assert denied.json()["error"] == "forbidden"


def test_bad_input(client, staff):
    h = bearer(staff["admin"])
    assert client.get("/api/customers/999999", headers=h).json() == {
        "error": "not_found",
        "detail": "no customer 999999",
    }
    r = client.get("/api/customers", params={"size": -1}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"
    r = client.post("/api/customers", json={**ALICE, "email": "not-an-email"}, headers=h)
    assert r.status_code == 422
    assert "not-an-email" not in r.text  # submitted values are never echoed
    r = client.post("/api/customers", json=ALICE, headers=h)
    assert r.status_code == 201
    r = client.post("/api/customers", json=ALICE, headers=h)
    assert r.status_code == 409 and r.json()["error"] == "conflict"


def test_nul_characters_are_refused_on_every_backend(client, staff):
    h = bearer(staff["agent"])
    for body in (
        {"user_id": "u\x00x"},
        {"city": "Be\x00rlin"},
        {"traits": {"note": "a\x00b"}},
        {"traits": {"k\x00": 1}},
    ):
        r = client.post("/api/customers", json=body, headers=h)
        assert r.status_code == 422, body
        assert r.json()["detail"][0]["msg"] == "Value error, text must not contain NUL characters"


def test_new_customers_record_the_active_key_version(client, staff, data_dir):
    from patronage import config, db
    from patronage.customers.models import Customer

    keyring = config.get_cipher().keyring
    rotated = config.Keyring({**keyring.keys, 7: config.new_key()}, 7, keyring.blind_index_key)
    config.reset_cipher(config.FieldCipher(rotated))
    try:
        cid = client.post("/api/customers", json=ALICE, headers=bearer(staff["agent"])).json()["id"]
        with db.transaction() as s:
            assert s.get(Customer, cid).key_version == 7
    finally:
        config.reset_cipher()
