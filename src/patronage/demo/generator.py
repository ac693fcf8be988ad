"""Generate the demo shop: the catalogue, then chunks of `CHUNK` customers with everything
that happens to them, as columns ready for the capabilities' bulk write paths.

Deterministic: the catalogue draws from the seed's stream 0, chunk k from stream (1, k),
whatever the database, the machine or the number of worker processes. Inside a chunk, ids
are local (0, 1, …; see LOCAL_REFS); the writer shifts them past the rows already written,
so the same seed gives the same rows, ids and all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from patronage.demo.aftersale import make_aftersale
from patronage.demo.catalog import Catalog, build_catalog
from patronage.demo.people import People, make_people
from patronage.demo.sessions import EVENT_NAMES, EVENT_TYPES, Events, make_events
from patronage.demo.shopping import CHANNELS, COUPONS, Orders, make_orders
from patronage.demo.timeline import DEFAULT_UNTIL, Timeline

CHUNK = 5_000  # customers per chunk: part of the seed's definition, do not change lightly

Columns = dict[str, Any]
Tables = dict[str, Columns]

CATALOG_TABLES = ("categories", "sellers", "products")
CHUNK_TABLES = (
    "customers",
    "identities",
    "consents",
    "milestones",
    "orders",
    "order_items",
    "payments",
    "shipments",
    "returns",
    "refunds",
    "reviews",
    "tickets",
    "events",
)
TABLES = CATALOG_TABLES + CHUNK_TABLES

# Ids follow from the customer's id, so a chunk knows them without the chunks before it
# (workers generate chunks in parallel): dense for customers and the catalogue, with gaps
# elsewhere. Per customer at most 999 orders, 5 lines an order, 31 fulfillers (the shop and
# 30 sellers), 100,000 events; the generator keeps within these.
ORDERS_PER_CUSTOMER = 1000  # order id = customer id * 1000 + the customer's order number
LINES_PER_ORDER = 8  # line id = order id * 8 + position (returns, reviews: their line's id)
PAYMENTS_PER_ORDER = 4  # payment id = order id * 4 + attempt
SHIPMENTS_PER_ORDER = 32  # shipment id = order id * 32 + fulfiller
CANCEL_REFUND = 7  # refund of a cancelled order: order id * 8 + 7 (others: the return's id)
ACCOUNT_TICKET = 999  # ticket about an order: the order's id; else customer id * 1000 + 999
EVENTS_PER_CUSTOMER = 100_000  # event id = customer id * 100,000 + rank
ROWS_PER_CUSTOMER = 8  # consents, milestones, identities: customer id * 8 + rank


@dataclass(frozen=True)
class Plan:
    customers: int
    seed: int = 42
    until: date = DEFAULT_UNTIL

    @property
    def chunks(self) -> int:
        return (self.customers + CHUNK - 1) // CHUNK


def catalog_for(plan: Plan, tl: Timeline, first_ids: dict[str, int] | None = None) -> Catalog:
    ids = first_ids or {}
    return build_catalog(
        np.random.default_rng([plan.seed, 0]),
        plan.customers,
        tl,
        first_category_id=ids.get("categories", 1),
        first_seller_id=ids.get("sellers", 1),
        first_product_id=ids.get("products", 1),
    )


def catalog_tables(catalog: Catalog) -> Tables:
    return {
        "categories": dict(catalog.category_columns),
        "sellers": dict(catalog.seller_columns),
        "products": dict(catalog.product_columns),
    }


def chunk_tables(
    plan: Plan, tl: Timeline, catalog: Catalog, index: int, first_customer_id: int
) -> Tables:
    """Everything about customers [index * CHUNK, …), ids and all (see the id scheme)."""
    n = min(CHUNK, plan.customers - index * CHUNK)
    streams = [
        np.random.default_rng(s) for s in np.random.SeedSequence([plan.seed, 1, index]).spawn(4)
    ]
    people = make_people(streams[0], catalog, tl, first_customer_id, n)
    orders = make_orders(streams[1], people, catalog, tl)
    order_ids = people.ids[orders.customer] * ORDERS_PER_CUSTOMER + orders.number
    line_ids = order_ids[orders.line_order] * LINES_PER_ORDER + _rank_within(orders.line_order)
    after = make_aftersale(streams[2], people, orders, catalog, tl, order_ids, line_ids)
    numbers = order_numbers(people, orders)
    events = make_events(streams[3], people, orders, numbers, catalog, tl)

    customer_ids = people.ids[orders.customer]
    tables: Tables = {
        "customers": people.columns,
        "identities": _with_ids(people.identities),
        "consents": _with_ids(people.consents),
        "milestones": _with_ids(people.milestones),
        "orders": {
            "id": order_ids,
            "external_id": numbers,
            "customer_id": customer_ids,
            "status": after.order_status,
            "channel": CHANNELS[orders.channel],
            "currency": np.full(len(orders.customer), "EUR", dtype=object),
            "subtotal_minor": orders.subtotal,
            "discount_minor": orders.discount,
            "shipping_minor": orders.shipping,
            "tax_minor": orders.tax,
            "total_minor": orders.total,
            "coupon": np.where(orders.coupon > 0, COUPONS[orders.coupon], None),
            "placed_at": orders.placed.astype("datetime64[s]"),
            "cancelled_at": np.where(
                after.cancelled,
                np.maximum(after.cancelled_at, 0).astype("datetime64[s]"),
                np.datetime64("NaT", "s"),
            ),
            "updated_at": after.order_updated.astype("datetime64[s]"),
        },
        "order_items": {
            "id": line_ids,
            "order_id": order_ids[orders.line_order],
            "product_id": catalog.product_ids[orders.line_product],
            "quantity": orders.line_quantity,
            "unit_price_minor": orders.line_price,
            "discount_minor": orders.line_discount,
        },
        **after.tables,
        "events": _event_columns(people, events),
    }
    return tables


def order_numbers(people: People, orders: Orders) -> list[str]:
    """The shop's order numbers: customer id and the customer's order count."""
    ids = people.ids[orders.customer].tolist()
    return [f"{c:07d}-{k + 1:03d}" for c, k in zip(ids, orders.number.tolist(), strict=True)]


def _event_columns(people: People, events: Events) -> Columns:
    customer_ids = people.ids[events.customer]
    # message ids from the customer and the event's rank among theirs (events come sorted
    # by customer): unique, known without the ids of earlier chunks, and ascending
    rank = _rank_within(events.customer)
    assert rank.max(initial=0) < EVENTS_PER_CUSTOMER
    message_ids = [
        f"demo-{c:08d}-{k:05d}" for c, k in zip(customer_ids.tolist(), rank.tolist(), strict=True)
    ]
    user_ids = np.array(people.columns["user_id"], dtype=object)[events.customer]
    device = np.array(people.device, dtype=object)[events.customer]
    return {
        "id": customer_ids * EVENTS_PER_CUSTOMER + rank,
        "message_id": message_ids,
        "type": EVENT_TYPES[events.code],
        "name": EVENT_NAMES[events.code],
        "customer_id": _nulls(customer_ids, ~events.identified),
        "anonymous_id": device,
        "user_id": _nulls(user_ids, ~events.identified),
        "properties": events.properties,
        "context": events.context,
        "timestamp": events.timestamp.astype("datetime64[s]"),
        "received_at": events.received.astype("datetime64[s]"),
    }


def _nulls(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = values.astype(object)
    out[missing] = None
    return out


def _with_ids(columns: Columns) -> Columns:
    """Rows sorted by customer_id get id = customer id * ROWS_PER_CUSTOMER + rank."""
    customer = np.asarray(columns["customer_id"])
    rank = _rank_within(customer)
    assert rank.max(initial=0) < ROWS_PER_CUSTOMER
    return {"id": customer * ROWS_PER_CUSTOMER + rank, **columns}


def _rank_within(group: np.ndarray) -> np.ndarray:
    """0, 1, 2 … within runs of equal values of a sorted array."""
    return np.arange(len(group)) - np.searchsorted(group, group, side="left")


def length(columns: Columns) -> int:
    return len(next(iter(columns.values()))) if columns else 0
