"""Customer features, RFM and refresh bookkeeping: exact values on a hand-built shop.

NOW = 2025-06-15 12:00 UTC. The shop (test-only inserts through models):

  A  born 1990, signed up 2024-06-15
     o1 2025-01-10 09:00 web  10000, discount 500, 2 x P1 @ 4000 (cat X) + 1 x P2 @ 2000 (cat Y),
        returned, refunded 2000
     o2 2025-03-10 09:30 web  5000, 1 x P1 @ 5000
     o3 2025-06-05 14:00 app  3000, coupon, 1 x P2 @ 3000
     o4 2025-06-06 cancelled 7000
     events: 06-10 10:00 view, 10:10 add, 10:20 view (mobile; no order: abandoned cart)
             06-12 20:00 view, 20:05 recommendation click, 20:15 add, 20:25 order (desktop)
             04-01 08:00 view (mobile); 06-20 view (in the future: ignored)
     tickets 2, reviews 4 and 5
  B  one order 2025-06-14 2000
  C  no orders
  D  only an order in the future (2025-07-01)
  E  2024-06-15 1000, refunded 1500 (refund larger than the order)
  F  merged into A (no row)
  G  born 2005, an order of 0 on 2025-05-15
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.analytics import refresh, rfm, service
from patronage.analytics.models import CustomerFeatures, RfmScore
from patronage.catalog.models import Category, Product
from patronage.collect.models import Event
from patronage.customers.models import Customer
from patronage.orders.models import Order, OrderItem, Refund, Return, Review
from patronage.support.models import Ticket

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
_n = count(1)


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def _customer(s: Session, **fields: object) -> Customer:
    fields.setdefault("signup_at", _at(2023, 1, 1))
    row = Customer(user_id=f"an-{next(_n)}", **fields)
    s.add(row)
    s.flush()
    return row


def _order(
    s: Session, who: Customer, total: int, at: datetime, *, status: str = "paid", **extra: object
) -> Order:
    row = Order(
        external_id=f"an-o-{next(_n)}",
        customer_id=who.id,
        status=status,
        total_minor=total,
        subtotal_minor=total,
        placed_at=at,
        cancelled_at=at + timedelta(hours=1) if status == "cancelled" else None,
        **extra,
    )
    s.add(row)
    s.flush()
    return row


def _event(s: Session, who: Customer, name: str, at: datetime, device: str, **props: str) -> None:
    s.add(
        Event(
            message_id=f"an-m-{next(_n)}",
            type="track",
            name=name,
            customer_id=who.id,
            properties=props,
            context={"device": {"type": device}},
            timestamp=at,
        )
    )


def build(s: Session) -> dict[str, int]:
    x = Category(external_id=f"an-x-{next(_n)}", name="X")
    y = Category(external_id=f"an-y-{next(_n)}", name="Y")
    s.add_all([x, y])
    s.flush()
    p1 = Product(external_id=f"an-p1-{next(_n)}", name="P1", price_minor=4000, category_id=x.id)
    p2 = Product(external_id=f"an-p2-{next(_n)}", name="P2", price_minor=2000, category_id=y.id)
    s.add_all([p1, p2])
    s.flush()

    a = _customer(s, birth_year=1990, signup_at=_at(2024, 6, 15))
    o1 = _order(s, a, 10000, _at(2025, 1, 10, 9), channel="web", discount_minor=500)
    s.add_all(
        [
            OrderItem(order_id=o1.id, product_id=p1.id, quantity=2, unit_price_minor=4000),
            OrderItem(order_id=o1.id, product_id=p2.id, quantity=1, unit_price_minor=2000),
        ]
    )
    s.add(Return(order_id=o1.id, quantity=1, status="received", requested_at=_at(2025, 1, 20)))
    s.add(Refund(order_id=o1.id, amount_minor=2000, created_at=_at(2025, 1, 21)))
    o2 = _order(s, a, 5000, _at(2025, 3, 10, 9, 30), channel="web")
    s.add(OrderItem(order_id=o2.id, product_id=p1.id, quantity=1, unit_price_minor=5000))
    o3 = _order(s, a, 3000, _at(2025, 6, 5, 14), channel="app", coupon="SPRING")
    s.add(OrderItem(order_id=o3.id, product_id=p2.id, quantity=1, unit_price_minor=3000))
    _order(s, a, 7000, _at(2025, 6, 6, 9), status="cancelled")
    for name, at, device, props in (
        ("Product Viewed", _at(2025, 6, 10, 10), "mobile", {}),
        ("Product Added", _at(2025, 6, 10, 10, 10), "mobile", {}),
        ("Product Viewed", _at(2025, 6, 10, 10, 20), "mobile", {}),
        ("Product Viewed", _at(2025, 6, 12, 20), "desktop", {}),
        ("Product Clicked", _at(2025, 6, 12, 20, 5), "desktop", {"list_id": "recommend:similar"}),
        ("Product Added", _at(2025, 6, 12, 20, 15), "desktop", {}),
        ("Order Completed", _at(2025, 6, 12, 20, 25), "desktop", {}),
        ("Product Viewed", _at(2025, 4, 1, 8), "mobile", {}),
        ("Product Viewed", _at(2025, 6, 20, 8), "mobile", {}),
    ):
        _event(s, a, name, at, device, **props)
    for opened in (_at(2025, 5, 1), _at(2025, 6, 1)):
        s.add(
            Ticket(
                customer_id=a.id, channel="email", topic="delivery", status="open", opened_at=opened
            )
        )
    for rating in (4, 5):
        s.add(Review(customer_id=a.id, product_id=p1.id, rating=rating, created_at=_at(2025, 2, 1)))

    b = _customer(s)
    _order(s, b, 2000, _at(2025, 6, 14, 18))
    c = _customer(s)
    d = _customer(s)
    _order(s, d, 4000, _at(2025, 7, 1))
    e = _customer(s)
    oe = _order(s, e, 1000, _at(2024, 6, 15, 10))
    s.add(Refund(order_id=oe.id, amount_minor=1500, created_at=_at(2024, 6, 20)))
    _customer(s, merged_into_id=a.id)
    g = _customer(s, birth_year=2005)
    _order(s, g, 0, _at(2025, 5, 15, 23, 59))
    s.flush()
    return {"A": a.id, "B": b.id, "C": c.id, "D": d.id, "E": e.id, "G": g.id}


EMPTY = {
    "first_order_at": None,
    "last_order_at": None,
    "orders": 0,
    "purchase_days": 0,
    "recency_days": None,
    "t_days": None,
    "total_spend_minor": 0,
    "aov_minor": None,
    "avg_item_price_minor": None,
    "distinct_categories": 0,
    "return_rate": None,
    "cancellation_rate": None,
    "discount_rate": None,
    "sessions_7d": 0,
    "sessions_30d": 0,
    "sessions_90d": 0,
    "product_views_7d": 0,
    "product_views_30d": 0,
    "product_views_90d": 0,
    "cart_adds": 0,
    "abandoned_carts": 0,
    "last_visit_at": None,
    "preferred_hour": None,
    "preferred_weekday": None,
    "preferred_channel": None,
    "preferred_device": None,
    "recommendation_clicks": 0,
    "support_contacts": 0,
    "reviews": 0,
    "avg_rating": None,
    "tenure_days": 896,
    "age_band": None,
}

EXPECTED = {
    "A": {
        **EMPTY,
        "first_order_at": _at(2025, 1, 10, 9),
        "last_order_at": _at(2025, 6, 5, 14),
        "orders": 3,
        "purchase_days": 3,
        "recency_days": 10,
        "t_days": 156,
        "total_spend_minor": 16000,
        "aov_minor": 5333,
        "avg_item_price_minor": 3600,
        "distinct_categories": 2,
        "return_rate": 1 / 3,
        "cancellation_rate": 0.25,
        "discount_rate": 2 / 3,
        "sessions_7d": 2,
        "sessions_30d": 2,
        "sessions_90d": 3,
        "product_views_7d": 3,
        "product_views_30d": 3,
        "product_views_90d": 4,
        "cart_adds": 2,
        "abandoned_carts": 1,
        "last_visit_at": _at(2025, 6, 12, 20, 25),
        "preferred_hour": 9,
        "preferred_weekday": 1,
        "preferred_channel": "web",
        "preferred_device": "desktop",
        "recommendation_clicks": 1,
        "support_contacts": 2,
        "reviews": 2,
        "avg_rating": 4.5,
        "tenure_days": 365,
        "age_band": "35-44",
    },
    "B": {
        **EMPTY,
        "first_order_at": _at(2025, 6, 14, 18),
        "last_order_at": _at(2025, 6, 14, 18),
        "orders": 1,
        "purchase_days": 1,
        "recency_days": 1,
        "t_days": 1,
        "total_spend_minor": 2000,
        "aov_minor": 2000,
        "return_rate": 0.0,
        "cancellation_rate": 0.0,
        "discount_rate": 0.0,
        "preferred_hour": 18,
        "preferred_weekday": 6,
    },
    "C": EMPTY,
    "D": EMPTY,
    "E": {
        **EMPTY,
        "first_order_at": _at(2024, 6, 15, 10),
        "last_order_at": _at(2024, 6, 15, 10),
        "orders": 1,
        "purchase_days": 1,
        "recency_days": 365,
        "t_days": 365,
        "total_spend_minor": -500,
        "aov_minor": -500,
        "return_rate": 0.0,
        "cancellation_rate": 0.0,
        "discount_rate": 0.0,
        "preferred_hour": 10,
        "preferred_weekday": 6,
    },
    "G": {
        **EMPTY,
        "first_order_at": _at(2025, 5, 15, 23, 59),
        "last_order_at": _at(2025, 5, 15, 23, 59),
        "orders": 1,
        "purchase_days": 1,
        "recency_days": 31,
        "t_days": 31,
        "total_spend_minor": 0,
        "aov_minor": 0,
        "return_rate": 0.0,
        "cancellation_rate": 0.0,
        "discount_rate": 0.0,
        "preferred_hour": 23,
        "preferred_weekday": 4,
        "age_band": "<25",
    },
}


def _features(s: Session) -> dict[int, dict[str, object]]:
    rows = s.scalars(select(CustomerFeatures)).all()
    return {
        r.customer_id: {
            c.key: getattr(r, c.key)
            for c in CustomerFeatures.__table__.columns
            if c.key not in ("customer_id", "computed_at")
        }
        for r in rows
    }


def test_features_of_a_known_shop(session: Session, backend: str) -> None:
    ids = build(session)
    result = refresh.run(session, NOW)
    got = _features(session)
    assert set(got) == set(ids.values())  # F (merged away) has no row
    for name, cid in ids.items():
        assert got[cid] == EXPECTED[name], name
    assert result.customers == 6
    assert result.buyers == 4
    assert result.details["future_orders_ignored"] == 1
    assert {r.computed_at for r in session.scalars(select(CustomerFeatures))} == {NOW}


def test_rfm_of_a_known_shop(session: Session, backend: str) -> None:
    ids = build(session)
    refresh.run(session, NOW)
    got = {r.customer_id: (r.r, r.f, r.m, r.segment) for r in session.scalars(select(RfmScore))}
    assert got == {
        ids["A"]: (3, 4, 4, "Loyal"),
        ids["B"]: (4, 1, 3, "Promising"),
        ids["E"]: (1, 1, 1, "Lost"),
        ids["G"]: (2, 1, 2, "Hibernating"),
    }
    overview = service.rfm_overview(session)
    assert [(c.r, c.f, c.customers) for c in overview.cells] == [
        (1, 1, 1),
        (2, 1, 1),
        (3, 4, 1),
        (4, 1, 1),
    ]
    counts = {s.segment: s.customers for s in overview.segments}
    assert [s.segment for s in overview.segments] == list(rfm.SEGMENT_NAMES)
    assert counts == dict.fromkeys(rfm.SEGMENT_NAMES, 0) | {
        "Loyal": 1,
        "Promising": 1,
        "Lost": 1,
        "Hibernating": 1,
    }


def test_segment_moves_since_the_last_refresh(session: Session, backend: str) -> None:
    ids = build(session)
    first = refresh.run(session, NOW)
    assert first.segment_moves == 0
    e = session.get(Customer, ids["E"])
    assert e is not None
    _order(session, e, 3000, NOW + timedelta(days=1))
    second = refresh.run(session, NOW + timedelta(days=2))
    assert second.segment_moves == 4
    assert second.details["moves"] == [
        {"from": "Hibernating", "to": "Lost", "customers": 1},
        {"from": "Lost", "to": "Potential Loyalist", "customers": 1},
        {"from": "Loyal", "to": "At Risk", "customers": 1},
        {"from": "Promising", "to": "About to Sleep", "customers": 1},
    ]
    # the swap replaced every row: one refresh's rows only
    assert {r.computed_at for r in session.scalars(select(RfmScore))} == {NOW + timedelta(days=2)}


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, "Champions"),
        (4, 4, 3, "Loyal"),
        (5, 2, 1, "Potential Loyalist"),
        (5, 1, 5, "New"),
        (4, 1, 1, "Promising"),
        (3, 3, 3, "Need Attention"),
        (3, 1, 5, "About to Sleep"),
        (1, 5, 5, "Can't Lose Them"),
        (2, 3, 1, "At Risk"),
        (2, 2, 2, "Hibernating"),
        (1, 1, 1, "Lost"),
        (1, 2, 5, "Lost"),
    ],
)
def test_segment_rules(r: int, f: int, m: int, segment: str) -> None:
    assert rfm.segment_of(r, f, m) == segment


def test_every_score_triple_has_a_segment() -> None:
    names = {rfm.segment_of(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
    assert names == set(rfm.SEGMENT_NAMES)
