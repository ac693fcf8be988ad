"""Columnar bulk writes: millions of rows per minute on SQLite and PostgreSQL.

The ORM costs tens of microseconds a row; imports and the demo shop write tens of millions.
A batch arrives as columns (NumPy arrays or lists, one per table column) and goes to the
driver without building an object per row: SQLite gets `executemany` on the raw DBAPI
connection, PostgreSQL a binary `COPY ... FROM STDIN` assembled here with NumPy, a column
at a time. Both run inside the caller's transaction: the caller decides when to commit.

Writing is two steps so the costly one can run elsewhere: `prepare_columns` spells every
value for the database (no connection needed: another process may do it, the result
pickles cheaply), `write_prepared` sends it.

Values are taken as given: a column's type decides only how it is spelled for the driver.
Datetimes are NumPy ``datetime64`` (UTC; NaT is NULL) or aware ``datetime`` objects; JSON
columns take serialised strings (or dicts and lists, serialised here); NULL is ``None``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Column as SAColumn
from sqlalchemy.types import TypeDecorator, TypeEngine

ColumnData = np.ndarray | Sequence[Any]

NULL = r"\N"
_COPY_SPECIALS = ("\\", "\t", "\n", "\r")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_PG_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_BINARY_TRAILER = b"\xff\xff"


class BulkWriteError(ValueError):
    """The batch is malformed (unknown column, ragged lengths); nothing was written."""


@dataclass
class Prepared:
    """A batch spelled for one database: picklable, written by `write_prepared`."""

    table: str
    dialect: str  # "sqlite" | "postgresql"
    rows: int
    names: list[str]
    values: list[list[Any]]  # SQLite: one list of driver values per column
    payload: bytes = b""  # PostgreSQL: the whole COPY stream
    binary: bool = True  # PostgreSQL: COPY's binary format (else text)


def write_columns(session: Session, table: Table, columns: Mapping[str, ColumnData]) -> int:
    """Insert one batch given as columns; returns the number of rows written.

    Columns the batch leaves out get their Python-side default (one value for the whole
    batch) when they have one, else the database's default or NULL.
    """
    return write_prepared(session, prepare_columns(table, columns, dialect_of(session)))


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def prepare_columns(table: Table, columns: Mapping[str, ColumnData], dialect: str) -> Prepared:
    """Spell a batch for `dialect`, ready to send."""
    rows = _row_count(table, columns)
    names = list(columns)
    values: list[ColumnData] = [columns[name] for name in names]
    for column in table.columns:
        if column.name not in columns and rows:
            default = _python_default(column)
            if default is not None:
                names.append(column.name)
                values.append([default] * rows)
    if dialect == "postgresql":
        targets = [table.columns[name] for name in names]
        kinds = [_binary_kind(c) for c in targets]
        if None in kinds:
            return Prepared(
                table.name, dialect, rows, names, [], _text_copy(targets, values), False
            )
        return Prepared(table.name, dialect, rows, names, [], _binary_copy(kinds, values, rows))
    lists = [
        _sqlite_values(table.columns[name], data) for name, data in zip(names, values, strict=True)
    ]
    return Prepared(table.name, dialect, rows, names, lists)


def write_prepared(session: Session, prepared: Prepared) -> int:
    """Send a prepared batch in the session's transaction; returns the rows written."""
    if prepared.rows == 0:
        return 0
    connection = session.connection()
    if connection.dialect.name != prepared.dialect:
        raise BulkWriteError(
            f"batch prepared for {prepared.dialect}, not {connection.dialect.name}"
        )
    raw = connection.connection.driver_connection
    quoted = ", ".join(f'"{name}"' for name in prepared.names)
    if prepared.dialect == "postgresql":
        options = " (FORMAT BINARY)" if prepared.binary else ""
        sql = f'COPY "{prepared.table}" ({quoted}) FROM STDIN{options}'
        with raw.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            copy.write(prepared.payload)
        return prepared.rows
    marks = ", ".join("?" for _ in prepared.names)
    sql = f'INSERT INTO "{prepared.table}" ({quoted}) VALUES ({marks})'  # noqa: S608
    cursor = raw.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, zip(*prepared.values, strict=True))
    finally:
        cursor.close()
    return prepared.rows


# -- SQLite: staged in a scratch file, merged in one statement per table ---------------------


