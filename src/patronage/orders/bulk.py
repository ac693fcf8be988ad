"""Bulk writes of the commerce facts (order imports, the demo shop).

Batches are columns (see `patronage.kit.bulkwrite`); amounts are integer minor units and
rows must already be valid. Write parents before children (orders, then their items,
payments, shipments; returns before their refunds) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.kit.bulkwrite import (
    BulkWriteError,
    ColumnData,
    Prepared,
    prepare_columns,
    write_columns,
)
from patronage.orders.models import Order, OrderItem, Payment, Refund, Return, Review, Shipment

TABLES: dict[str, Table] = {
    "orders": Order.__table__,  # type: ignore[dict-item]
    "order_items": OrderItem.__table__,  # type: ignore[dict-item]
    "payments": Payment.__table__,  # type: ignore[dict-item]
    "shipments": Shipment.__table__,  # type: ignore[dict-item]
    "returns": Return.__table__,  # type: ignore[dict-item]
    "refunds": Refund.__table__,  # type: ignore[dict-item]
    "reviews": Review.__table__,  # type: ignore[dict-item]
}


def prepare_batch(table: str, columns: Mapping[str, ColumnData], dialect: str) -> Prepared:
    """Spell a batch of `table` for `dialect` (another process may do it); see kit.bulkwrite."""
    if table not in TABLES:
        raise BulkWriteError(f"orders has no table {table}")
    return prepare_columns(TABLES[table], columns, dialect)


def insert_orders(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, external_id, customer_id, status, channel, currency, *_minor amounts, placed_at …"""
    return write_columns(session, TABLES["orders"], columns)


def insert_order_items(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, order_id, product_id, quantity, unit_price_minor, discount_minor."""
    return write_columns(session, TABLES["order_items"], columns)


def insert_payments(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, order_id, method, status, amount_minor, created_at (external_id optional)."""
    return write_columns(session, TABLES["payments"], columns)


def insert_shipments(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, order_id, carrier, tracking_number, status, shipped_at, promised_at, delivered_at."""
    return write_columns(session, TABLES["shipments"], columns)


def insert_returns(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, order_id, order_item_id, quantity, reason, status, requested_at, received_at."""
    return write_columns(session, TABLES["returns"], columns)


def insert_refunds(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, order_id, return_id, amount_minor, reason, created_at (external_id optional)."""
    return write_columns(session, TABLES["refunds"], columns)


def insert_reviews(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, customer_id, product_id, order_id, rating, title, body, created_at."""
    return write_columns(session, TABLES["reviews"], columns)
