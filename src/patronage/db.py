"""Database wiring shared by every capability: engine, sessions, base class, column types.

One request or job is one transaction: services only flush; `transaction()` (jobs, CLI)
and `get_session` (HTTP) commit on success and roll back on any error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from patronage.config import get_cipher, get_settings

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# BIGINT ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY (64-bit anyway).
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Always timezone-aware UTC in Python, whatever the database returns."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Encrypted(TypeDecorator[str]):
    """A text column stored AES-GCM encrypted; the column name is the associated data."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Any) -> bytes | None:
        return get_cipher().encrypt(value, self.context)

    def process_result_value(self, value: bytes | None, dialect: Any) -> str | None:
        return get_cipher().decrypt(bytes(value) if value is not None else None, self.context)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # the default page cache is 2 MB per connection: a customer 360 on a 1M-customer shop
    # re-read its index pages from the OS on every request. 64 MB of cache and reads through
    # mmap (shared by every connection) cut that work.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()


_engines: dict[str, Engine] = {}

# More than the 40 threads of the server's thread pool: with fewer, requests that hold a
# connection wait for a thread while every thread waits for a connection, and the worker
# freezes for the pool's 30 s timeout (found by the recommendation serving benchmark).
MAX_CONNECTIONS = 45


def engine_for(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is not None:
        return engine
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=MAX_CONNECTIONS - 20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            url, pool_size=10, max_overflow=MAX_CONNECTIONS - 10, pool_pre_ping=True
        )
    _engines[url] = engine
    return engine


def get_engine() -> Engine:
    return engine_for(get_settings().resolved_database_url)


@lru_cache(maxsize=8)
def _factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def new_session() -> Session:
    return _factory(get_engine())()


@contextmanager
def transaction() -> Iterator[Session]:
    """One unit of work for a job or command: commit on success, roll back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_session() -> Iterator[Session]:
    """FastAPI dependency: the request's transaction, committed before the response is sent."""
    with transaction() as session:
        yield session


def dispose_engines() -> None:
    """Close every pooled connection (tests, forked workers, after a rotation)."""
    _factory.cache_clear()
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def _session_dependency() -> Any:
    from fastapi import Depends

    # scope="function": the commit happens before the response is sent, so a 2xx means stored.
    return Depends(get_session, scope="function")


SessionDep = _session_dependency()


class DriverQuery:
    """A statement for hot request paths, run through the driver's own cursor on the
    session's connection (so inside its transaction).

    SQLAlchemy's execution of an already cached statement (execution context, parameter
    and result processing, row objects) costs ~150-200 us per statement, ten times what
    SQLite needs for a lookup on a warm index (~20 us): measured on serving's per-request
    statements (consent, purchase history, build pointer). The statement is compiled once
    per dialect. Parameters go to the driver as given (use ints and text: no bind
    processing) and rows come back as the driver's tuples, without result processing:
    SQLite gives booleans as 0/1, times and JSON as text; PostgreSQL gives Python values.
    Never select an encrypted column through it (its decryption is result processing: it
    would come back as ciphertext). docs/adr/0007-driver-query-for-hot-reads.md.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, Any] = {}

    def _cursor(self, session: Session, values: dict[str, Any]) -> Any:
        """The driver's cursor, the statement executed on it: the caller closes it."""
        dialect = session.get_bind().dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self.statement.compile(dialect=dialect)
        params = compiled.construct_params(values)
        args = tuple(params[n] for n in compiled.positiontup) if compiled.positional else params
        cursor = session.connection().connection.cursor()
        try:
            cursor.execute(compiled.string, args)
        except BaseException:
            cursor.close()
            raise
        return cursor

    def rows(self, session: Session, **values: Any) -> list[tuple[Any, ...]]:
        cursor = self._cursor(session, values)
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def chunks(self, session: Session, size: int, **values: Any) -> Iterator[list[tuple[Any, ...]]]:
        """The rows in lists of at most `size`, fetched one list at a time (the cursor stays
        open between them: consume them inside the session's transaction)."""
        cursor = self._cursor(session, values)
        try:
            while chunk := cursor.fetchmany(size):
                yield list(chunk)
        finally:
            cursor.close()

    def first(self, session: Session, **values: Any) -> tuple[Any, ...] | None:
        found = self.rows(session, **values)
        return found[0] if found else None
