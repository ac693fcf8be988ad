"""The customer 360 of demo customers against its tables read one by one.

The profile reads everything in four round trips (`kit.together` unions); here each list is
read on its own with plain SQL and compared, on SQLite and PostgreSQL: every row, its order,
and the decrypted personal data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from patronage import db
from patronage.customers import service as customers_service
from patronage.demo import service


def _column(session: db.Session, sql: str, **params: Any) -> list[Any]:
    return [row[0] for row in session.execute(text(sql), params)]


def _rows(session: db.Session, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in session.execute(text(sql), params)]


def test_profiles_hold_exactly_the_rows_of_their_tables(shop: service.DemoResult) -> None:
    seen = {
        "identities": 0,
        "consents": 0,
        "milestones": 0,
        "orders": 0,
        "items": 0,
        "payments": 0,
        "shipments": 0,
        "returns": 0,
        "refunds": 0,
    }
    with db.transaction() as session:
        for customer_id in range(1, shop.customers + 1, 6):  # 50 customers: every kind of row
            profile = customers_service.profile(session, customer_id, with_pii=True)
            customer = customers_service.get_customer(session, customer_id)
            assert profile.customer.email == customer.email
            assert profile.customer.last_name == customer.last_name
            assert [(i.kind, i.value, i.source) for i in profile.identities] == _rows(
                session,
                "SELECT kind, value, source FROM identities WHERE customer_id = :c ORDER BY id",
                c=customer_id,
            )
            assert [(c.purpose, c.granted, c.source) for c in profile.consent_history] == [
                (purpose, bool(granted), source)
                for purpose, granted, source in _rows(
                    session,
                    "SELECT purpose, granted, source FROM consents WHERE customer_id = :c "
                    "ORDER BY recorded_at DESC, id DESC",
                    c=customer_id,
                )
            ]
            assert [(m.kind, m.label, m.month, m.day, m.year) for m in profile.milestones] == _rows(
                session,
                "SELECT kind, label, month, day, year FROM milestones WHERE customer_id = :c "
                "ORDER BY id",
                c=customer_id,
            )
            seen["identities"] += len(profile.identities)
            seen["consents"] += len(profile.consent_history)
            seen["milestones"] += len(profile.milestones)
            order_ids = _column(
                session,
                "SELECT id FROM orders WHERE customer_id = :c ORDER BY placed_at DESC, id DESC",
                c=customer_id,
            )
            assert [o.id for o in profile.orders] == order_ids[:20]
            assert profile.orders_total == len(order_ids)
            for order in profile.orders:
                lines = session.execute(
                    text(
                        "SELECT product_id, quantity FROM order_items WHERE order_id = :o "
                        "ORDER BY id"
                    ),
                    {"o": order.id},
                ).all()
                assert [(i.product_id, i.quantity) for i in order.items] == [
                    tuple(r) for r in lines
                ]
                assert all(i.product_name for i in order.items)
                for name, attr in (
                    ("payments", "payments"),
                    ("shipments", "shipments"),
                    ("returns", "returns"),
                    ("refunds", "refunds"),
                ):
                    stored = _column(
                        session, f"SELECT COUNT(*) FROM {name} WHERE order_id = :o", o=order.id
                    )[0]
                    assert len(getattr(order, attr)) == stored
                    seen[name] += stored
                seen["items"] += len(order.items)
            seen["orders"] += len(profile.orders)
    # the comparison covered every kind of row (the shop has all of them)
    assert all(seen.values()), seen