def stage_sqlite(path: str | Path, batches: Iterable[Prepared]) -> dict[str, int]:
    """Write SQLite batches into a scratch database file of their own (untyped tables, no
    indexes, no journal), so another process can spell and bind the rows while the real
    database is busy; `merge_staged` then copies them. Returns rows per table."""
    connection = sqlite3.connect(str(path))
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        counts: dict[str, int] = {}
        for prepared in batches:
            if prepared.dialect != "sqlite":
                raise BulkWriteError("only SQLite batches can be staged")
            quoted = ", ".join(f'"{name}"' for name in prepared.names)
            connection.execute(f'CREATE TABLE "{prepared.table}" ({quoted})')
            marks = ", ".join("?" for _ in prepared.names)
            connection.executemany(
                f'INSERT INTO "{prepared.table}" ({quoted}) VALUES ({marks})',  # noqa: S608
                zip(*prepared.values, strict=True),
            )
            counts[prepared.table] = prepared.rows
        connection.commit()
        return counts
    finally:
        connection.close()


def merge_staged(session: Session, path: str | Path, tables: Sequence[str]) -> None:
    """Copy the staged `tables` of `path` into the database, in this order, in one
    transaction of its own (attaching a file needs no transaction to be open): commits."""
    session.commit()
    raw: Any = session.connection().connection.driver_connection
    raw.execute("ATTACH DATABASE ? AS staged", (str(path),))
    try:
        for table in tables:
            columns = [row[1] for row in raw.execute(f'PRAGMA staged.table_info("{table}")')]
            if not columns:
                continue
            quoted = ", ".join(f'"{name}"' for name in columns)
            raw.execute(
                f'INSERT INTO main."{table}" ({quoted}) SELECT {quoted} FROM staged."{table}"'  # noqa: S608
            )
        session.commit()
    finally:
        session.rollback()
        raw.execute("DETACH DATABASE staged")


def _row_count(table: Table, columns: Mapping[str, ColumnData]) -> int:
    unknown = [name for name in columns if name not in table.columns]
    if unknown:
        raise BulkWriteError(f"{table.name} has no column(s) {', '.join(unknown)}")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise BulkWriteError(f"{table.name}: columns differ in length ({sorted(lengths)})")
    return lengths.pop() if lengths else 0


def _python_default(column: SAColumn[Any]) -> Any:
    default = column.default
    if default is None or column.primary_key:
        return None
    if getattr(default, "is_callable", False):
        return default.arg(None)  # type: ignore[attr-defined]  # SQLAlchemy wraps fn() as fn(ctx)
    return getattr(default, "arg", None) if getattr(default, "is_scalar", False) else None


def _base_type(column: SAColumn[Any]) -> TypeEngine[Any]:
    col_type: TypeEngine[Any] = column.type
    if isinstance(col_type, TypeDecorator):
        col_type = col_type.impl_instance
    return col_type


def _kind(column: SAColumn[Any]) -> str:
    col_type = _base_type(column)
    if isinstance(col_type, DateTime):
        return "datetime"
    if isinstance(col_type, JSON):
        return "json"
    if isinstance(col_type, Boolean):
        return "bool"
    if isinstance(col_type, LargeBinary):
        return "bytes"
    return "plain"


# -- SQLite ---------------------------------------------------------------------------------


def _sqlite_values(column: SAColumn[Any], data: ColumnData) -> list[Any]:
    kind = _kind(column)
    if kind == "datetime":
        return format_datetimes(data, sqlite=True)
    if kind == "json":
        return _json_texts(data)
    if isinstance(data, np.ndarray):
        return data.tolist()  # type: ignore[no-any-return]
    return list(data)


# -- PostgreSQL: binary COPY ----------------------------------------------------------------


def _binary_kind(column: SAColumn[Any]) -> str | None:
    """The column's PostgreSQL type as binary COPY spells it; None when not supported."""
    col_type = _base_type(column).dialect_impl(postgresql.dialect())  # type: ignore[no-untyped-call]
    if isinstance(col_type, TypeDecorator):
        col_type = col_type.impl_instance
    if isinstance(col_type, DateTime):
        return "timestamptz" if col_type.timezone else None
    if isinstance(col_type, postgresql.JSONB):
        return "jsonb"
    if isinstance(col_type, JSON):
        return "json"
    if isinstance(col_type, Boolean):
        return "bool"
    if isinstance(col_type, LargeBinary):
        return "bytea"
    if isinstance(col_type, BigInteger):
        return "int8"
    if isinstance(col_type, SmallInteger):
        return "int2"
    if isinstance(col_type, Integer):
        return "int4"
    if isinstance(col_type, Float):
        return "float8"
    if isinstance(col_type, String):
        return "text"
    return None


_FIXED = {"int8": ">i8", "int4": ">i4", "int2": ">i2", "float8": ">f8", "bool": "u1"}


