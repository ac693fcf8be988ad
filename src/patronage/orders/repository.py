"""All queries of the orders capability."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from patronage.orders.models import Order, OrderItem, Payment, Refund, Return, Shipment


def latest_for_customer(session: Session, customer_id: int, limit: int) -> list[Row[Any]]:
    stmt = (
        select(*Order.__table__.c)
        .where(Order.customer_id == customer_id)
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(limit)
    )
    return list(session.execute(stmt))


def count_for_customer(session: Session, customer_id: int) -> int:
    stmt = select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
    return int(session.scalar(stmt) or 0)


def items_of(session: Session, order_ids: Sequence[int]) -> list[Row[Any]]:
    stmt = (
        select(*OrderItem.__table__.c)
        .where(OrderItem.order_id.in_(order_ids))
        .order_by(OrderItem.id)
    )
    return list(session.execute(stmt))


def payments_of(session: Session, order_ids: Sequence[int]) -> list[Row[Any]]:
    stmt = select(*Payment.__table__.c).where(Payment.order_id.in_(order_ids)).order_by(Payment.id)
    return list(session.execute(stmt))


def shipments_of(session: Session, order_ids: Sequence[int]) -> list[Row[Any]]:
    stmt = (
        select(*Shipment.__table__.c).where(Shipment.order_id.in_(order_ids)).order_by(Shipment.id)
    )
    return list(session.execute(stmt))


def returns_of(session: Session, order_ids: Sequence[int]) -> list[Row[Any]]:
    stmt = select(*Return.__table__.c).where(Return.order_id.in_(order_ids)).order_by(Return.id)
    return list(session.execute(stmt))


def refunds_of(session: Session, order_ids: Sequence[int]) -> list[Row[Any]]:
    stmt = select(*Refund.__table__.c).where(Refund.order_id.in_(order_ids)).order_by(Refund.id)
    return list(session.execute(stmt))
