"""Bulk writes of categories and products (catalogue imports, the demo shop).

Batches are columns (see `patronage.kit.bulkwrite`); rows must already be valid. Categories
carry their materialised path ("/1/4/9/"), so a batch must come parents first.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.catalog.models import Category, Product
from patronage.kit.bulkwrite import (
    BulkWriteError,
    ColumnData,
    Prepared,
    prepare_columns,
    write_columns,
)

TABLES: dict[str, Table] = {
    "categories": Category.__table__,  # type: ignore[dict-item]
    "products": Product.__table__,  # type: ignore[dict-item]
}


def prepare_batch(table: str, columns: Mapping[str, ColumnData], dialect: str) -> Prepared:
    """Spell a batch of `table` for `dialect` (another process may do it); see kit.bulkwrite."""
    if table not in TABLES:
        raise BulkWriteError(f"catalog has no table {table}")
    return prepare_columns(TABLES[table], columns, dialect)


def insert_categories(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, external_id, name, parent_id, path."""
    return write_columns(session, TABLES["categories"], columns)


def insert_products(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, external_id, name, category_id, seller_id, price_minor, currency, stock, …"""
    return write_columns(session, TABLES["products"], columns)