def _binary_field(kind: str, data: ColumnData) -> tuple[np.ndarray, np.ndarray]:
    """(length per row, -1 for NULL; the non-NULL values' bytes, concatenated)."""
    if kind in _FIXED:
        dtype = np.dtype(_FIXED[kind])
        if isinstance(data, np.ndarray) and data.dtype != object:
            packed = np.ascontiguousarray(data.astype(dtype)).view(np.uint8)
            return np.full(len(data), dtype.itemsize, dtype=np.int64), packed
        items = data.tolist() if isinstance(data, np.ndarray) else list(data)
        mask = np.array([v is not None for v in items], dtype=bool)
        numbers = np.array(
            [v for v in items if v is not None], dtype=np.float64 if kind == "float8" else np.int64
        )
        packed = np.ascontiguousarray(numbers.astype(dtype)).view(np.uint8)
        return np.where(mask, dtype.itemsize, -1).astype(np.int64), packed
    if kind == "timestamptz":
        moments = _as_datetime64(data)
        null = np.isnat(moments)
        micros = (moments[~null] - _PG_EPOCH).astype(">i8")
        return np.where(null, -1, 8).astype(np.int64), micros.view(np.uint8)
    items = data.tolist() if isinstance(data, np.ndarray) else list(data)
    if kind == "bytea":
        present = [bytes(v) for v in items if v is not None]
        lengths = np.full(len(items), -1, dtype=np.int64)
        lengths[np.array([v is not None for v in items], dtype=bool)] = [len(v) for v in present]
        return lengths, np.frombuffer(b"".join(present), dtype=np.uint8)
    if kind in ("jsonb", "json"):
        items = _json_texts(items)
    elif not _only(items, str):
        items = [v if v is None or isinstance(v, str) else str(v) for v in items]
    has_null = None in items
    texts: list[str] = [v for v in items if v is not None] if has_null else items
    prefix = "\x01" if kind == "jsonb" else ""  # jsonb's binary format: version 1, then text
    joined = prefix + prefix.join(texts) if prefix else "".join(texts)
    if joined.isascii():  # one encode for the column, lengths in characters are in bytes
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + len(prefix)
        payload = joined.encode("ascii")
    else:
        encoded = [(prefix + v).encode() for v in texts]
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        payload = b"".join(encoded)
    if has_null:
        lengths = np.full(len(items), -1, dtype=np.int64)
        lengths[np.array([v is not None for v in items], dtype=bool)] = sizes
    else:
        lengths = sizes
    return lengths, np.frombuffer(payload, dtype=np.uint8)


def _binary_copy(kinds: list[str | None], values: list[ColumnData], rows: int) -> bytes:
    """The whole binary COPY stream: header, rows (field count, then length + bytes per
    field), trailer; assembled column by column with NumPy scatters, no loop per row."""
    fields = [_binary_field(str(kind), data) for kind, data in zip(kinds, values, strict=True)]
    sizes = [np.maximum(lengths, 0) for lengths, _ in fields]
    row_size = 2 + sum(4 + s for s in sizes) if fields else np.full(rows, 2)
    row_start = np.cumsum(row_size) - row_size + len(_BINARY_HEADER)
    total = len(_BINARY_HEADER) + int(row_size.sum()) + len(_BINARY_TRAILER)
    out = np.empty(total, dtype=np.uint8)
    out[: len(_BINARY_HEADER)] = np.frombuffer(_BINARY_HEADER, dtype=np.uint8)
    out[-2:] = 0xFF
    count = np.array([len(fields)], dtype=">i2").view(np.uint8)
    out[row_start] = count[0]
    out[row_start + 1] = count[1]
    position = row_start + 2
    four = np.arange(4)
    for (lengths, data), size in zip(fields, sizes, strict=True):
        out[position[:, None] + four] = lengths.astype(">i4").view(np.uint8).reshape(-1, 4)
        position = position + 4
        if data.size:
            first = size[0] if rows else 0
            if (size == first).all():
                out[position[:, None] + np.arange(first)] = data.reshape(rows, first)
            else:
                source_start = np.cumsum(size) - size
                out[np.repeat(position - source_start, size) + np.arange(data.size)] = data
        position = position + size
    return out.tobytes()


def _as_datetime64(data: ColumnData) -> np.ndarray:
    if isinstance(data, np.ndarray) and np.issubdtype(data.dtype, np.datetime64):
        return data.astype("datetime64[us]")
    out = np.empty(len(data), dtype="datetime64[us]")
    for i, value in enumerate(data):
        if value is None:
            out[i] = np.datetime64("NaT")
            continue
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise BulkWriteError("datetimes in a bulk write must be aware (UTC)")
        out[i] = np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")
    return out


# -- PostgreSQL: text COPY, for column types binary COPY is not taught here -----------------


def _text_copy(columns: list[SAColumn[Any]], values: list[ColumnData]) -> bytes:
    texts = [_copy_texts(c, data) for c, data in zip(columns, values, strict=True)]
    lines = "\n".join(map("\t".join, zip(*texts, strict=True)))
    return (lines + "\n").encode() if lines else b""


