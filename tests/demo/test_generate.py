"""The demo shop: exact and deterministic (the same on SQLite and PostgreSQL), realistic
enough for analytics to find signal, personal data sealed at rest, indexes and keys intact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url

from patronage import db
from patronage.auth import service as auth_service
from patronage.config import get_cipher
from patronage.customers import service as customers_service
from patronage.demo import service
from patronage.demo.generator import TABLES, Plan
from patronage.demo.loadmode import tables
from patronage.errors import Conflict, ValidationFailed
from tests.demo.conftest import SMALL, checksums, counts

# computed once from the generator; any change to it shows up here
SMALL_COUNTS = {
    "categories": 26,
    "sellers": 30,
    "products": 200,
    "customers": 300,
    "identities": 481,
    "consents": 1205,
    "milestones": 570,
    "orders": 1464,
    "order_items": 2716,
    "payments": 1522,
    "shipments": 1956,
    "returns": 217,
    "refunds": 248,
    "reviews": 257,
    "tickets": 101,
    "events": 2793,
}
# every row as the application reads it (decrypted, parsed), blind indexes aside
SMALL_CHECKSUMS = {
    "categories": "8a5eefc7df668fc2",
    "sellers": "1c79cd1f8988e751",
    "products": "c98d544e3fd0a130",
    "customers": "96cbed95035b275e",
    "identities": "254245e4baa41fcb",
    "consents": "bcdae39ab5dc6675",
    "milestones": "21d2b199360fb515",
    "orders": "352ec887b330d5e8",
    "order_items": "cf7a979462f15d2b",
    "payments": "fa6989e0ed40ac96",
    "shipments": "f6d44450a9f41d77",
    "returns": "2f6770ad92244469",
    "refunds": "1dccd4491e48f5e7",
    "reviews": "ec77de7baaf20897",
    "tickets": "468ec6d98d180cf3",
    "events": "b1e4ee3aae485a25",
}


def scalar(sql: str) -> object:
    with db.transaction() as session:
        return session.execute(text(sql)).scalar()


def rows(sql: str) -> list[tuple[object, ...]]:
    with db.transaction() as session:
        return [tuple(r) for r in session.execute(text(sql))]


def test_exact_counts(shop: service.DemoResult) -> None:
    assert shop.generated is True
    assert shop.customers == 300
    assert counts() == SMALL_COUNTS
    assert shop.rows == SMALL_COUNTS


def test_same_seed_same_rows_ids_and_all_on_every_backend(shop: service.DemoResult) -> None:
    assert checksums() == SMALL_CHECKSUMS  # the same pinned digests on SQLite and PostgreSQL
    again = service.run(SMALL, reset=True)
    assert again.rows == SMALL_COUNTS
    assert checksums() == SMALL_CHECKSUMS


def test_worker_processes_write_the_same_shop(shop: service.DemoResult) -> None:
    service.run(SMALL, reset=True, workers=1)
    assert checksums() == SMALL_CHECKSUMS


def test_another_seed_another_shop(shop: service.DemoResult) -> None:
    service.run(Plan(customers=300, seed=8), reset=True)
    other = checksums()
    # the category tree is fixed reference data; everything drawn from the seed differs
    changed = {name for name in TABLES if other[name] != SMALL_CHECKSUMS[name]}
    assert changed == set(TABLES) - {"categories"}
    assert counts()["customers"] == 300


def test_ids_follow_from_the_customer_and_sequences_continue(shop: service.DemoResult) -> None:
    assert rows("SELECT MIN(id), MAX(id) FROM customers") == [(1, 300)]
    assert rows("SELECT MIN(id), MAX(id) FROM products") == [(1, 200)]
    # order = customer * 1000 + number, line = order * 8 + position, event = customer * 1e5 + rank
    assert rows("SELECT id, customer_id, external_id FROM orders ORDER BY id LIMIT 2") == [
        (1000, 1, "0000001-001"),
        (2000, 2, "0000002-001"),
    ]
    assert rows("SELECT MIN(id), MAX(id) FROM order_items") == [(8000, 2400018)]
    assert scalar("SELECT COUNT(*) FROM order_items WHERE order_id != id / 8") == 0
    assert rows("SELECT MIN(id), MAX(id) FROM events") == [(200000, 30000031)]
    assert scalar("SELECT message_id FROM events WHERE id = 30000031") == "demo-00000300-00031"
    with db.transaction() as session:
        session.execute(
            text(
                "INSERT INTO sellers (external_id, name, status, joined_at) "
                "VALUES ('new', 'New Seller', 'active', CURRENT_TIMESTAMP)"
            )
        )
        session.execute(
            text(
                "INSERT INTO orders (external_id, customer_id, status, currency, subtotal_minor, "
                "discount_minor, shipping_minor, tax_minor, total_minor, placed_at, updated_at) "
                "VALUES ('new', 1, 'placed', 'EUR', 0, 0, 0, 0, 0, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)"
            )
        )
    assert scalar("SELECT id FROM sellers WHERE external_id = 'new'") == 31
    assert scalar("SELECT id FROM orders WHERE external_id = 'new'") == 300003


def test_the_shop_looks_like_a_shop(shop: service.DemoResult) -> None:
    month = (
        "strftime('%Y-%m', placed_at)"
        if _sqlite()
        else "to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM')"
    )
    by_month = dict(
        rows(
            f"SELECT {month}, SUM(total_minor) FROM orders "
            f"WHERE status != 'cancelled' GROUP BY {month}"
        )
    )
    assert by_month["2025-12"] > 2 * by_month["2025-06"]  # Christmas
    assert min(by_month) == "2023-07" and max(by_month) == "2026-06"  # three years to 2026-06-30

    weekday = (
        "strftime('%w', placed_at)"
        if _sqlite()
        else "EXTRACT(DOW FROM placed_at AT TIME ZONE 'UTC')"
    )
    weekend = rows(f"SELECT CAST({weekday} AS INTEGER) IN (0, 6), COUNT(*) FROM orders GROUP BY 1")
    share = dict(weekend)[True] / (dict(weekend)[True] + dict(weekend)[False])
    assert share > 0.33  # two days of seven would be 0.286

    per_customer = rows("SELECT COUNT(*) FROM orders GROUP BY customer_id")
    orders = sorted(n for (n,) in per_customer)
    assert len(orders) == 243  # a fifth never buy
    assert sum(1 for n in orders if n == 1) == 60
    assert sum(1 for n in orders if n >= 5) == 90

    assert scalar("SELECT COUNT(*) FROM products WHERE stock = 0") == 14
    assert scalar("SELECT COUNT(*) FROM orders WHERE status = 'cancelled'") == 47  # ~3%
    assert scalar("SELECT COUNT(*) FROM orders WHERE coupon IS NOT NULL") == 214


def test_bad_sellers_ship_late(shop: service.DemoResult) -> None:
    """Orders fulfilled by one seller only: the 'warned' (bad) sellers miss their promise."""
    found = rows(
        """
        SELECT COALESCE(MIN(s.status), 'shop') AS who, sh.delivered_at > sh.promised_at AS late
        FROM shipments sh
        JOIN order_items oi ON oi.order_id = sh.order_id
        JOIN products p ON p.id = oi.product_id
        LEFT JOIN sellers s ON s.id = p.seller_id
        WHERE sh.status = 'delivered'
          AND sh.order_id IN (SELECT order_id FROM shipments GROUP BY order_id HAVING COUNT(*) = 1)
        GROUP BY sh.id, sh.delivered_at, sh.promised_at
        HAVING COUNT(DISTINCT COALESCE(p.seller_id, 0)) = 1
        """
    )
    late: dict[str, list[int]] = {}
    for who, is_late in found:
        late.setdefault(str(who), []).append(int(bool(is_late)))
    rate = {who: sum(v) / len(v) for who, v in late.items()}
    assert rate["warned"] > 0.3
    assert rate["active"] < 0.06
    assert rate["shop"] < 0.06


def test_returns_reviews_and_tickets_follow_quality(shop: service.DemoResult) -> None:
    ratings = dict(
        rows(
            "SELECT s.status, AVG(r.rating) FROM reviews r JOIN products p ON p.id = r.product_id "
            "JOIN sellers s ON s.id = p.seller_id GROUP BY s.status"
        )
    )
    assert float(ratings["warned"]) < float(ratings["active"]) - 0.5  # type: ignore[arg-type]
    topics = dict(rows("SELECT topic, COUNT(*) FROM tickets GROUP BY topic"))
    assert set(topics) == {"account", "delivery", "payment", "product", "return"}
    lines = SMALL_COUNTS["order_items"]
    assert 0.06 < SMALL_COUNTS["returns"] / lines < 0.1
    assert 0.08 < SMALL_COUNTS["reviews"] / lines < 0.12


def test_events_tell_sessions(shop: service.DemoResult) -> None:
    names = dict(rows("SELECT name, COUNT(*) FROM events GROUP BY name"))
    assert set(names) == {
        "Home",
        "Category",
        "Products Searched",
        "Product Viewed",
        "Product Added",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
    }
    # abandoned carts: more adds and checkouts than completed orders
    assert names["Checkout Started"] > names["Order Completed"]
    anonymous = scalar("SELECT COUNT(*) FROM events WHERE customer_id IS NULL")
    assert anonymous == scalar(
        "SELECT COUNT(*) FROM events e JOIN identities i "
        "ON i.kind = 'anonymous_id' AND i.value = e.anonymous_id WHERE e.customer_id IS NULL"
    )  # every anonymous event can be stitched to its customer
    with db.transaction() as session:
        completed = session.execute(
            select(tables(["events"])[0].c.properties).where(text("name = 'Order Completed'"))
        ).scalars()
        first = next(iter(completed))
    assert set(first) >= {"order_id", "total", "revenue", "currency", "products"}
    assert scalar(f"SELECT COUNT(*) FROM orders WHERE external_id = '{first['order_id']}'") == 1


def test_personal_data_is_sealed_at_rest(shop: service.DemoResult, database: str) -> None:
    with db.transaction() as session:
        customer = customers_service.get_customer(session, 1)
        email, phone = customer.email, customer.phone
        assert re.fullmatch(r"[a-z]+\.[a-z]+\.1@example\.com", str(email))
        assert customer.key_version == get_cipher().keyring.active
        found = customers_service.find_by_email(session, str(email).upper())
        assert found is not None and found.id == 1
        if phone:
            by_phone = customers_service.find_by_phone(session, phone)
            assert by_phone is not None and by_phone.id == 1
    assert scalar("SELECT COUNT(*) FROM customers WHERE email IS NULL") == 0
    assert scalar("SELECT COUNT(*) FROM customers WHERE email_bidx IS NULL") == 0

    if _sqlite():
        with db.transaction() as session:
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        raw = Path(str(make_url(database).database)).read_bytes()
    else:
        with db.transaction() as session:
            raw = "\n".join(
                str(value)
                for name in TABLES
                for (value,) in session.execute(text(f"SELECT CAST(t AS TEXT) FROM {name} t"))
            ).encode()
    assert b"@example.com" not in raw
    assert str(email).encode() not in raw
    if phone:
        assert phone.encode() not in raw


def test_indexes_and_keys_are_back(shop: service.DemoResult) -> None:
    with db.transaction() as session:
        inspector = inspect(session.connection())
        names = {ix["name"] for ix in inspector.get_indexes("events")}
        assert {"ix_events_customer_id_timestamp", "ix_events_timestamp"} <= names
        keys = {fk["name"] for fk in inspector.get_foreign_keys("order_items")}
        if not _sqlite():
            assert keys == {"fk_order_items_order_id_orders", "fk_order_items_product_id_products"}
        else:
            assert session.execute(text("PRAGMA foreign_key_check")).all() == []
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_an_existing_shop_is_kept_and_admin_gets_a_new_password(
    shop: service.DemoResult,
) -> None:
    again = service.run(Plan(customers=50, seed=1))
    assert again.generated is False
    assert again.customers == 300
    assert counts() == SMALL_COUNTS
    assert again.login.password != shop.login.password
    with db.transaction() as session:
        assert auth_service.login(session, "admin", again.login.password, "127.0.0.1").principal
    with db.transaction() as session:
        assert auth_service.login(session, "admin", shop.login.password, "127.0.0.1").error


def test_dashboard_snapshot_is_taken(shop: service.DemoResult) -> None:
    assert scalar("SELECT customers FROM stats_snapshots") == 300
    assert scalar("SELECT orders FROM stats_snapshots") == 1417  # placed minus cancelled


def test_catalogue_without_customers_is_not_overwritten(database: str) -> None:
    with db.transaction() as session:
        session.execute(
            text("INSERT INTO categories (external_id, name, path) VALUES ('mine', 'Mine', '/')")
        )
    with pytest.raises(Conflict, match="--reset"):
        service.run(SMALL)
    assert counts()["customers"] == 0


def test_customer_count_is_checked(database: str) -> None:
    with pytest.raises(ValidationFailed):
        service.run(Plan(customers=0))


def _sqlite() -> bool:
    with db.transaction() as session:
        return session.get_bind().dialect.name == "sqlite"
