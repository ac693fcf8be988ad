"""All queries of the collect capability.

The event insert is the hot path of the tracking API: one multi-row statement per batch
through the driver (no ORM objects), ON CONFLICT (message_id) DO NOTHING RETURNING the
message ids that were new, so retries never store a row or run a side effect twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, delete, func, select, text, update
from sqlalchemy.orm import Session

from patronage.collect.models import Event, LandedBatch

COLUMNS = (
    "message_id",
    "type",
    "name",
    "customer_id",
    "anonymous_id",
    "user_id",
    "source_id",
    "properties",
    "context",
    "timestamp",
    "sent_at",
    "received_at",
)
EventRow = tuple[
    str, str, str | None, int | None, str | None, str | None, int | None, str, str,
    datetime, datetime | None, datetime,
]  # fmt: skip


def latest_for_customer(session: Session, customer_id: int, limit: int) -> list[Row[Any]]:
    """What a profile shows of the latest events (not their context: parsing it is costly)."""
    stmt = (
        select(Event.type, Event.name, Event.timestamp, Event.properties)
        .where(Event.customer_id == customer_id)
        .order_by(Event.timestamp.desc(), Event.id.desc())
        .limit(limit)
    )
    return list(session.execute(stmt))


def existing_message_ids(session: Session, message_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start : start + 500]
        found.update(session.scalars(select(Event.message_id).where(Event.message_id.in_(chunk))))
    return found


@lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    values = ", ".join(["(" + ", ".join("?" for _ in COLUMNS) + ")"] * rows)
    return (
        f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES {values} "  # noqa: S608 (no user text)
        "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
    )


# PostgreSQL: one array per column, whatever the number of rows: a single prepared statement;
# binary parameters (%b), as text arrays would escape every quote of the JSON
_PG_TYPES = (
    "text", "text", "text", "bigint", "text", "text", "bigint", "jsonb", "jsonb",
    "timestamptz", "timestamptz", "timestamptz",
)  # fmt: skip
_PG_INSERT = (
    f"INSERT INTO events ({', '.join(COLUMNS)}) "  # noqa: S608 (no user text in the SQL)
    "SELECT * FROM unnest("
    + ", ".join(f"%b::text[]::{t}[]" if t == "jsonb" else f"%b::{t}[]" for t in _PG_TYPES)
    + ") ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)


def _sqlite_time(value: datetime | None) -> str | None:
    # the storage format of SQLAlchemy's SQLite DATETIME (naive UTC), so ORM reads agree
    return value.isoformat(" ", "microseconds")[:26] if value is not None else None


def insert_events(session: Session, rows: list[EventRow]) -> set[str]:
    """Insert new events; returns the message ids that were not stored before."""
    if not rows:
        return set()
    connection = session.connection()
    dialect = connection.dialect.name
    # a stable order: two batches sharing messages lock them in the same order (no deadlock)
    rows = sorted(rows, key=lambda r: r[0])
    inserted: set[str] = set()
    cursor: Any = connection.connection.cursor()
    try:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            if dialect == "postgresql":
                cursor.execute(_PG_INSERT, [list(column) for column in zip(*chunk, strict=True)])
            else:
                params: list[Any] = []
                times: dict[datetime | None, str | None] = {None: None}
                for row in chunk:
                    params.extend(row[:9])
                    for value in row[9:12]:  # sentAt and receivedAt repeat within a batch
                        text = times.get(value)
                        if text is None and value is not None:
                            text = times[value] = _sqlite_time(value)
                        params.append(text)
                cursor.execute(_insert_sql(len(chunk)), params)
            inserted.update(r[0] for r in cursor.fetchall())
    finally:
        cursor.close()
    return inserted


def reassign_events(session: Session, from_id: int, into_id: int) -> int:
    result = session.execute(
        update(Event)
        .where(Event.customer_id == from_id)
        .values(customer_id=into_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def count_events(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Event)) or 0)


EXPORT_COLUMNS = (
    "id",
    "message_id",
    "type",
    "name",
    "customer_id",
    "anonymous_id",
    "user_id",
    "source_id",
    "properties",
    "context",
    "timestamp",
    "sent_at",
    "received_at",
)


def events_after(
    session: Session, last_id: int, since: datetime | None, limit: int
) -> list[tuple[Any, ...]]:
    """The next `limit` events by id after `last_id` (the export's keyset), EXPORT_COLUMNS."""
    stmt = select(*(getattr(Event, c) for c in EXPORT_COLUMNS)).where(Event.id > last_id)
    if since is not None:
        stmt = stmt.where(Event.timestamp >= since)
    return [tuple(r) for r in session.execute(stmt.order_by(Event.id).limit(limit))]


# -- the landing table: what the tracking API accepted, waiting for the processor -----------

# digest, source id, source name, received at, messages, payload
LandingRow = tuple[str, int | None, str, datetime, int, str]
_LAND = (
    "INSERT INTO landed_batches "
    "(digest, source_id, source_name, received_at, messages, done, payload) "
    "VALUES (:digest, :source_id, :source_name, :received_at, :messages, 0, :payload) "
    "ON CONFLICT (digest) DO NOTHING"
)


def land(session: Session, row: LandingRow) -> None:
    """Append one request's accepted messages; the same messages landed before (a retried
    request) land nothing."""
    digest, source_id, source_name, received_at, messages, payload = row
    at: Any = received_at
    if session.get_bind().dialect.name == "sqlite":
        at = _sqlite_time(received_at)
    session.execute(
        text(_LAND),
        {
            "digest": digest,
            "source_id": source_id,
            "source_name": source_name,
            "received_at": at,
            "messages": messages,
            "payload": payload,
        },
    )


def any_landed(session: Session) -> bool:
    stmt = select(LandedBatch.id).where(LandedBatch.failed.is_(None)).limit(1)
    return session.scalar(stmt) is not None


def newest_landing(session: Session) -> int | None:
    return session.scalar(select(func.max(LandedBatch.id)))


def landed(session: Session, limit: int) -> list[Row[Any]]:
    """The oldest rows waiting for the processor, in landing order, as many as hold `limit`
    messages still to process (at least one row)."""
    oldest = (
        select(
            LandedBatch.id,
            (LandedBatch.messages - LandedBatch.done).label("left"),
        )
        .where(LandedBatch.failed.is_(None))
        .order_by(LandedBatch.id)
        .limit(limit)  # every row holds one message at least
        .subquery()
    )
    upto = (
        select(
            oldest.c.id,
            func.sum(oldest.c.left).over(order_by=oldest.c.id).label("upto"),
            oldest.c.left,
        )
    ).subquery()
    taken = select(upto.c.id).where(upto.c.upto - upto.c.left < limit)
    stmt = (
        select(
            LandedBatch.id,
            LandedBatch.digest,
            LandedBatch.source_id,
            LandedBatch.source_name,
            LandedBatch.received_at,
            LandedBatch.done,
            LandedBatch.payload,
        )
        .where(LandedBatch.id.in_(taken))
        .order_by(LandedBatch.id)
    )
    return list(session.execute(stmt))


def delete_landed(session: Session, ids: Sequence[int]) -> None:
    if session.get_bind().dialect.name == "postgresql":  # one array, not 1,000 parameters
        session.execute(text("DELETE FROM landed_batches WHERE id = ANY(:ids)"), {"ids": list(ids)})
        return
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        session.execute(delete(LandedBatch).where(LandedBatch.id.in_(chunk)))


def mark_done(session: Session, landing_id: int, done: int) -> None:
    """`done` messages of the row are processed (it is being processed one at a time)."""
    session.execute(update(LandedBatch).where(LandedBatch.id == landing_id).values(done=done))


def set_aside(session: Session, row: LandingRow, reason: str) -> None:
    """A message that failed on its own: kept in a row of its own, never retried."""
    land(session, row)
    session.execute(
        update(LandedBatch).where(LandedBatch.digest == row[0]).values(failed=reason[:200])
    )


def count_landed(session: Session) -> tuple[int, int]:
    """(waiting, set aside) messages in the landing table."""
    left = func.coalesce(func.sum(LandedBatch.messages - LandedBatch.done), 0)
    stmt = select(LandedBatch.failed.is_(None), left).group_by(LandedBatch.failed.is_(None))
    counts = {bool(waiting): int(n) for waiting, n in session.execute(stmt)}
    return counts.get(True, 0), counts.get(False, 0)
