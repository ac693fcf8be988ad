"""Bulk writes of tracked events (historical imports, the demo shop).

Batches are columns (see `patronage.kit.bulkwrite`): `properties` and `context` as JSON
text (or dicts), `message_id` unique. Rows must already be valid Segment-spec messages;
the tracking API, not this, validates what clients send.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.collect.models import Event
from patronage.kit.bulkwrite import (
    BulkWriteError,
    ColumnData,
    Prepared,
    prepare_columns,
    write_columns,
)

TABLES: dict[str, Table] = {"events": Event.__table__}  # type: ignore[dict-item]


def prepare_batch(table: str, columns: Mapping[str, ColumnData], dialect: str) -> Prepared:
    """Spell a batch of `table` for `dialect` (another process may do it); see kit.bulkwrite."""
    if table not in TABLES:
        raise BulkWriteError(f"collect has no table {table}")
    return prepare_columns(TABLES[table], columns, dialect)


def insert_events(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """id, message_id, type, name, customer_id, anonymous_id, user_id, properties, context,
    timestamp, received_at (sent_at, source_id optional)."""
    return write_columns(session, TABLES["events"], columns)
