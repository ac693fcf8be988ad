"""All queries of the analytics capability."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from patronage.analytics.models import (
    AnalyticsRefresh,
    CustomerFeatures,
    CustomerScore,
    RfmScore,
    StatsSnapshot,
)
from patronage.kit import bulkwrite

# pg_advisory_xact_lock key serialising snapshot writers (any constant unique to this use)
_SNAPSHOT_LOCK = 0x5A7_0001


def latest_snapshot(session: Session) -> StatsSnapshot | None:
    stmt = select(StatsSnapshot).order_by(StatsSnapshot.computed_at.desc(), StatsSnapshot.id.desc())
    return session.scalars(stmt.limit(1)).first()


def lock_snapshots(session: Session) -> None:
    """Serialise snapshot writers until the transaction ends.

    PostgreSQL: an advisory lock. SQLite serialises writers itself (the DELETE that follows
    takes the database's write lock, and a second writer waits for the first to commit).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_SNAPSHOT_LOCK)))


def delete_between(session: Session, start: datetime, end: datetime) -> int:
    result = session.execute(
        delete(StatsSnapshot).where(
            StatsSnapshot.computed_at >= start, StatsSnapshot.computed_at < end
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def count_between(session: Session, start: datetime, end: datetime) -> int:
    stmt = select(func.count()).where(
        StatsSnapshot.computed_at >= start, StatsSnapshot.computed_at < end
    )
    return int(session.scalar(stmt) or 0)


def add(session: Session, snapshot: StatsSnapshot) -> StatsSnapshot:
    session.add(snapshot)
    session.flush()
    return snapshot


# --- derived tables of the analytics refresh (features, RFM, scores, refresh log) ---


def segments_by_customer(session: Session) -> dict[int, str]:
    rows = session.execute(select(RfmScore.customer_id, RfmScore.segment))
    return {int(cid): str(seg) for cid, seg in rows}


DERIVED = {"features": CustomerFeatures, "rfm": RfmScore, "scores": CustomerScore}


def replace_table(
    session: Session,
    which: str,
    computed_at: datetime,
    columns: Mapping[str, Sequence[Any]],
    chunk: int = 50_000,
) -> None:
    """Swap one derived table's contents (DERIVED) for the rows given as columns, every row
    stamped `computed_at`, inside the caller's transaction.

    Columnar bulk writes (kit.bulkwrite: executemany on SQLite, binary COPY on PostgreSQL):
    the ORM's insert costs tens of microseconds a row, minutes for a million customers.
    """
    model = DERIVED[which]
    session.flush()
    session.execute(delete(model))
    table = cast(Table, model.__table__)
    rows = len(columns["customer_id"])
    for lo in range(0, rows, chunk):
        part: dict[str, Any] = {name: v[lo : lo + chunk] for name, v in columns.items()}
        part["computed_at"] = np.full(len(part["customer_id"]), _us(computed_at))
        bulkwrite.write_columns(session, table, part)


def _us(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "us")


def add_refresh(session: Session, refresh: AnalyticsRefresh) -> AnalyticsRefresh:
    session.add(refresh)
    session.flush()
    return refresh


def latest_refresh(session: Session) -> AnalyticsRefresh | None:
    stmt = select(AnalyticsRefresh).order_by(
        AnalyticsRefresh.computed_at.desc(), AnalyticsRefresh.id.desc()
    )
    return session.scalars(stmt.limit(1)).first()


def customer_rows(
    session: Session, customer_id: int
) -> tuple[CustomerFeatures | None, RfmScore | None, CustomerScore | None]:
    return (
        session.get(CustomerFeatures, customer_id),
        session.get(RfmScore, customer_id),
        session.get(CustomerScore, customer_id),
    )


def rfm_grid(session: Session) -> list[tuple[int, int, int]]:
    """(r, f, customers) cells."""
    stmt = select(RfmScore.r, RfmScore.f, func.count()).group_by(RfmScore.r, RfmScore.f)
    return [(int(r), int(f), int(n)) for r, f, n in session.execute(stmt)]


def segment_counts(session: Session) -> dict[str, int]:
    stmt = select(RfmScore.segment, func.count()).group_by(RfmScore.segment)
    return {str(s): int(n) for s, n in session.execute(stmt)}


def clv_values(session: Session) -> list[float]:
    stmt = select(CustomerScore.clv_minor).where(CustomerScore.clv_minor.is_not(None))
    return [float(v) for v in session.scalars(stmt) if v is not None]


def top_clv(session: Session, limit: int) -> list[CustomerScore]:
    stmt = (
        select(CustomerScore)
        .where(CustomerScore.clv_minor.is_not(None))
        .order_by(CustomerScore.clv_minor.desc(), CustomerScore.customer_id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def top_churn_risk(session: Session, limit: int) -> list[CustomerScore]:
    stmt = (
        select(CustomerScore)
        .where(CustomerScore.churn_risk.is_not(None))
        .order_by(CustomerScore.churn_risk.desc(), CustomerScore.customer_id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
