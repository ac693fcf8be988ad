"""All queries of the orders capability."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.kit.together import Part, read_together
from patronage.orders.models import Order, OrderItem, Payment, Refund, Return, Shipment


def latest_with_details(session: Session, customer_id: int, limit: int) -> dict[str, list[Any]]:
    """The customer's latest orders, their items, payments, shipments, returns and refunds,
    and how many orders the customer has in all, in one round trip (`kit.together`)."""
    latest = (
        select(Order.id)
        .where(Order.customer_id == customer_id)
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(limit)
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
    count = select(func.count().label("orders")).where(Order.customer_id == customer_id)
    parts["total"] = (count, [])
    return read_together(session, parts)
