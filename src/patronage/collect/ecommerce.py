"""The Segment e-commerce spec, mapped onto the commerce tables (table in docs/collect.md).

Every mapping is idempotent by the ids the spec carries (order_id, product_id/sku,
review_id) or, where the spec has none (refunds), by the message id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from patronage.catalog import service as catalog_service
from patronage.kit.money import to_minor
from patronage.orders import service as orders_service

PRODUCT_EVENTS = {
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Product Clicked",
    "Product Shared",
    "Product Added to Wishlist",
    "Product Removed from Wishlist",
}
LIST_EVENTS = {
    "Product List Viewed",
    "Product List Filtered",
    "Cart Viewed",
    "Checkout Started",
    "Checkout Step Completed",
}
ORDER_EVENTS = {"Order Completed", "Order Updated", "Order Cancelled", "Order Refunded"}
OTHER_EVENTS = {
    "Products Searched",
    "Promotion Viewed",
    "Promotion Clicked",
    "Coupon Applied",
    "Coupon Entered",
    "Coupon Denied",
    "Coupon Removed",
    "Product Reviewed",
}
ECOMMERCE_EVENTS = PRODUCT_EVENTS | LIST_EVENTS | ORDER_EVENTS | OTHER_EVENTS
MAX_MINOR = 10**15  # a quadrillion cents: anything beyond is not a real amount
MAX_QUANTITY = 1_000_000


@dataclass(slots=True)
class CommerceMessage:
    message_id: str
    name: str
    customer_id: int
    timestamp: datetime
    properties: dict[str, Any]
    channel: str | None


def money(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        minor = to_minor(value)
    except (InvalidOperation, ValueError, OverflowError):
        return None
    return minor if abs(minor) <= MAX_MINOR else None


def _text(value: Any, limit: int) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value).strip()
        return text if 0 < len(text) <= limit else None
    return None


def _quantity(value: Any) -> int:
    """Missing: 1 (as the spec); zero, negative or not a number: 0 (the line is skipped)."""
    if value is None:
        return 1
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
        return min(int(value), MAX_QUANTITY)
    return 0


def _products_of(name: str, props: dict[str, Any]) -> list[dict[str, Any]]:
    if name in PRODUCT_EVENTS or name == "Product Reviewed":
        return [props]
    products = props.get("products")
    if isinstance(products, list):
        return [p for p in products if isinstance(p, dict)][:500]
    return []


def _product_key(item: dict[str, Any]) -> str | None:
    return _text(item.get("product_id"), 128) or _text(item.get("sku"), 128)


def _seen(item: dict[str, Any], currency: str | None) -> catalog_service.ProductSeen | None:
    key = _product_key(item)
    if key is None:
        return None
    attributes = {
        k: item[k]
        for k in ("sku", "brand", "variant", "url", "image_url")
        if isinstance(item.get(k), str) and len(item[k]) <= 512
    }
    price = money(item.get("price"))
    return catalog_service.ProductSeen(
        external_id=key,
        name=_text(item.get("name"), 512),
        price_minor=price if price is not None and price >= 0 else None,
        currency=currency,
        category=_text(item.get("category"), 128),
        attributes=attributes,
    )


def _currency(props: dict[str, Any]) -> str | None:
    value = props.get("currency")
    if isinstance(value, str) and len(value) == 3 and value.isalpha():
        return value.upper()
    return None


def apply(session: Session, messages: list[CommerceMessage]) -> None:
    """Map a batch's new e-commerce messages, in order: products first (one lookup)."""
    seen = []
    for m in messages:
        currency = _currency(m.properties)
        for item in _products_of(m.name, m.properties):
            product = _seen(item, currency)
            if product is not None:
                seen.append(product)
    products = catalog_service.ensure_products(session, seen) if seen else {}
    for m in messages:
        if m.name in ORDER_EVENTS:
            _order_event(session, m, products)
        elif m.name == "Product Reviewed":
            _review(session, m, products)
        elif m.name == "Coupon Applied":
            order_id = _text(m.properties.get("order_id"), 128)
            coupon = _text(m.properties.get("coupon_name"), 64) or _text(
                m.properties.get("coupon_id"), 64
            )
            if order_id and coupon:
                orders_service.set_coupon(session, order_id, coupon)


