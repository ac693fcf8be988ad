"""A small, hand-built shop whose KPIs are known exactly (test-only: inserts through models).

Pinned "now" is NOW (2025-06-15 12:00 UTC): the 24 months are 2023-07 … 2025-06.

  c1: 2025-06-01 10000, 2025-05-10 5000 (refunded 1000)        -> 2 orders
  c2: 2025-05-31 23:30 at UTC-2 = 2025-06-01 01:30 UTC 2501,
      a cancelled 9999 (refunded 9999: not counted)             -> 1 order
  c3: no orders
  c4: merged into c1 (not counted)
  c5: 2023-06-30 23:30 UTC 700 (before the window), 2023-07-01 00:10 UTC 300 -> 2 orders
  c6: 2024-12-24 994                                           -> 1 order

customers 5, buyers 4, orders 6, revenue 19495 - 1000 = 18495,
average 18495 / 6 = 3082.5 -> 3082 (half to even), repeat rate 2 / 4.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import count

from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.orders.models import Order, Refund

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)

EXPECTED = {
    "customers": 5,
    "buyers": 4,
    "orders": 6,
    "revenue_minor": 18495,
    "average_order_minor": 3082,
    "repeat_purchase_rate": 0.5,
}
NONZERO_MONTHS = {
    "2023-07": (1, 300),
    "2024-12": (1, 994),
    "2025-05": (1, 4000),
    "2025-06": (2, 12501),
}

_ids = count(1)


def _months() -> list[str]:
    keys = []
    year, month = 2023, 7
    for _ in range(24):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def expected_months() -> list[dict[str, object]]:
    return [
        {
            "month": key,
            "orders": NONZERO_MONTHS.get(key, (0, 0))[0],
            "revenue_minor": NONZERO_MONTHS.get(key, (0, 0))[1],
        }
        for key in _months()
    ]


def customer(session: Session, **fields: object) -> Customer:
    row = Customer(signup_at=datetime(2023, 1, 1, tzinfo=UTC), **fields)
    session.add(row)
    session.flush()
    return row


def order(
    session: Session, who: Customer, total: int, placed_at: datetime, status: str = "paid"
) -> Order:
    row = Order(
        external_id=f"o-{next(_ids)}-{who.id}",
        customer_id=who.id,
        status=status,
        total_minor=total,
        subtotal_minor=total,
        placed_at=placed_at,
        cancelled_at=placed_at + timedelta(hours=1) if status == "cancelled" else None,
    )
    session.add(row)
    session.flush()
    return row


def refund(session: Session, of: Order, amount: int, created_at: datetime) -> Refund:
    row = Refund(order_id=of.id, amount_minor=amount, created_at=created_at)
    session.add(row)
    session.flush()
    return row


def build_shop(session: Session, prefix: str = "") -> None:
    c1 = customer(session, user_id=f"{prefix}c1")
    c2 = customer(session, user_id=f"{prefix}c2")
    customer(session, user_id=f"{prefix}c3")
    customer(session, user_id=f"{prefix}c4", merged_into_id=c1.id)
    c5 = customer(session, user_id=f"{prefix}c5")
    c6 = customer(session, user_id=f"{prefix}c6")

    order(session, c1, 10000, datetime(2025, 6, 1, 10, 0, tzinfo=UTC))
    o2 = order(session, c1, 5000, datetime(2025, 5, 10, 8, 0, tzinfo=UTC))
    refund(session, o2, 1000, datetime(2025, 6, 2, 9, 0, tzinfo=UTC))

    minus_two = timezone(timedelta(hours=-2))
    order(session, c2, 2501, datetime(2025, 5, 31, 23, 30, tzinfo=minus_two))
    cancelled = order(session, c2, 9999, datetime(2025, 6, 4, 9, 0, tzinfo=UTC), status="cancelled")
    refund(session, cancelled, 9999, datetime(2025, 6, 4, 11, 0, tzinfo=UTC))

    order(session, c5, 700, datetime(2023, 6, 30, 23, 30, tzinfo=UTC))
    order(session, c5, 300, datetime(2023, 7, 1, 0, 10, tzinfo=UTC))
    order(session, c6, 994, datetime(2024, 12, 24, 12, 0, tzinfo=UTC))
