"""Orders, lines, payments, refunds and reviews reported by tracked events or imports.

Every writer is idempotent by an external id (order id, payment key, refund key, review id):
reporting the same fact twice changes nothing the second time. Unique constraints decide
races (INSERT … ON CONFLICT DO NOTHING, then read the winner's row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.orders.models import Order, OrderItem, Payment, Refund, Return, Review


@dataclass(slots=True)
class OrderLine:
    product_id: int
    quantity: int
    unit_price_minor: int
    discount_minor: int = 0


@dataclass(slots=True)
class OrderFacts:
    external_id: str
    customer_id: int
    placed_at: datetime
    currency: str | None = None
    subtotal_minor: int | None = None
    discount_minor: int | None = None
    shipping_minor: int | None = None
    tax_minor: int | None = None
    total_minor: int | None = None
    coupon: str | None = None
    channel: str | None = None
    lines: list[OrderLine] | None = None  # None: the report did not list the lines
    payment_method: str | None = None


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _order(session: Session, external_id: str) -> Order | None:
    return session.scalar(select(Order).where(Order.external_id == external_id))


def upsert_order(session: Session, facts: OrderFacts, *, status: str | None = None) -> int:
    """Create or update an order by external id, with its lines and its payment."""
    lines = _merged_lines(facts.lines) if facts.lines is not None else None
    subtotal = facts.subtotal_minor
    if subtotal is None and lines is not None:
        subtotal = sum(line.quantity * line.unit_price_minor for line in lines)
    values: dict[str, Any] = {
        "currency": facts.currency,
        "subtotal_minor": subtotal,
        "discount_minor": facts.discount_minor,
        "shipping_minor": facts.shipping_minor,
        "tax_minor": facts.tax_minor,
        "total_minor": facts.total_minor,
        "coupon": facts.coupon[:64] if facts.coupon else None,
        "channel": facts.channel[:16] if facts.channel else None,
    }
    order = _order(session, facts.external_id)
    if order is None:
        now = utcnow()
        created = session.execute(
            _insert(session, Order)
            .values(
                external_id=facts.external_id,
                customer_id=facts.customer_id,
                status=status or "placed",
                placed_at=facts.placed_at,
                updated_at=now,
                **{k: (v if v is not None else _ZERO.get(k)) for k, v in values.items()},
            )
            .on_conflict_do_nothing(index_elements=["external_id"])
        )
        order = _order(session, facts.external_id)
        assert order is not None
        fresh = bool(getattr(created, "rowcount", 0))
    else:
        fresh = False
    if not fresh:
        for key, value in values.items():
            if value is not None and getattr(order, key) != value:
                setattr(order, key, value)
        if status and order.status == "placed":
            order.status = status
    if order.total_minor == 0 and facts.total_minor is None and subtotal:
        order.total_minor = (
            subtotal
            - (order.discount_minor or 0)
            + (order.shipping_minor or 0)
            + (order.tax_minor or 0)
        )
    session.flush()
    if lines is not None:
        _sync_lines(session, order.id, lines)
    _upsert_payment(session, order, facts.payment_method)
    return order.id


_ZERO = {
    "subtotal_minor": 0,
    "discount_minor": 0,
    "shipping_minor": 0,
    "tax_minor": 0,
    "total_minor": 0,
    "currency": "EUR",
}


def _merged_lines(lines: list[OrderLine]) -> list[OrderLine]:
    """One line per product (a report may list the same product twice)."""
    merged: dict[int, OrderLine] = {}
    for line in lines:
        if line.product_id in merged:
            merged[line.product_id].quantity += line.quantity
            merged[line.product_id].discount_minor += line.discount_minor
        else:
            merged[line.product_id] = OrderLine(
                line.product_id, line.quantity, line.unit_price_minor, line.discount_minor
            )
    return list(merged.values())


def _sync_lines(session: Session, order_id: int, lines: list[OrderLine]) -> None:
    existing = {
        i.product_id: i
        for i in session.scalars(select(OrderItem).where(OrderItem.order_id == order_id))
    }
    wanted = {line.product_id: line for line in lines}
    for product_id, line in wanted.items():
        item = existing.get(product_id)
        if item is None:
            session.add(
                OrderItem(
                    order_id=order_id,
                    product_id=product_id,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    discount_minor=line.discount_minor,
                )
            )
        else:
            item.quantity = line.quantity
            item.unit_price_minor = line.unit_price_minor
            item.discount_minor = line.discount_minor
    returned = set(session.scalars(select(Return.order_item_id).where(Return.order_id == order_id)))
    for product_id, item in existing.items():
        if product_id not in wanted and item.id not in returned:
            session.delete(item)
    session.flush()


def _upsert_payment(session: Session, order: Order, method: str | None) -> None:
    """The order's payment (one per order from tracked events), kept at the order's total."""
    key = f"order:{order.external_id}"[:128]
    session.execute(
        _insert(session, Payment)
        .values(
            external_id=key,
            order_id=order.id,
            method=(method or "unknown")[:32],
            status="captured",
            amount_minor=order.total_minor,
            created_at=order.placed_at,
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
    )
    session.execute(
        update(Payment)
        .where(Payment.external_id == key)
        .values(amount_minor=order.total_minor, **({"method": method[:32]} if method else {}))
        .execution_options(synchronize_session=False)
    )


def cancel_order(session: Session, external_id: str, at: datetime) -> bool:
    order = _order(session, external_id)
    if order is None:
        return False
    if order.status != "cancelled":
        order.status = "cancelled"
        order.cancelled_at = at
        session.flush()
    return True


def refund_order(
    session: Session,
    external_id: str,
    amount_minor: int | None,
    reason: str | None,
    at: datetime,
    key: str,
) -> bool:
    """Record a refund once per `key`; the whole order when no amount is given."""
    order = _order(session, external_id)
    if order is None:
        return False
    amount = amount_minor if amount_minor is not None else order.total_minor
    session.execute(
        _insert(session, Refund)
        .values(
            external_id=key[:128],
            order_id=order.id,
            amount_minor=amount,
            reason=reason[:64] if reason else None,
            created_at=at,
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
    )
    refunded = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(Refund.order_id == order.id)
    )
    if int(refunded or 0) >= order.total_minor and order.status != "refunded":
        order.status = "refunded"
    session.flush()
    return True


def set_coupon(session: Session, external_id: str, coupon: str) -> bool:
    order = _order(session, external_id)
    if order is None:
        return False
    order.coupon = coupon[:64]
    session.flush()
    return True


def upsert_review(
    session: Session,
    *,
    external_id: str,
    customer_id: int,
    product_id: int,
    order_external_id: str | None,
    rating: int,
    title: str | None,
    body: str | None,
    at: datetime,
) -> None:
    order = _order(session, order_external_id) if order_external_id else None
    session.execute(
        _insert(session, Review)
        .values(
            external_id=external_id[:128],
            customer_id=customer_id,
            product_id=product_id,
            order_id=order.id if order else None,
            rating=rating,
            title=title[:255] if title else None,
            body=body,
            created_at=at,
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
    )


def reassign_customer(session: Session, from_id: int, into_id: int) -> dict[str, int]:
    """A profile merge: its orders and reviews now belong to the survivor."""
    moved = {}
    for label, model in (("orders", Order), ("reviews", Review)):
        result = session.execute(
            update(model)
            .where(model.customer_id == from_id)
            .values(customer_id=into_id)
            .execution_options(synchronize_session=False)
        )
        moved[label] = int(getattr(result, "rowcount", 0) or 0)
    return moved
