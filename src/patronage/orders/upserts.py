"""Orders from bulk imports: upserted by external id, lines replaced only when they changed.

Built for millions of lines: the importer hands columns (NumPy arrays), new orders go in by
chunked INSERT … ON CONFLICT DO NOTHING, their lines by the columnar bulk path (COPY on
PostgreSQL), and orders already stored are compared with what the file says first, so a
re-run of the same file writes nothing at all (not even `updated_at`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patronage.kit.bulkwrite import write_columns
from patronage.kit.clock import utcnow
from patronage.kit.lookup import rows_by_keys
from patronage.orders.models import Order, OrderItem

CHUNK = 2000
_COMPARED = (
    "customer_id",
    "status",
    "currency",
    "subtotal_minor",
    "total_minor",
    "placed_at",
    "cancelled_at",
)


@dataclass
class OrderColumns:
    """One entry per order; datetimes are NumPy datetime64 in UTC (NaT for none)."""

    external_id: list[str]
    customer_id: np.ndarray
    status: list[str]
    currency: list[str]
    subtotal_minor: np.ndarray
    total_minor: np.ndarray
    placed_at: np.ndarray
    cancelled_at: np.ndarray


@dataclass
class ItemColumns:
    """One entry per line; `order` indexes OrderColumns. One line per (order, product)."""

    order: np.ndarray
    product_id: np.ndarray
    quantity: np.ndarray
    unit_price_minor: np.ndarray


@dataclass
class OrderUpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    lines_written: int = 0


def _aware(values: np.ndarray) -> list[datetime | None]:
    out: list[datetime | None] = []
    for v in values.astype("datetime64[us]").astype(object).tolist():
        out.append(None if v is None else v.replace(tzinfo=UTC))
    return out


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Order)


def _current(session: Session, external_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """external id -> (id, compared columns…) of the orders already stored."""
    query = select(Order.external_id, Order.id, *(getattr(Order, c) for c in _COMPARED))
    rows = rows_by_keys(session, query, Order.external_id, external_ids)
    return {str(r[0]): tuple(r[1:]) for r in rows}


def order_ids(session: Session, external_ids: list[str]) -> dict[str, int]:
    query = select(Order.external_id, Order.id)
    rows = rows_by_keys(session, query, Order.external_id, external_ids)
    return {str(ext): int(oid) for ext, oid in rows}


def upsert_orders(session: Session, orders: OrderColumns, items: ItemColumns) -> OrderUpsertCounts:
    """Create or update orders by external id and make their lines what `items` says."""
    counts = OrderUpsertCounts()
    n = len(orders.external_id)
    if n == 0:
        return counts
    current = _current(session, orders.external_id)
    placed = _aware(orders.placed_at)
    cancelled = _aware(orders.cancelled_at)
    customer = orders.customer_id.tolist()
    subtotal = orders.subtotal_minor.tolist()
    total = orders.total_minor.tolist()
    now = utcnow()
    fresh: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for i, ext in enumerate(orders.external_id):
        wanted = (
            customer[i],
            orders.status[i],
            orders.currency[i],
            subtotal[i],
            total[i],
            placed[i],
            cancelled[i],
        )
        row = dict(zip(_COMPARED, wanted, strict=True))
        stored = current.get(ext)
        if stored is None:
            fresh.append({"external_id": ext, **row})
        elif tuple(stored[1:]) != wanted:
            changed.append({"_id": stored[0], **row})
    counts.inserted, counts.updated = len(fresh), len(changed)
    counts.unchanged = n - len(fresh) - len(changed)
    new_ids: dict[str, int] = {}
    if fresh:
        rows = [i for i, e in enumerate(orders.external_id) if e not in current]
        new_ids = _write_fresh(session, orders, rows, now)
    if changed:
        table = Order.__table__
        session.connection().execute(
            update(table)  # type: ignore[arg-type]
            .where(table.c.id == bindparam("_id"))
            .values(updated_at=now),
            changed,
        )
    ids = {e: int(row[0]) for e, row in current.items()}
    ids.update(new_ids)
    order_id = np.array([ids[e] for e in orders.external_id], dtype=np.int64)
    known = set(current)
    is_old = np.array([e in known for e in orders.external_id], dtype=bool)
    counts.lines_written = _sync_items(session, order_id, is_old, items)
    return counts


def _write_fresh(
    session: Session, orders: OrderColumns, rows: list[int], now: datetime
) -> dict[str, int]:
    """New orders by the columnar bulk path (COPY on PostgreSQL, with ids drawn from the
    table's sequence; raw executemany on SQLite), external id -> id. An order another
    transaction inserts meanwhile makes the unique index refuse the batch: the import fails
    whole and can simply be run again."""
    count = len(rows)
    take = np.array(rows, dtype=np.int64)
    external = [orders.external_id[i] for i in rows]
    zeros = np.zeros(count, dtype=np.int64)
    columns: dict[str, Any] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        drawn = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('orders', 'id')) FROM generate_series(1, :n)"
            ),
            {"n": count},
        ).scalars()
        columns["id"] = np.fromiter((int(i) for i in drawn), dtype=np.int64, count=count)
    write_columns(
        session,
        Order.__table__,  # type: ignore[arg-type]
        {
            **columns,
            "external_id": external,
            "customer_id": orders.customer_id[take],
            "status": [orders.status[i] for i in rows],
            "currency": [orders.currency[i] for i in rows],
            "subtotal_minor": orders.subtotal_minor[take],
            "discount_minor": zeros,
            "shipping_minor": zeros,
            "tax_minor": zeros,
            "total_minor": orders.total_minor[take],
            "placed_at": orders.placed_at[take],
            "cancelled_at": orders.cancelled_at[take],
            "updated_at": [now] * count,
        },
    )
    if postgres:
        return dict(zip(external, columns["id"].tolist(), strict=True))
    return order_ids(session, external)


def _sync_items(
    session: Session, order_id: np.ndarray, is_old: np.ndarray, items: ItemColumns
) -> int:
    line_order = order_id[items.order]
    line_old = is_old[items.order]
    replace: set[int] = set()
    old_ids = order_id[is_old].tolist()
    if old_ids:
        stored: dict[int, set[tuple[int, int, int]]] = defaultdict(set)
        query = select(
            OrderItem.order_id,
            OrderItem.product_id,
            OrderItem.quantity,
            OrderItem.unit_price_minor,
            OrderItem.discount_minor,
        )
        for oid, pid, qty, price, discount in rows_by_keys(
            session, query, OrderItem.order_id, old_ids
        ):
            stored[int(oid)].add((int(pid), int(qty), int(price) if not discount else -1))
        wanted: dict[int, set[tuple[int, int, int]]] = defaultdict(set)
        for oid, pid, qty, price in zip(
            line_order[line_old].tolist(),
            items.product_id[line_old].tolist(),
            items.quantity[line_old].tolist(),
            items.unit_price_minor[line_old].tolist(),
            strict=True,
        ):
            wanted[oid].add((pid, qty, price))
        replace = {oid for oid in old_ids if stored.get(oid, set()) != wanted.get(oid, set())}
        doomed = sorted(replace)
        for start in range(0, len(doomed), CHUNK):
            session.execute(
                delete(OrderItem)
                .where(OrderItem.order_id.in_(doomed[start : start + CHUNK]))
                .execution_options(synchronize_session=False)
            )
    write = ~line_old
    if replace:
        write |= np.isin(line_order, np.fromiter(replace, dtype=np.int64))
    if not write.any():
        return 0
    session.flush()
    return write_columns(
        session,
        OrderItem.__table__,  # type: ignore[arg-type]
        {
            "order_id": line_order[write],
            "product_id": items.product_id[write],
            "quantity": items.quantity[write],
            "unit_price_minor": items.unit_price_minor[write],
            "discount_minor": np.zeros(int(write.sum()), dtype=np.int64),
        },
    )
