"""Public functions of the orders capability."""

from __future__ import annotations

from collections import defaultdict
from typing import TypeVar

from sqlalchemy.orm import Session

from patronage.catalog import service as catalog_service
from patronage.kit.money import from_minor
from patronage.orders import repository as repo
from patronage.orders.schemas import (
    OrderItemRead,
    OrderRead,
    PaymentRead,
    RefundRead,
    ReturnRead,
    ShipmentRead,
)

T = TypeVar("T")


def _by_order(rows: list[T]) -> dict[int, list[T]]:
    grouped: dict[int, list[T]] = defaultdict(list)
    for row in rows:
        grouped[row.order_id].append(row)  # type: ignore[attr-defined]
    return grouped


def orders_for_customer(
    session: Session, customer_id: int, limit: int = 20
) -> tuple[list[OrderRead], int]:
    """The customer's latest orders with items, payments, shipments, returns and refunds.

    Two round trips whatever the number of orders: the orders with their details, product names.
    """
    found = repo.latest_with_details(session, customer_id, limit)
    orders = found["orders"]
    if not orders:
        return [], 0
    total = found["total"][0].orders
    items = _by_order(found["items"])
    names = catalog_service.product_names(
        session, {i.product_id for rows in items.values() for i in rows}
    )
    payments = _by_order(found["payments"])
    shipments = _by_order(found["shipments"])
    returns = _by_order(found["returns"])
    refunds = _by_order(found["refunds"])
    result = [
        OrderRead(
            id=o.id,
            external_id=o.external_id,
            status=o.status,
            channel=o.channel,
            currency=o.currency,
            total=str(from_minor(o.total_minor)),
            discount=str(from_minor(o.discount_minor)),
            placed_at=o.placed_at,
            items=[
                OrderItemRead(
                    product_id=i.product_id,
                    product_name=names.get(i.product_id),
                    quantity=i.quantity,
                    unit_price=str(from_minor(i.unit_price_minor)),
                    discount=str(from_minor(i.discount_minor)),
                )
                for i in items[o.id]
            ],
            payments=[
                PaymentRead(
                    method=p.method,
                    status=p.status,
                    amount=str(from_minor(p.amount_minor)),
                    created_at=p.created_at,
                )
                for p in payments[o.id]
            ],
            shipments=[
                ShipmentRead(
                    carrier=s.carrier,
                    tracking_number=s.tracking_number,
                    status=s.status,
                    shipped_at=s.shipped_at,
                    promised_at=s.promised_at,
                    delivered_at=s.delivered_at,
                )
                for s in shipments[o.id]
            ],
            returns=[
                ReturnRead(
                    order_item_id=r.order_item_id,
                    quantity=r.quantity,
                    reason=r.reason,
                    status=r.status,
                    requested_at=r.requested_at,
                )
                for r in returns[o.id]
            ],
            refunds=[
                RefundRead(
                    amount=str(from_minor(r.amount_minor)), reason=r.reason, created_at=r.created_at
                )
                for r in refunds[o.id]
            ],
        )
        for o in orders
    ]
    return result, total


# -- statistics (dashboard) --
from patronage.orders.stats import MonthRevenue as MonthRevenue  # noqa: E402
from patronage.orders.stats import RevenueKpis as RevenueKpis  # noqa: E402
from patronage.orders.stats import revenue_kpis as revenue_kpis  # noqa: E402

# -- collect: orders reported by tracked events (owned by the collect helper) --------------
# isort: split
from patronage.orders.ingest import OrderFacts as OrderFacts  # noqa: E402
from patronage.orders.ingest import OrderLine as OrderLine  # noqa: E402
from patronage.orders.ingest import cancel_order as cancel_order  # noqa: E402
from patronage.orders.ingest import reassign_customer as reassign_customer  # noqa: E402
from patronage.orders.ingest import refund_order as refund_order  # noqa: E402
from patronage.orders.ingest import set_coupon as set_coupon  # noqa: E402
from patronage.orders.ingest import upsert_order as upsert_order  # noqa: E402
from patronage.orders.ingest import upsert_review as upsert_review  # noqa: E402

# -- end collect ---------------------------------------------------------------------------


# -- bulk write paths, used by the demo and imports (owned by the demo helper) --------------
# isort: split
from patronage.orders.bulk import insert_order_items as insert_order_items  # noqa: E402
from patronage.orders.bulk import insert_orders as insert_orders  # noqa: E402
from patronage.orders.bulk import insert_payments as insert_payments  # noqa: E402
from patronage.orders.bulk import insert_refunds as insert_refunds  # noqa: E402
from patronage.orders.bulk import insert_returns as insert_returns  # noqa: E402
from patronage.orders.bulk import insert_reviews as insert_reviews  # noqa: E402
from patronage.orders.bulk import insert_shipments as insert_shipments  # noqa: E402
from patronage.orders.bulk import prepare_batch as prepare_batch  # noqa: E402

# -- end bulk write paths ------------------------------------------------------------------


# -- bulk import: orders upserted by external id (owned by the import helper) ---------------
# isort: split
from patronage.orders.upserts import ItemColumns as ItemColumns  # noqa: E402
from patronage.orders.upserts import OrderColumns as OrderColumns  # noqa: E402
from patronage.orders.upserts import OrderUpsertCounts as OrderUpsertCounts  # noqa: E402
from patronage.orders.upserts import upsert_orders as upsert_orders  # noqa: E402

# -- end bulk import -----------------------------------------------------------------------
