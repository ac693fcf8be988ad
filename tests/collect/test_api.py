"""The tracking API through the app, on SQLite and PostgreSQL: storage, idempotency,
timestamps, context, batches with bad messages."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from patronage import db
from tests.collect.helpers import basic, gz, mid, new_source, track
from tests.conftest import bearer


def _rows(sql: str, **params: object) -> list[tuple[object, ...]]:
    with db.transaction() as s:
        return [tuple(r) for r in s.execute(text(sql), params)]


def _customer(client, token: str, user_id: str) -> dict:  # type: ignore[no-untyped-def]
    found = client.get("/api/customers", params={"user_id": user_id}, headers=bearer(token))
    assert found.status_code == 200, found.text
    items = found.json()["items"]
    assert len(items) == 1, items
    profile = client.get(f"/api/customers/{items[0]['id']}", headers=bearer(token))
    return profile.json()


def test_every_endpoint_stores_one_event(client, staff):
    key = new_source()
    h = basic(key)
    ts = "2026-11-20T10:00:00.000Z"
    calls = {
        "identify": {"userId": "u1", "traits": {"plan": "gold"}},
        "track": {"userId": "u1", "event": "Signed Up", "properties": {"ref": "x"}},
        "page": {"userId": "u1", "name": "Home", "category": "Docs", "properties": {"k": 1}},
        "screen": {"userId": "u1", "name": "Cart"},
        "group": {"userId": "u1", "groupId": "g1", "traits": {"employees": 5}},
        "alias": {"userId": "u1", "previousId": "anon-9"},
    }
    for endpoint, body in calls.items():
        r = client.post(
            f"/v1/{endpoint}", json={**body, "messageId": endpoint, "timestamp": ts}, headers=h
        )
        assert r.status_code == 200, (endpoint, r.text)
        assert r.json() == {"success": True}
    rows = _rows("SELECT message_id, type, name, properties FROM events ORDER BY message_id")
    got = {r[0]: (r[1], r[2], r[3] if isinstance(r[3], dict) else json.loads(r[3])) for r in rows}
    assert got == {
        "alias": ("alias", None, {"previousId": "anon-9"}),
        "group": ("group", None, {"groupId": "g1", "traits": {"employees": 5}}),
        "identify": ("identify", None, {"plan": "gold"}),
        "page": ("page", "Home", {"k": 1, "category": "Docs"}),
        "screen": ("screen", "Cart", {}),
        "track": ("track", "Signed Up", {"ref": "x"}),
    }
    profile = _customer(client, staff["admin"], "u1")
    assert profile["customer"]["traits"] == {"plan": "gold"}
    assert sorted((i["kind"], i["value"]) for i in profile["identities"]) == [
        ("anonymous_id", "anon-9"),
        ("user_id", "u1"),
    ]


def test_write_key_in_body_and_wrong_keys(client):
    key = new_source()
    msg = track("Clicked", userId="u1")
    ok = client.post("/v1/track", json={**msg, "writeKey": key})
    assert ok.status_code == 200
    batch = client.post("/v1/batch", json={"batch": [track("X", userId="u1")], "writeKey": key})
    assert batch.status_code == 200
    for headers, body in (
        ({}, track("X", userId="u1")),
        (basic("wk_nope"), track("X", userId="u1")),
        ({"Authorization": "Bearer " + key}, track("X", userId="u1")),
        ({"Authorization": "Basic !!!"}, track("X", userId="u1")),
        ({}, {**track("X", userId="u1"), "writeKey": "wk_wrong"}),
    ):
        r = client.post("/v1/track", json=body, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "not_authenticated"
    assert _rows("SELECT count(*) FROM events") == [(2,)]


def test_revoked_source_is_refused(client, staff):
    key = new_source("app")
    from patronage.auth import service as auth_service

    with db.transaction() as s:
        source = auth_service.source_by_name(s, "app")
        assert source is not None
        auth_service.revoke_source(s, source.id)
    r = client.post("/v1/track", json=track("X", userId="u1"), headers=basic(key))
    assert r.status_code == 401
    assert r.json() == {
        "error": "not_authenticated",
        "detail": "the write key is unknown or revoked",
    }


def test_gzip_bodies_and_truncated_stream(client):
    h = {**basic(new_source()), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    body = {"batch": [track("A", userId="u1"), track("B", userId="u1")]}
    r = client.post("/v1/batch", content=gz(body), headers=h)
    assert r.status_code == 200, r.text
    cut = client.post("/v1/batch", content=gz(body)[:-12], headers=h)
    assert cut.status_code == 400
    assert cut.json() == {"error": "bad_request", "detail": "the gzip body is truncated"}
    garbage = client.post("/v1/batch", content=b"\x1f\x8bnot gzip at all", headers=h)
    assert garbage.status_code == 400
    assert _rows("SELECT count(*) FROM events") == [(2,)]


def test_decompression_bomb_is_refused(client):
    h = {**basic(new_source()), "Content-Encoding": "gzip"}
    bomb = gzip.compress(b'{"batch": [' + b" " * 20_000_000 + b"]}")
    assert len(bomb) < 512_000
    r = client.post("/v1/batch", content=bomb, headers=h)
    assert r.status_code == 413
    assert r.json() == {
        "error": "payload_too_large",
        "detail": "decompressed body over 512000 bytes",
    }


def test_size_limits(client):
    h = basic(new_source())
    big = track("Big", {"blob": "x" * 40_000}, userId="u1")
    single = client.post("/v1/track", json=big, headers=h)
    assert single.status_code == 413
    assert single.json()["error"] == "payload_too_large"
    small = track("Small", userId="u1")
    batch = client.post("/v1/batch", json={"batch": [big, small]}, headers=h)
    assert batch.status_code == 200
    assert batch.json() == {
        "success": True,
        "rejected": [{"index": 0, "messageId": big["messageId"], "reason": "message over 32 KB"}],
    }
    huge = {"batch": [track("B", {"blob": "y" * 30_000}, userId="u1") for _ in range(20)]}
    too_big = client.post("/v1/batch", json=huge, headers=h)
    assert too_big.status_code == 413
    assert _rows("SELECT message_id FROM events") == [(small["messageId"],)]


def test_batch_partial_rejection_contract(client):
    h = basic(new_source())
    good = [track("Good", userId="u1"), track("Also good", anonymousId="a1")]
    bad = [
        {"type": "track", "messageId": "no-ids", "event": "X"},
        {"type": "teleport", "messageId": "weird", "userId": "u1"},
        {
            **track("Future", userId="u1"),
            "messageId": "future",
            "timestamp": "3000-01-01T00:00:00Z",
        },
        {"type": "track", "messageId": "no-event", "userId": "u1"},
        "not an object",
    ]
    body = {"batch": [good[0], *bad, good[1]]}
    r = client.post("/v1/batch", json=body, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "rejected": [
            {"index": 1, "messageId": "no-ids", "reason": "userId or anonymousId is required"},
            {
                "index": 2,
                "messageId": "weird",
                "reason": "unknown message type 'teleport' (expected one of identify, track, "
                "page, screen, group, alias)",
            },
            {
                "index": 3,
                "messageId": "future",
                "reason": "timestamp out of range (after 2000-01-01, at most a day ahead)",
            },
            {"index": 4, "messageId": "no-event", "reason": "event: Field required"},
            {"index": 5, "messageId": None, "reason": "a message must be a JSON object"},
        ],
    }
    stored = sorted(r[0] for r in _rows("SELECT message_id FROM events"))
    assert stored == sorted(m["messageId"] for m in good)
    # a batch where nothing is acceptable is a 400 that lists every reason
    r = client.post("/v1/batch", json={"batch": bad[:2]}, headers=h)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_message"
    assert [d["index"] for d in r.json()["detail"]] == [0, 1]


def test_retries_never_duplicate(client):
    h = basic(new_source())
    batch = {"batch": [track("Order Completed", {"order_id": "o-1", "total": 10}, userId="u1")]}
    batch["batch"].append(track("Viewed", userId="u1"))
    for _ in range(3):
        r = client.post("/v1/batch", json=batch, headers=h)
        assert r.status_code == 200
    dup = {"batch": [batch["batch"][0], batch["batch"][0]]}
    assert client.post("/v1/batch", json=dup, headers=h).status_code == 200
    assert _rows("SELECT count(*) FROM events") == [(2,)]
    assert _rows("SELECT count(*) FROM orders") == [(1,)]
    assert _rows("SELECT count(*) FROM payments") == [(1,)]
    assert _rows("SELECT count(*) FROM customers") == [(1,)]


def test_message_without_id_gets_a_stable_one(client):
    h = basic(new_source())
    msg = {"type": "track", "event": "X", "userId": "u1", "timestamp": "2026-11-20T10:00:00Z"}
    for sent in ("2026-11-20T10:00:01Z", "2026-11-20T10:00:05Z"):
        assert client.post("/v1/track", json={**msg, "sentAt": sent}, headers=h).status_code == 200
    rows = _rows("SELECT message_id FROM events")
    assert len(rows) == 1 and str(rows[0][0]).startswith("sha256:")


def test_clock_skew_correction_and_timestamps(client):
    h = basic(new_source())
    now = datetime.now(UTC)
    device_now = now - timedelta(hours=3)  # the device clock is three hours behind
    happened = device_now - timedelta(minutes=10)
    msg = track("Skewed", userId="u1")
    msg["timestamp"] = happened.isoformat()
    msg["sentAt"] = device_now.isoformat()
    assert client.post("/v1/track", json=msg, headers=h).status_code == 200
    ((ts, sent, received),) = _rows("SELECT timestamp, sent_at, received_at FROM events")
    as_dt = [
        v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
        for v in (ts, sent, received)
    ]
    ts_, sent_, received_ = (v.replace(tzinfo=UTC) if v.tzinfo is None else v for v in as_dt)
    assert abs((received_ - ts_) - timedelta(minutes=10)) < timedelta(seconds=1)
    assert abs(sent_ - device_now) < timedelta(milliseconds=1)
    assert abs(received_ - now) < timedelta(seconds=30)
    # no timestamp at all: the time it was received
    assert (
        client.post("/v1/track", json={"event": "Now", "userId": "u1"}, headers=h).status_code
        == 200
    )


def test_context_is_kept_with_analytics_consent_and_stripped_without(client):
    h = basic(new_source())
    context = {
        "ip": "203.0.113.7",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        "locale": "de-DE",
        "timezone": "Europe/Berlin",
        "page": {
            "url": "https://shop.example/p/1?q=x",
            "referrer": "https://search.example/",
            "search": "?q=x",
        },
        "campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
        "device": {"type": "mobile", "advertisingId": "ad-123"},
        "app": {"name": "shop", "version": "1.2"},
        "library": {"name": "analytics.js", "version": "5.0"},
    }
    without = track("Viewed", userId="u-no", context=context)
    consented = track(
        "Viewed",
        userId="u-yes",
        context={**context, "consent": {"categoryPreferences": {"Analytics": True}}},
    )
    r = client.post("/v1/batch", json={"batch": [without, consented]}, headers=h)
    assert r.status_code == 200
    rows = dict(_rows("SELECT user_id, context FROM events"))
    ctx = {k: (v if isinstance(v, dict) else json.loads(str(v))) for k, v in rows.items()}
    assert ctx["u-no"] == {
        "locale": "de-DE",
        "timezone": "Europe/Berlin",
        "campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
        "device": {"type": "mobile"},
        "app": {"name": "shop", "version": "1.2"},
        "library": {"name": "analytics.js", "version": "5.0"},
    }
    assert ctx["u-yes"] == {**context, "consent": {"categoryPreferences": {"Analytics": True}}}


def test_drop_events_without_consent_by_setting(client, monkeypatch):
    from patronage import config

    monkeypatch.setenv("PATRONAGE_EVENTS_WITHOUT_CONSENT", "drop")
    config.get_settings.cache_clear()
    try:
        h = basic(new_source())
        batch = [
            track("Viewed", userId="u-no"),
            {"type": "identify", "userId": "u-no", "traits": {"plan": "x"}, "messageId": mid()},
            track(
                "Viewed",
                userId="u-yes",
                context={"consent": {"categoryPreferences": {"analytics": True}}},
            ),
        ]
        assert client.post("/v1/batch", json={"batch": batch}, headers=h).status_code == 200
        assert sorted(_rows("SELECT user_id, type FROM events")) == [
            ("u-no", "identify"),
            ("u-yes", "track"),
        ]
    finally:
        monkeypatch.delenv("PATRONAGE_EVENTS_WITHOUT_CONSENT")
        config.get_settings.cache_clear()


def test_openapi_documents_the_tracking_api(client):
    spec = client.get("/openapi.json").json()
    for endpoint in ("identify", "track", "page", "screen", "group", "alias", "batch"):
        op = spec["paths"][f"/v1/{endpoint}"]["post"]
        assert "requestBody" in op
        assert {"400", "401", "413"} <= set(op["responses"])
