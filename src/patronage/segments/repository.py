"""Every query of the segments capability."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from patronage.segments.models import (
    Persona,
    Segment,
    SegmentMembership,
    SegmentMembershipEvent,
)

CHUNK = 900


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def all_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.family, Segment.name)))


def personas(session: Session) -> list[tuple[int, str, bool]]:
    """(id, name, active) of every persona, active ones first, largest first."""
    rows = session.execute(
        select(Persona.id, Persona.name, Persona.active).order_by(
            Persona.active.desc(), Persona.size.desc(), Persona.id
        )
    )
    return [(int(i), str(n), bool(a)) for i, n, a in rows]


def get(session: Session, segment_id: int) -> Segment | None:
    return session.get(Segment, segment_id)


def by_name(session: Session, name: str) -> Segment | None:
    return session.scalars(select(Segment).where(Segment.name == name)).first()


def by_builtin_key(session: Session) -> dict[str, Segment]:
    rows = session.scalars(select(Segment).where(Segment.builtin_key.is_not(None)))
    return {s.builtin_key: s for s in rows if s.builtin_key}


def add(session: Session, segment: Segment) -> Segment:
    session.add(segment)
    session.flush()
    return segment


def delete(session: Session, segment: Segment) -> None:
    # explicit deletes: SQLite enforces ON DELETE CASCADE only with the pragma, and bulk
    # deletes are quicker than the ORM's row by row
    for model in (SegmentMembershipEvent, SegmentMembership):
        session.execute(model.__table__.delete().where(model.segment_id == segment.id))  # type: ignore[attr-defined]
    session.delete(segment)
    session.flush()


def current_members(session: Session, segment_id: int) -> set[int]:
    return set(
        session.scalars(
            select(SegmentMembership.customer_id).where(
                SegmentMembership.segment_id == segment_id, SegmentMembership.left_at.is_(None)
            )
        )
    )


def current_of(
    session: Session, customer_ids: Sequence[int], segment_ids: Sequence[int]
) -> set[tuple[int, int]]:
    """(segment id, customer id) of the current memberships of these customers."""
    found: set[tuple[int, int]] = set()
    for chunk in _chunks(list(customer_ids)):
        stmt = select(SegmentMembership.segment_id, SegmentMembership.customer_id).where(
            SegmentMembership.customer_id.in_(chunk), SegmentMembership.left_at.is_(None)
        )
        if len(segment_ids) < CHUNK:
            stmt = stmt.where(SegmentMembership.segment_id.in_(list(segment_ids)))
        found.update((s, c) for s, c in session.execute(stmt))
    wanted = set(segment_ids)
    return {pair for pair in found if pair[0] in wanted}


def segments_of(session: Session, customer_id: int) -> list[tuple[int, datetime]]:
    return [
        (s, at)
        for s, at in session.execute(
            select(SegmentMembership.segment_id, SegmentMembership.entered_at).where(
                SegmentMembership.customer_id == customer_id, SegmentMembership.left_at.is_(None)
            )
        )
    ]


def enter(session: Session, pairs: Sequence[tuple[int, int]], at: datetime) -> None:
    if not pairs:
        return
    session.execute(
        insert(SegmentMembership),
        [{"segment_id": s, "customer_id": c, "entered_at": at, "left_at": None} for s, c in pairs],
    )


def leave(session: Session, segment_id: int, customer_ids: Sequence[int], at: datetime) -> None:
    for chunk in _chunks(list(customer_ids)):
        session.execute(
            update(SegmentMembership)
            .where(
                SegmentMembership.segment_id == segment_id,
                SegmentMembership.customer_id.in_(chunk),
                SegmentMembership.left_at.is_(None),
            )
            .values(left_at=at)
            .execution_options(synchronize_session=False)
        )


def log(session: Session, rows: Sequence[tuple[int, int, str]], at: datetime) -> None:
    if not rows:
        return
    session.execute(
        insert(SegmentMembershipEvent),
        [{"segment_id": s, "customer_id": c, "kind": k, "at": at} for s, c, k in rows],
    )


def bump_sizes(session: Session, deltas: dict[int, int]) -> None:
    """size += delta per segment, in one statement (atomic against concurrent refreshes)."""
    rows = [{"b_id": sid, "b_delta": d} for sid, d in sorted(deltas.items()) if d]
    if rows:
        t = cast(Table, Segment.__table__)
        session.execute(
            t.update()
            .where(t.c.id == bindparam("b_id"))
            .values(size=t.c.size + bindparam("b_delta")),
            rows,
        )


def signature(session: Session) -> tuple[Any, ...]:
    """Changes whenever a segment is created, deleted or changed (rule, topics: updates
    touch `updated_at`), for caches of parsed rules."""
    row = session.execute(
        select(func.count(), func.max(Segment.id), func.max(Segment.updated_at))
    ).one()
    return tuple(row)


def members_page(
    session: Session, segment_id: int, offset: int, limit: int
) -> tuple[list[tuple[int, datetime]], int]:
    where = (SegmentMembership.segment_id == segment_id, SegmentMembership.left_at.is_(None))
    total = session.execute(select(func.count()).where(*where)).scalar_one()
    rows = session.execute(
        select(SegmentMembership.customer_id, SegmentMembership.entered_at)
        .where(*where)
        .order_by(SegmentMembership.customer_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [(c, at) for c, at in rows], total


def daily_moves(session: Session, segment_id: int, since: datetime) -> list[tuple[str, str, int]]:
    """(UTC day as YYYY-MM-DD, kind, count) of entries and exits since `since`."""
    day = func.date(SegmentMembershipEvent.at)
    rows = session.execute(
        select(day, SegmentMembershipEvent.kind, func.count())
        .where(SegmentMembershipEvent.segment_id == segment_id, SegmentMembershipEvent.at >= since)
        .group_by(day, SegmentMembershipEvent.kind)
        .order_by(day)
    ).all()
    return [(str(d), k, int(n)) for d, k, n in rows]


def events_since(session: Session, after_id: int, limit: int) -> list[SegmentMembershipEvent]:
    return list(
        session.scalars(
            select(SegmentMembershipEvent)
            .where(SegmentMembershipEvent.id > after_id)
            .order_by(SegmentMembershipEvent.id)
            .limit(limit)
        )
    )


def moves_since(session: Session, since: datetime) -> dict[int, tuple[int, int]]:
    """Per segment: (entries, exits) since `since`."""
    out: dict[int, list[int]] = {}
    for sid, kind, n in session.execute(
        select(SegmentMembershipEvent.segment_id, SegmentMembershipEvent.kind, func.count())
        .where(SegmentMembershipEvent.at >= since)
        .group_by(SegmentMembershipEvent.segment_id, SegmentMembershipEvent.kind)
    ):
        out.setdefault(sid, [0, 0])[0 if kind == "entered" else 1] += int(n)
    return {sid: (a, b) for sid, (a, b) in out.items()}