def _copy_texts(column: SAColumn[Any], data: ColumnData) -> list[str]:
    """One column spelled in COPY's text format: \\N for NULL, specials escaped."""
    kind = _kind(column)
    if kind == "datetime":
        spelled: list[str | None] = format_datetimes(data, sqlite=False)
        return [NULL if v is None else v for v in spelled]
    if isinstance(data, np.ndarray):
        if data.dtype == np.bool_:
            return np.where(data, "t", "f").tolist()  # type: ignore[no-any-return]
        if data.dtype.kind in "iuf":
            return list(map(str, data.tolist()))
        data = data.tolist()
    if kind == "json":
        return _escape(_json_texts(data))
    if kind == "bytes":
        return [NULL if v is None else "\\\\x" + bytes(v).hex() for v in data]
    if kind == "bool":
        return [NULL if v is None else ("t" if v else "f") for v in data]
    values = list(data)
    if not _only(values, str):
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    return _escape(values)


def _only(values: list[Any], kind: type) -> bool:
    """Every value is of `kind` or None (one pass in C over the types)."""
    return set(map(type, values)) <= {kind, type(None)}


def _escape(values: list[str | None]) -> list[str]:
    has_null = None in values
    present: list[str] = [v for v in values if v is not None] if has_null else values  # type: ignore[assignment]
    joined = "".join(present)
    if any(special in joined for special in _COPY_SPECIALS):
        values = [None if v is None else v.translate(_COPY_ESCAPES) for v in values]
    if has_null:
        return [NULL if v is None else v for v in values]
    return values  # type: ignore[return-value]


def _json_texts(data: ColumnData) -> list[Any]:
    values = data.tolist() if isinstance(data, np.ndarray) else list(data)
    if _only(values, str):
        return values
    dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode
    return [None if v is None else v if isinstance(v, str) else dumps(v) for v in values]


# -- datetimes ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _clock_texts(suffix: str) -> np.ndarray:
    """'HH:MM:SS' + suffix for every second of a day, built once."""
    return np.array(
        [
            f"{h:02d}:{m:02d}:{s:02d}{suffix}"
            for h in range(24)
            for m in range(60)
            for s in range(60)
        ],
        dtype=object,
    )


def format_datetimes(data: ColumnData, *, sqlite: bool) -> list[Any]:
    """UTC datetimes as the database reads them back (SQLAlchemy's SQLite storage format).

    Vectorised: each distinct day and each second of the day is formatted once.
    """
    if not isinstance(data, np.ndarray) or not np.issubdtype(data.dtype, np.datetime64):
        return [_format_one(v, sqlite) for v in data]
    micros = data.astype("datetime64[us]")
    null = np.isnat(micros)
    filled = np.where(null, np.datetime64(0, "us"), micros)
    days = filled.astype("datetime64[D]")
    since_midnight = (filled - days).astype(np.int64)
    seconds, fraction = np.divmod(since_midnight, 1_000_000)
    unique_days, day_index = np.unique(days, return_inverse=True)
    day_texts = np.array([f"{d} " for d in np.datetime_as_string(unique_days)], dtype=object)
    exact = not fraction.any()
    suffix = (".000000" if sqlite else "+00") if exact else ""
    spelled = day_texts[day_index] + _clock_texts(suffix)[seconds]
    if not exact:
        tail = "" if sqlite else "+00"
        spelled = spelled + np.array([f".{f:06d}{tail}" for f in fraction.tolist()], dtype=object)
    result: list[Any] = spelled.tolist()
    if null.any():
        for i in np.flatnonzero(null).tolist():
            result[i] = None
    return result


def _format_one(value: Any, sqlite: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").item()
        if value is None:
            return None
        value = value.replace(tzinfo=UTC)
    if not isinstance(value, datetime):
        raise BulkWriteError(f"not a datetime: {type(value).__name__}")
    if value.tzinfo is None:
        raise BulkWriteError("naive datetime in a bulk write (expected aware UTC)")
    moment: datetime = value.astimezone(UTC)
    if sqlite:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment.isoformat(sep=" ")


# -- ids and sequences ----------------------------------------------------------------------


def next_id(session: Session, table: Table) -> int:
    """The first free id after the table's highest (ids are pre-assigned by bulk writers)."""
    highest = session.scalar(select(func.max(table.c.id)))
    return int(highest or 0) + 1


def sync_sequence(session: Session, table: Table) -> None:
    """After pre-assigned ids: move PostgreSQL's id sequence past the highest id."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite hands out max(rowid) + 1 by itself
    session.execute(
        text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :value, false)"),
        {"table": table.name, "value": next_id(session, table)},
    )
