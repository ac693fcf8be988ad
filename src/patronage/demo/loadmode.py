"""Bulk-load mode for filling empty tables fast, and wiping them for a fresh demo.

Loading tens of millions of rows is several times faster without secondary indexes and
foreign-key checks; both come back at the end, built in one pass each. The tables must be
empty when loading starts and the rows correct by construction (the demo's are). Primary
keys and unique constraints stay in force throughout.

If a load is killed half-way, `restore` (run at the start of every demo) puts back whatever
index or foreign key is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Constraint,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.schema import (
    AddConstraint,
    CreateIndex,
    DropConstraint,
    DropIndex,
    ExecutableDDLElement,
)

from patronage.db import Base
from patronage.migrations import import_models

Step = Callable[[str], None]  # told about each index or key as it is rebuilt


def tables(names: Sequence[str]) -> list[Table]:
    import_models()
    return [Base.metadata.tables[name] for name in names]


def wipe_tables(keep_modules: Sequence[str] = ("patronage.auth.",)) -> list[Table]:
    """Every table except those of `keep_modules` (staff users, tokens, the audit log)."""
    import_models()
    kept = {
        str(mapper.class_.__tablename__)
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.startswith(tuple(keep_modules))
    }
    return [t for t in Base.metadata.sorted_tables if t.name not in kept]


def secondary_indexes(targets: Sequence[Table]) -> list[Index]:
    return [
        ix for t in targets for ix in sorted(t.indexes, key=lambda i: str(i.name)) if not ix.unique
    ]


def _unique_indexes(targets: Sequence[Table]) -> list[Index]:
    return [ix for t in targets for ix in sorted(t.indexes, key=lambda i: str(i.name)) if ix.unique]


def _keys(targets: Sequence[Table]) -> list[Constraint]:
    """Primary keys, then unique constraints."""
    primary: list[Constraint] = [t.primary_key for t in targets if t.primary_key.columns]
    unique: list[Constraint] = [
        c for t in targets for c in t.constraints if isinstance(c, UniqueConstraint)
    ]
    return primary + sorted(unique, key=lambda c: str(c.name))


def _foreign_keys(targets: Sequence[Table]) -> list[ForeignKeyConstraint]:
    """The targets' foreign keys and every other table's that points into a target."""
    names = {t.name for t in targets}
    found: dict[str, ForeignKeyConstraint] = {}
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_key_constraints:
            if table.name in names or fk.referred_table.name in names:
                found[str(fk.name)] = fk
    return list(found.values())


def rebuild_steps(connection: Connection, targets: Sequence[Table]) -> int:
    """How many indexes and keys `restore` builds after a load."""
    count = len(secondary_indexes(targets))
    if connection.dialect.name == "postgresql":
        count += len(_unique_indexes(targets)) + len(_keys(targets)) + len(_foreign_keys(targets))
    return count


@contextmanager
def bulk_load(
    connection: Connection, targets: Sequence[Table], step: Step | None = None
) -> Iterator[None]:
    """Drop the targets' secondary indexes (on PostgreSQL also their keys and the foreign
    keys to and from them: built afterwards in one pass each, several times faster than
    maintained row by row); put everything back at the end, whatever happens."""
    postgres = connection.dialect.name == "postgresql"
    raw: Any = connection.connection.driver_connection
    if postgres:
        connection.exec_driver_sql("SET synchronous_commit = off")
        existing = set(inspect(connection).get_table_names())
        for fk in _foreign_keys(targets):
            if fk.table.name in existing:
                connection.execute(DropConstraint(fk, if_exists=True))
    else:
        connection.commit()
        raw.execute("PRAGMA foreign_keys = OFF")  # only takes effect outside a transaction
        raw.execute("PRAGMA synchronous = OFF")
        raw.execute("PRAGMA cache_size = -262144")  # 256 MiB while loading
    for index in secondary_indexes(targets):
        connection.execute(DropIndex(index, if_exists=True))
    if postgres:
        for index in _unique_indexes(targets):
            connection.execute(DropIndex(index, if_exists=True))
        for key in reversed(_keys(targets)):
            connection.execute(DropConstraint(key, if_exists=True))
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        try:
            restore(connection, targets, step)
        finally:
            if postgres:
                connection.exec_driver_sql("SET synchronous_commit = on")
                connection.commit()
            else:
                raw.execute("PRAGMA foreign_keys = ON")
                raw.execute("PRAGMA synchronous = NORMAL")
                raw.execute("PRAGMA cache_size = -2000")


def restore(connection: Connection, targets: Sequence[Table], step: Step | None = None) -> None:
    """Create every key, index and foreign key of `targets` that is missing."""
    postgres = connection.dialect.name == "postgresql"
    inspector = inspect(connection)
    if postgres:
        connection.exec_driver_sql("SET maintenance_work_mem = '256MB'")
        existing = set(inspector.get_table_names())
        for key in _keys(targets):
            table = key.table.name
            if isinstance(key, PrimaryKeyConstraint):
                present = inspector.get_pk_constraint(table).get("name") == key.name
            else:
                present = key.name in {u["name"] for u in inspector.get_unique_constraints(table)}
            _build(connection, AddConstraint(key), str(key.name), present, step)
        for index in _unique_indexes(targets):
            _build(connection, CreateIndex(index, if_not_exists=True), str(index.name), False, step)
    for index in secondary_indexes(targets):
        _build(connection, CreateIndex(index, if_not_exists=True), str(index.name), False, step)
    if postgres:
        for fk in _foreign_keys(targets):
            if fk.table.name not in existing:
                continue
            present = fk.name in {f["name"] for f in inspector.get_foreign_keys(fk.table.name)}
            _build(connection, AddConstraint(fk), str(fk.name), present, step)


def _build(
    connection: Connection, ddl: ExecutableDDLElement, name: str, present: bool, step: Step | None
) -> None:
    if step:
        step(name)
    if not present:
        connection.execute(ddl)
        connection.commit()


def analyze(connection: Connection, targets: Sequence[Table]) -> None:
    """Fresh planner statistics after a load (sampled: seconds, not minutes)."""
    if connection.dialect.name == "postgresql":
        for table in targets:
            connection.exec_driver_sql(f'ANALYZE "{table.name}"')
    else:
        connection.exec_driver_sql("PRAGMA analysis_limit = 1000")
        connection.exec_driver_sql("ANALYZE")
    connection.commit()


def wipe(connection: Connection, targets: Sequence[Table]) -> None:
    """Delete every row of `targets` (children first) and restart their ids."""
    if connection.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in targets)
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        connection.commit()
        return
    connection.commit()
    raw: Any = connection.connection.driver_connection
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        for table in reversed(list(targets)):
            connection.execute(text(f'DELETE FROM "{table.name}"'))  # noqa: S608 (schema names)
        connection.commit()
    finally:
        raw.execute("PRAGMA foreign_keys = ON")
