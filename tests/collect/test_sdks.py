"""The real tracking SDKs (Segment's and RudderStack's Python libraries) against a real
patronage server on 127.0.0.1, on SQLite and PostgreSQL; data read back through the REST API.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text

from patronage import db
from tests.collect.helpers import basic, mid, new_source, wait_processed
from tests.collect.server import running_server
from tests.collect.test_personal_data import raw_database_text
from tests.conftest import bearer

WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
# the production mode: land, acknowledge, process in the server's background thread
BACKGROUND = {"PATRONAGE_INGEST_PROCESSING": "background"}
LAMP = {
    "product_id": "sku-lamp",
    "sku": "L-1",
    "name": "Desk lamp",
    "price": 24.5,
    "category": "Lighting",
}


def _profile(url: str, token: str, user_id: str) -> dict:  # type: ignore[type-arg]
    found = httpx.get(f"{url}/api/customers", params={"user_id": user_id}, headers=bearer(token))
    assert found.status_code == 200, found.text
    (item,) = found.json()["items"]
    profile = httpx.get(f"{url}/api/customers/{item['id']}", headers=bearer(token))
    assert profile.status_code == 200
    return profile.json()


def _send_journey(client: object, prefix: str) -> None:
    """The same shopper journey through either SDK (their APIs are identical)."""
    c: object = client
    anon = f"{prefix}-anon"
    user = f"{prefix}-user"
    page_ctx = {
        "ip": "198.51.100.4",
        "userAgent": "Mozilla/5.0",
        "locale": "en-GB",
        "page": {"url": "https://shop.example/lamp", "referrer": "https://news.example/"},
        "campaign": {"source": "newsletter", "medium": "email", "name": "autumn"},
        "consent": {"categoryPreferences": {"Analytics": True, "Functional": False}},
    }
    c.page(
        anonymous_id=anon,
        name="Lamp",
        properties={"path": "/lamp"},
        context=dict(page_ctx),
        timestamp=WHEN,
    )  # type: ignore[attr-defined]
    c.track(
        anonymous_id=anon,
        event="Product Viewed",
        properties=dict(LAMP),
        context=dict(page_ctx),
        timestamp=WHEN,
    )  # type: ignore[attr-defined]
    c.identify(  # type: ignore[attr-defined]
        user_id=user,
        anonymous_id=anon,
        traits={
            "email": f"{prefix}.shopper@example.com",
            "phone": "+44 20 7946 0018",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "plan": "pro",
            "address": {"city": "London", "country": "GB", "postalCode": "SW1A 1AA"},
        },
        timestamp=WHEN,
    )
    c.track(  # type: ignore[attr-defined]
        user_id=user,
        event="Order Completed",
        properties={
            "order_id": f"{prefix}-o1",
            "total": 49.0,
            "currency": "GBP",
            "products": [{**LAMP, "quantity": 2}],
        },
        timestamp=WHEN,
        message_id=f"{prefix}-order-msg",
    )
    c.screen(user_id=user, name="Receipt", timestamp=WHEN)  # type: ignore[attr-defined]
    c.group(user_id=user, group_id="acme", traits={"name": "Acme", "employees": 12}, timestamp=WHEN)  # type: ignore[attr-defined]
    c.alias(previous_id=f"{prefix}-legacy", user_id=user, timestamp=WHEN)  # type: ignore[attr-defined]
    # a retry of the same order message: never a second order or event
    c.track(  # type: ignore[attr-defined]
        user_id=user,
        event="Order Completed",
        properties={
            "order_id": f"{prefix}-o1",
            "total": 49.0,
            "currency": "GBP",
            "products": [{**LAMP, "quantity": 2}],
        },
        timestamp=WHEN,
        message_id=f"{prefix}-order-msg",
    )


def _check(url: str, staff: dict[str, str], prefix: str) -> None:
    p = _profile(url, staff["agent"], f"{prefix}-user")
    c = p["customer"]
    assert (c["email"], c["phone"], c["first_name"], c["last_name"]) == (
        f"{prefix}.shopper@example.com",
        "+44 20 7946 0018",
        "Ada",
        "Lovelace",
    )
    assert (c["city"], c["country"], c["postcode_prefix"], c["traits"], c["is_anonymous"]) == (
        "London",
        "GB",
        "SW1",
        {"plan": "pro"},
        False,
    )
    assert sorted((i["kind"], i["value"]) for i in p["identities"]) == [
        ("anonymous_id", f"{prefix}-anon"),
        ("anonymous_id", f"{prefix}-legacy"),
        ("user_id", f"{prefix}-user"),
    ]
    assert sorted((e["type"], e["name"]) for e in p["events"]) == sorted(
        [
            ("page", "Lamp"),
            ("track", "Product Viewed"),
            ("identify", None),
            ("track", "Order Completed"),
            ("screen", "Receipt"),
            ("group", None),
            ("alias", None),
        ]
    )
    viewed = next(e for e in p["events"] if e["name"] == "Product Viewed")
    assert viewed["properties"] == LAMP
    assert all(e["timestamp"].startswith("2026-11-20T09:30") for e in p["events"])
    (order,) = p["orders"]
    assert (order["external_id"], order["status"], order["total"], order["currency"]) == (
        f"{prefix}-o1",
        "paid",
        "49.00",
        "GBP",
    )
    assert [(i["product_name"], i["quantity"], i["unit_price"]) for i in order["items"]] == [
        ("Desk lamp", 2, "24.50")
    ]
    assert [(pay["method"], pay["amount"]) for pay in order["payments"]] == [("unknown", "49.00")]
    consents = {s["purpose"]: s["granted"] for s in p["consents"]}
    assert (consents["analytics"], consents["personalisation"]) == (True, False)
    with db.transaction() as s:
        ctx = s.execute(
            text("SELECT context FROM events WHERE name = 'Product Viewed'")
        ).scalar_one()
    ctx = ctx if isinstance(ctx, dict) else __import__("json").loads(ctx)
    assert (ctx["ip"], ctx["page"]["url"], ctx["campaign"]["name"], ctx["library"]["name"]) == (
        "198.51.100.4",
        "https://shop.example/lamp",
        "autumn",
        "analytics-python",
    )


def test_segment_sdk(database, staff):
    from segment.analytics import Client

    key = new_source("segment web")
    with running_server(env=BACKGROUND) as url:
        errors: list[Exception] = []
        client = Client(key, host=url, sync_mode=True, on_error=lambda e, _: errors.append(e))
        _send_journey(client, "seg")
        assert errors == []
        # the queued (background) mode with gzip, flushed
        queued = Client(key, host=url, gzip=True, upload_interval=0.05)
        for n in range(150):
            queued.track(user_id="seg-bulk", event="Bulk", properties={"n": n}, timestamp=WHEN)
        queued.flush()
        queued.join()
        wait_processed()
        _check(url, staff, "seg")
        bulk = _profile(url, staff["admin"], "seg-bulk")
        assert (
            len(
                httpx.get(
                    f"{url}/api/customers/{bulk['customer']['id']}", headers=bearer(staff["admin"])
                ).json()["events"]
            )
            == 25
        )
    with db.transaction() as s:
        assert (
            s.execute(text("SELECT count(*) FROM events WHERE user_id = 'seg-bulk'")).scalar()
            == 150
        )
        assert s.execute(text("SELECT count(*) FROM orders")).scalar() == 1
    stored = raw_database_text().lower()
    assert "shopper@example.com" not in stored
    # the phone's digits, spaced or not (four digits alone also match timestamps and ids)
    assert "79460018" not in stored and "7946 0018" not in stored
    assert "lovelace" not in stored


def test_rudderstack_sdk(database, staff):
    from rudderstack.analytics import Client

    key = new_source("rudder app")
    with running_server(env=BACKGROUND) as url:
        client = Client(key, host=url, sync_mode=True, gzip=True)
        _send_journey(client, "rud")
        wait_processed()
        _check(url, staff, "rud")
    stored = raw_database_text().lower()
    assert "shopper@example.com" not in stored
    # the phone's digits, spaced or not (four digits alone also match timestamps and ids)
    assert "79460018" not in stored and "7946 0018" not in stored
    assert "lovelace" not in stored


@pytest.mark.slow
@pytest.mark.parametrize("processing", ["inline", "background"])
def test_parallel_requests_never_create_two_profiles(database, processing):
    """Many requests for the same new person at once (two server processes, 10 threads),
    processed inside the requests or by the two processes' background processors."""
    key = new_source()
    rounds, threads = 4, 10
    with running_server(workers=2, env={"PATRONAGE_INGEST_PROCESSING": processing}) as url:
        statuses: list[int] = []
        lock = threading.Lock()

        def send(person: int, barrier: threading.Barrier, n: int) -> None:
            with httpx.Client(base_url=url, headers=basic(key), timeout=60) as http:
                batch = [
                    {
                        "type": "identify" if n % 3 == 0 else "track",
                        "event": "Ping",
                        "messageId": mid(),
                        "userId": f"p-{person}",
                        "anonymousId": f"anon-{person}-{n % 2}",
                        "traits": {"n": n},
                    },
                    {
                        "type": "track",
                        "event": "Anon",
                        "messageId": mid(),
                        "anonymousId": f"anon-{person}-{n % 2}",
                    },
                ]
                barrier.wait()
                r = http.post("/v1/batch", json={"batch": batch})
                with lock:
                    statuses.append(r.status_code)

        for person in range(rounds):
            barrier = threading.Barrier(threads)
            workers = [
                threading.Thread(target=send, args=(person, barrier, n)) for n in range(threads)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        wait_processed()
    assert statuses == [200] * (rounds * threads)
    with db.transaction() as s:
        live = s.execute(
            text(
                "SELECT user_id, count(*) FROM customers WHERE merged_into_id IS NULL"
                " GROUP BY user_id ORDER BY user_id"
            )
        ).all()
        assert [tuple(r) for r in live] == [(f"p-{n}", 1) for n in range(rounds)]
        assert s.execute(text("SELECT count(*) FROM events")).scalar() == rounds * threads * 2
        orphans = s.execute(
            text(
                "SELECT count(*) FROM events e JOIN customers c ON c.id = e.customer_id "
                "WHERE c.merged_into_id IS NOT NULL"
            )
        ).scalar()
        assert orphans == 0
        ids = s.execute(
            text("SELECT kind, count(*) FROM identities GROUP BY kind ORDER BY kind")
        ).all()
        assert [tuple(r) for r in ids] == [("anonymous_id", rounds * 2), ("user_id", rounds)]
