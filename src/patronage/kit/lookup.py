"""Rows whose key is one of many: the lookup every bulk upsert starts with.

``column IN (:k1, …, :k2000)`` is what SQLite wants, but on PostgreSQL that list is a
row-by-row linear search when the planner believes the table is small, as it does for
a table filled earlier in the same transaction (importing CDNOW's 70k orders took 39 s).
A single array parameter (``column = ANY(:keys)``) is hashed by PostgreSQL and needs no
bind parameter per key, so the chunks are large too: the same import takes 6.7 s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import Row, Select, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

SQLITE_CHUNK = 2_000  # far below SQLite's bind-parameter limit
POSTGRES_CHUNK = 50_000

Columns = TypeVarTuple("Columns")


def rows_by_keys(
    session: Session,
    query: Select[*Columns],
    column: InstrumentedAttribute[Any],
    keys: Sequence[Any],
) -> Iterator[Row[*Columns]]:
    """The rows of ``query`` whose ``column`` is one of ``keys``, fetched in chunks."""
    if session.get_bind().dialect.name == "postgresql":
        where = column == any_(bindparam("keys", type_=ARRAY(column.type)))
        size = POSTGRES_CHUNK
    else:
        where = column.in_(bindparam("keys", expanding=True))
        size = SQLITE_CHUNK
    statement = query.where(where)
    for start in range(0, len(keys), size):
        yield from session.execute(statement, {"keys": list(keys[start : start + size])})