def _lines(
    props: dict[str, Any], products: dict[str, int]
) -> list[orders_service.OrderLine] | None:
    items = props.get("products")
    if not isinstance(items, list):
        return None
    lines = []
    for item in items[:500]:
        if not isinstance(item, dict):
            continue
        key = _product_key(item)
        if key is None or key not in products:
            continue
        price = money(item.get("price"))
        quantity = _quantity(item.get("quantity"))
        if quantity == 0:
            continue
        lines.append(
            orders_service.OrderLine(
                product_id=products[key],
                quantity=quantity,
                unit_price_minor=price if price is not None and price >= 0 else 0,
            )
        )
    return lines


def _order_event(session: Session, m: CommerceMessage, products: dict[str, int]) -> None:
    props = m.properties
    order_id = _text(props.get("order_id"), 128)
    if order_id is None:
        return
    if m.name in {"Order Completed", "Order Updated"}:
        _upsert(session, m, order_id, products, "paid" if m.name == "Order Completed" else None)
    elif m.name == "Order Cancelled":
        if not orders_service.cancel_order(session, order_id, m.timestamp):
            _upsert(session, m, order_id, products, None)  # first heard of it: record it
            orders_service.cancel_order(session, order_id, m.timestamp)
    elif m.name == "Order Refunded":
        amount = money(props.get("total"))
        if amount is None and isinstance(props.get("products"), list):
            lines = _lines(props, products) or []
            amount = sum(line.quantity * line.unit_price_minor for line in lines) or None
        refund = (
            amount if amount is None or amount >= 0 else None,
            _text(props.get("reason"), 64),
            m.timestamp,
        )
        key = f"msg:{m.message_id}"
        if not orders_service.refund_order(session, order_id, *refund, key=key):
            _upsert(session, m, order_id, products, None)
            orders_service.refund_order(session, order_id, *refund, key=key)


def _upsert(
    session: Session,
    m: CommerceMessage,
    order_id: str,
    products: dict[str, int],
    status: str | None,
) -> None:
    props = m.properties
    revenue = money(props.get("revenue"))
    total = money(props.get("total"))
    facts = orders_service.OrderFacts(
        external_id=order_id,
        customer_id=m.customer_id,
        placed_at=m.timestamp,
        currency=_currency(props),
        subtotal_minor=money(props.get("subtotal")),
        discount_minor=money(props.get("discount")),
        shipping_minor=money(props.get("shipping")),
        tax_minor=money(props.get("tax")),
        total_minor=total if total is not None else revenue,
        coupon=_text(props.get("coupon"), 64),
        channel=m.channel,
        lines=_lines(props, products),
        payment_method=_text(props.get("payment_method"), 32),
    )
    orders_service.upsert_order(session, facts, status=status)


def _review(session: Session, m: CommerceMessage, products: dict[str, int]) -> None:
    props = m.properties
    key = _product_key(props)
    rating = props.get("rating")
    if isinstance(rating, str) and rating.strip().isdigit():
        rating = int(rating.strip())
    if key is None or key not in products or not isinstance(rating, int | float):
        return
    if isinstance(rating, bool) or not 1 <= rating <= 5:
        return
    orders_service.upsert_review(
        session,
        external_id=_text(props.get("review_id"), 128) or f"msg:{m.message_id}",
        customer_id=m.customer_id,
        product_id=products[key],
        order_external_id=_text(props.get("order_id"), 128),
        rating=int(rating),
        title=_text(props.get("title"), 255),
        body=props.get("review_body") if isinstance(props.get("review_body"), str) else None,
        at=m.timestamp,
    )
