"""Tracking a userId whose customer exists without an identity row (created by an import, the
REST API, or before identities existed): the message lands on that customer, no 500, no
duplicate profile. New profiles record the active key version."""

from __future__ import annotations

from sqlalchemy import text

from patronage import config, db
from tests.collect.helpers import basic, mid, new_source, track
from tests.conftest import bearer


def _rows(sql: str) -> list[tuple[object, ...]]:
    with db.transaction() as s:
        return [tuple(r) for r in s.execute(text(sql))]


def _customer_without_identity(client, token: str, user_id: str) -> int:  # type: ignore[no-untyped-def]
    made = client.post("/api/customers", json={"user_id": user_id}, headers=bearer(token))
    assert made.status_code == 201, made.text
    with db.transaction() as s:
        s.execute(text("DELETE FROM identities WHERE kind = 'user_id'"))
    return int(made.json()["id"])


def test_track_for_a_customer_without_identity_row(client, staff):
    cid = _customer_without_identity(client, staff["admin"], "u-known")
    h = basic(new_source())
    r = client.post("/v1/track", json=track("Signed In", userId="u-known"), headers=h)
    assert r.status_code == 200, r.text
    assert _rows("SELECT id, user_id FROM customers") == [(cid, "u-known")]
    assert _rows("SELECT customer_id, kind, value FROM identities") == [(cid, "user_id", "u-known")]
    assert _rows("SELECT customer_id, name FROM events") == [(cid, "Signed In")]


def test_batch_and_identify_with_anonymous_id_for_such_a_customer(client, staff):
    cid = _customer_without_identity(client, staff["admin"], "u-9")
    h = basic(new_source())
    batch = [
        track("Viewed", userId="u-9", anonymousId="a-9"),
        {"type": "identify", "messageId": mid(), "userId": "u-9", "traits": {"plan": "gold"}},
    ]
    r = client.post("/v1/batch", json={"batch": batch}, headers=h)
    assert r.status_code == 200, r.text
    assert _rows("SELECT id FROM customers") == [(cid,)]
    assert _rows("SELECT customer_id, kind, value FROM identities ORDER BY kind") == [
        (cid, "anonymous_id", "a-9"),
        (cid, "user_id", "u-9"),
    ]
    assert _rows(f"SELECT count(*) FROM events WHERE customer_id = {cid}") == [(2,)]


def test_identify_alone_for_such_a_customer(client, staff):
    cid = _customer_without_identity(client, staff["admin"], "u-5")
    h = basic(new_source())
    msg = {"type": "identify", "messageId": mid(), "userId": "u-5", "traits": {"plan": "x"}}
    assert client.post("/v1/identify", json=msg, headers=h).status_code == 200
    assert _rows("SELECT id FROM customers") == [(cid,)]


def test_profiles_created_by_tracking_use_the_active_key_version(client):
    keyring = config.get_cipher().keyring
    rotated = config.Keyring({**keyring.keys, 7: config.new_key()}, 7, keyring.blind_index_key)
    config.reset_cipher(config.FieldCipher(rotated))
    try:
        h = basic(new_source())
        batch = [track("Viewed", anonymousId="a-1"), track("Viewed", userId="u-1")]
        assert client.post("/v1/batch", json={"batch": batch}, headers=h).status_code == 200
        # one message at a time goes through _ensure, a batch of new people through create_new
        alone = track("Viewed", userId="u-2", anonymousId="a-1")
        assert client.post("/v1/track", json=alone, headers=h).status_code == 200
        assert _rows("SELECT DISTINCT key_version FROM customers") == [(7,)]
    finally:
        config.reset_cipher()
