"""Several short reads in one round trip.

A customer's page needs a handful of short lists from different tables (identities, consents,
milestones, an order's payments and shipments …), each an indexed read of a few rows. On
PostgreSQL such a read costs far more in the round trip (and in the wait for the server's
process to be scheduled, on a busy machine) than in the work, so they are sent as one
``UNION ALL``: each part keeps its own columns (the other parts' are typed NULLs, so results
still go through every column's type: decryption, UTC datetimes), and its own order (a
``row_number()`` over the part's ordering). The answer is split back into one list a part.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, cast, func, literal_column, null, select, union_all
from sqlalchemy.orm import Session

Part = tuple[Select[Any], Sequence[Any]]  # (what to read, the columns it is ordered by)


def read_together(session: Session, parts: Mapping[str, Part]) -> dict[str, list[Any]]:
    """The rows of every part (attribute access by column name), in one statement."""
    names = list(parts)
    keys = [[str(c.key) for c in parts[name][0].selected_columns] for name in names]
    slots: list[tuple[int, str, Any]] = []  # (part, column name, type), a result column each
    for index, name in enumerate(names):
        slots.extend((index, str(c.key), c.type) for c in parts[name][0].selected_columns)
    branches = []
    for index, name in enumerate(names):
        statement, ordering = parts[name]
        own = statement.selected_columns
        columns: list[ColumnElement[Any]] = [
            literal_column(str(index)).label("part"),
            func.row_number().over(order_by=list(ordering)).label("position"),
        ]
        for slot, (owner, key, type_) in enumerate(slots):
            value = own[key] if owner == index else cast(null(), type_)
            columns.append(value.label(f"c{slot}"))
        branches.append(statement.with_only_columns(*columns))
    combined = union_all(*branches).subquery()
    shapes = [namedtuple(f"{name.title()}Row", k) for name, k in zip(names, keys, strict=True)]
    spans = _spans(slots, len(names))
    found: dict[str, list[Any]] = {name: [] for name in names}
    statement = select(combined).order_by(combined.c.part, combined.c.position)
    for row in session.execute(statement):
        index = row[0]
        start, stop = spans[index]
        found[names[index]].append(shapes[index](*row[2 + start : 2 + stop]))
    return found


def _spans(slots: Sequence[tuple[int, str, Any]], parts: int) -> list[tuple[int, int]]:
    """Where each part's columns sit among the result columns (after part and position)."""
    spans = []
    for index in range(parts):
        mine = [slot for slot, (owner, _, _) in enumerate(slots) if owner == index]
        spans.append((mine[0], mine[-1] + 1) if mine else (0, 0))
    return spans
