"""Several short reads in one round trip.

A customer's page needs a handful of short lists from different tables (identities, consents,
milestones, an order's payments and shipments …), each an indexed read of a few rows. On
PostgreSQL such a read costs far more in the round trip (and in the wait for the server's
process to be scheduled, on a busy machine) than in the work, so they are sent as one
``UNION ALL``: each part keeps its own columns, its own order (a ``row_number()`` over the
part's ordering), and every column's type (decryption, UTC datetimes), and the answer is
split back into one list a part.

Parts share result columns of the same type (another part's are typed NULLs), which keeps
the statement narrow. Building it is costly (hundreds of elements), so a ``Together`` is
built once (on first use), with bound parameters, and only executed per request.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, cast, func, literal_column, null, select, union_all
from sqlalchemy.orm import Session

Part = tuple[Select[Any], Sequence[Any]]  # (what to read, the columns it is ordered by)


class Together:
    """One ``UNION ALL`` statement reading every part; `read` splits its answer."""

    def __init__(self, parts: Mapping[str, Part]) -> None:
        self.names = list(parts)
        slot_types: list[Any] = []  # the type of each shared result column
        places: list[list[int]] = []  # per part: the slot of each of its columns
        for name in self.names:
            taken: set[int] = set()
            mine = []
            for column in parts[name][0].selected_columns:
                slot = next(
                    (
                        s
                        for s, t in enumerate(slot_types)
                        if s not in taken and _same_type(t, column.type)
                    ),
                    None,
                )
                if slot is None:
                    slot = len(slot_types)
                    slot_types.append(column.type)
                taken.add(slot)
                mine.append(slot)
            places.append(mine)
        branches = []
        for index, name in enumerate(self.names):
            statement, ordering = parts[name]
            own = dict(zip(places[index], statement.selected_columns, strict=True))
            columns: list[ColumnElement[Any]] = [
                literal_column(str(index)).label("part"),
                func.row_number().over(order_by=list(ordering)).label("position"),
            ]
            for slot, type_ in enumerate(slot_types):
                value = own[slot] if slot in own else cast(null(), type_)
                columns.append(value.label(f"c{slot}"))
            branches.append(statement.with_only_columns(*columns))
        combined = union_all(*branches).subquery()
        self.statement = select(combined).order_by(combined.c.part, combined.c.position)
        self.places = [[2 + slot for slot in mine] for mine in places]
        self.shapes = [
            namedtuple(f"{name.title()}Row", [str(c.key) for c in parts[name][0].selected_columns])
            for name in self.names
        ]

    def read(self, session: Session, **params: Any) -> dict[str, list[Any]]:
        """The rows of every part (attribute access by column name), in one statement."""
        found: dict[str, list[Any]] = {name: [] for name in self.names}
        for row in session.execute(self.statement, params):
            index = row[0]
            found[self.names[index]].append(
                self.shapes[index](*[row[i] for i in self.places[index]])
            )
        return found


def _same_type(one: Any, other: Any) -> bool:
    """Whether two columns' values go through exactly the same result processing.

    Compared by class and every attribute: an encrypted column's context (its associated
    data) is not in its repr, and a value decrypted under another column's context fails.
    """
    return type(one) is type(other) and _attributes(one) == _attributes(other)


def _attributes(type_: Any) -> list[tuple[str, str]]:
    # `dispatch` is the type's event registry: one per instance, not part of the type
    return sorted((k, repr(v)) for k, v in vars(type_).items() if k != "dispatch")
