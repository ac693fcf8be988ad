"""All queries of the orders capability."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.orders.models import Order, OrderItem, Payment, Refund, Return, Shipment


def latest_for_customer(session: Session, customer_id: int, limit: int) -> list[Order]:
    stmt = (
        select(Order)
        .where(Order.customer_id == customer_id)
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def count_for_customer(session: Session, customer_id: int) -> int:
    stmt = select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
    return int(session.scalar(stmt) or 0)


def items_of(session: Session, order_ids: Sequence[int]) -> list[OrderItem]:
    stmt = select(OrderItem).where(OrderItem.order_id.in_(order_ids)).order_by(OrderItem.id)
    return list(session.scalars(stmt))


def payments_of(session: Session, order_ids: Sequence[int]) -> list[Payment]:
    stmt = select(Payment).where(Payment.order_id.in_(order_ids)).order_by(Payment.id)
    return list(session.scalars(stmt))


def shipments_of(session: Session, order_ids: Sequence[int]) -> list[Shipment]:
    stmt = select(Shipment).where(Shipment.order_id.in_(order_ids)).order_by(Shipment.id)
    return list(session.scalars(stmt))


def returns_of(session: Session, order_ids: Sequence[int]) -> list[Return]:
    stmt = select(Return).where(Return.order_id.in_(order_ids)).order_by(Return.id)
    return list(session.scalars(stmt))


def refunds_of(session: Session, order_ids: Sequence[int]) -> list[Refund]:
    stmt = select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.id)
    return list(session.scalars(stmt))
