"""Bulk writes of third-party sellers (marketplace imports, the demo shop)."""

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
from patronage.sellers.models import Seller

TABLES: dict[str, Table] = {"sellers": Seller.__table__}  # type: ignore[dict-item]


def prepare_batch(table: str, columns: Mapping[str, ColumnData], dialect: str) -> Prepared:
    """Spell a batch of `table` for `dialect` (another process may do it); see kit.bulkwrite."""
    if table not in TABLES:
        raise BulkWriteError(f"sellers has no table {table}")
    return prepare_columns(TABLES[table], columns, dialect)


def insert_sellers(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, external_id, name, country, status, joined_at."""
    return write_columns(session, TABLES["sellers"], columns)
