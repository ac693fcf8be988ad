"""All queries of the orders capability."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Integer, bindparam, func, select
from sqlalchemy.orm import Session

from patronage.kit.together import Part, Together
from patronage.orders.models import Order, OrderItem, Payment, Refund, Return, Shipment


@cache  # built on first use, not at import: the CLI imports this module too
def _latest_with_details() -> Together:
    customer = bindparam("customer_id", type_=BigInteger)
    latest = (
        select(Order.id)
        .where(Order.customer_id == customer)
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )
    newest_first = [Order.placed_at.desc(), Order.id.desc()]
    parts: dict[str, Part] = {
        "orders": (select(*Order.__table__.c).where(Order.id.in_(latest)), newest_first)
    }
    for name, table in (
        ("items", OrderItem),
        ("payments", Payment),
        ("shipments", Shipment),
        ("returns", Return),
        ("refunds", Refund),
    ):
        parts[name] = (select(*table.__table__.c).where(table.order_id.in_(latest)), [table.id])
    count = select(func.count().label("orders")).where(Order.customer_id == customer)
    parts["total"] = (count, [])
    return Together(parts)


def latest_with_details(session: Session, customer_id: int, limit: int) -> dict[str, list[Any]]:
    """The customer's latest orders, their items, payments, shipments, returns and refunds,
    and how many orders the customer has in all, in one round trip (`kit.together`)."""
    return _latest_with_details().read(session, customer_id=customer_id, limit=limit)
