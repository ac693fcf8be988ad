"""Bulk writes of support tickets (help-desk imports, the demo shop)."""

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
from patronage.support.models import Ticket

TABLES: dict[str, Table] = {"tickets": Ticket.__table__}  # type: ignore[dict-item]


def prepare_batch(table: str, columns: Mapping[str, ColumnData], dialect: str) -> Prepared:
    """Spell a batch of `table` for `dialect` (another process may do it); see kit.bulkwrite."""
    if table not in TABLES:
        raise BulkWriteError(f"support has no table {table}")
    return prepare_columns(TABLES[table], columns, dialect)


def insert_tickets(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, customer_id, order_id, channel, topic, status, opened_at, solved_at."""
    return write_columns(session, TABLES["tickets"], columns)
