"""The analytics engines: where the Ibis expressions of features.py, rfm.py and patterns.py run.

`PATRONAGE_ANALYTICS_ENGINE` names one (docs/adr/0003-analytics-engine.md, 0005):

- `duckdb` (default): the store tables analytics reads — table and column names, never another
  capability's ORM models — are read into Arrow and scanned in place by an in-memory DuckDB.
  PostgreSQL: COPY as CSV on the session's connection. SQLite: when the session's connection
  has nothing uncommitted (its statements then see the last commit, as any connection's do),
  ADBC's SQLite driver reads the file on two connections straight into Arrow, in a child
  process (`sqlite_reader`, ADR 0006); otherwise the session's own connection spells blocks
  of rows as CSV, parsed by Arrow (ADR 0005), so the caller's uncommitted rows are seen.
- `database`: the expressions are compiled to SQL and run inside PostgreSQL itself, on the
  session's own connection (so also inside the caller's transaction). Refused on SQLite: a
  SQLite store has no engine of its own worth the name, and DuckDB already reads it in-process.
- `spark`: the store is read as for DuckDB, written once as a Parquet lake (one file per table)
  and read by Spark (`PATRONAGE_SPARK_MASTER`, default `local[2]`).

Every engine sees the same normalised source tables (`SOURCE_COLUMNS`): times are BIGINT
microseconds since 1970-01-01 UTC (`*_us`), and the two JSON fields features need are extracted
to text columns. The analytic expressions are then plain integer and string arithmetic, so the
engines agree to the last digit.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from ibis.backends import BaseBackend
from sqlalchemy import BigInteger, Integer, SmallInteger, String
from sqlalchemy.orm import Session

from patronage.analytics import sqlite_reader
from patronage.config import get_settings
from patronage.db import UTCDateTime
from patronage.errors import AppError

BATCH = 100_000
ENGINES = ("duckdb", "database", "spark")

# UTC wall-clock: the store hands back aware UTC datetimes, Arrow keeps them as epoch microseconds
_TS = pa.timestamp("us")

Progress = Callable[[str], None]


class EngineUnavailable(AppError):
    """PATRONAGE_ANALYTICS_ENGINE names an engine this installation cannot use."""

    status_code = 503
    code = "analytics_engine_unavailable"


@dataclass(frozen=True)
class Col:
    name: str
    sql_type: Any
    arrow: pa.DataType
    as_text: bool = False  # JSON read as its text (parsed by the engine, not Python)


def _i(name: str) -> Col:
    return Col(name, BigInteger(), pa.int64())


def _s(name: str) -> Col:
    return Col(name, String(), pa.string())


def _t(name: str) -> Col:
    return Col(name, UTCDateTime(), _TS)


# the columns analytics reads from each store table (read-only)
SOURCES: dict[str, tuple[Col, ...]] = {
    "customers": (
        _i("id"),
        Col("birth_year", SmallInteger(), pa.int64()),
        _t("signup_at"),
        _t("created_at"),
        _i("merged_into_id"),
    ),
    "orders": (
        _i("id"),
        _i("customer_id"),
        _s("status"),
        _s("channel"),
        _i("total_minor"),
        _i("discount_minor"),
        _s("coupon"),
        _t("placed_at"),
        _t("cancelled_at"),
    ),
    "order_items": (
        _i("order_id"),
        _i("product_id"),
        Col("quantity", Integer(), pa.int64()),
        _i("unit_price_minor"),
    ),
    "products": (_i("id"), _i("category_id")),
    "refunds": (_i("order_id"), _i("amount_minor")),
    "returns": (_i("order_id"), _s("status")),
    "reviews": (_i("customer_id"), Col("rating", SmallInteger(), pa.int64())),
    "tickets": (_i("customer_id"), _t("opened_at")),
    "events": (
        _i("customer_id"),
        _s("anonymous_id"),
        _s("name"),
        _t("timestamp"),
        Col("context", String(), pa.string(), as_text=True),
        Col("properties", String(), pa.string(), as_text=True),
    ),
}

# the normalised tables every engine exposes to the expressions
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "birth_year", "signup_us", "created_us", "merged_into_id"),
    "orders": (
        "id",
        "customer_id",
        "status",
        "channel",
        "total_minor",
        "discount_minor",
        "coupon",
        "placed_us",
        "cancelled_us",
    ),
    "order_items": ("order_id", "product_id", "quantity", "unit_price_minor"),
    "products": ("id", "category_id"),
    "refunds": ("order_id", "amount_minor"),
    "returns": ("order_id", "status"),
    "reviews": ("customer_id", "rating"),
    "tickets": ("customer_id", "opened_us"),
    # visitor: the customer id as text, else the anonymous id (the funnel counts both);
    # list_id: of CLICKED events only (the only ones read with it)
    "events": ("customer_id", "visitor", "name", "ts_us", "device", "list_id"),
}
CLICKED = "Product Clicked"

_TEXT = {"status", "channel", "coupon", "visitor", "name", "device", "list_id"}


def source_schema(name: str) -> ibis.Schema:
    """The normalised table's Ibis schema: text columns are strings, everything else BIGINT."""
    return ibis.schema({c: "string" if c in _TEXT else "int64" for c in SOURCE_COLUMNS[name]})


_US = {"signup_at": "signup_us", "created_at": "created_us", "placed_at": "placed_us"}
_US |= {"cancelled_at": "cancelled_us", "opened_at": "opened_us", "timestamp": "ts_us"}


def _us(name: str) -> str:
    return _US.get(name, name)


# PostgreSQL (`database`): the store tables -> normalised tables, as SQL the expressions wrap
_PG_US = "CAST(floor(extract(epoch FROM {c}) * 1000000) AS BIGINT)"


def _pg_select(name: str) -> str:
    if name == "events":
        ts = _PG_US.format(c="timestamp")
        return (
            "SELECT customer_id, coalesce(CAST(customer_id AS TEXT), anonymous_id) AS visitor, "  # noqa: S608
            f"name, {ts} AS ts_us, context -> 'device' ->> 'type' AS device, "
            f"CASE WHEN name = '{CLICKED}' THEN properties ->> 'list_id' END AS list_id FROM events"
        )
    exprs = [
        f"{_PG_US.format(c=c.name)} AS {_us(c.name)}"
        if c.arrow == _TS
        else f"CAST({c.name} AS BIGINT) AS {c.name}"
        if c.arrow == pa.int64()
        else c.name
        for c in SOURCES[name]
    ]
    return f"SELECT {', '.join(exprs)} FROM {name}"  # noqa: S608 (built from constants)


@dataclass
class Store:
    """An engine holding the normalised source tables; expressions over `tables` run on it."""

    engine: str
    backend: BaseBackend
    tables: dict[str, ibis.Table]
    _cleanup: list[Callable[[], None]] = field(default_factory=list)
    _serial: int = 0

    def __getitem__(self, name: str) -> ibis.Table:
        return self.tables[name]

    def arrow(self, expr: ibis.Table) -> pa.Table:
        return self.backend.to_pyarrow(expr)

    def rows(self, expr: ibis.Table) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.arrow(expr).to_pylist()
        return rows

    def scalar(self, expr: ibis.Scalar) -> Any:
        return self.backend.execute(expr)

    @contextmanager
    def materialized(self, expr: ibis.Table) -> Iterator[ibis.Table]:
        """`expr` computed once on the engine (a temporary table, or a cached Spark frame).

        Ibis 12's own `drop_table` (so `Table.cache()`'s release) renders "DROP TABLE IF
        EXISTS" without the name under the installed sqlglot, hence the plain SQL here.
        """
        self._serial += 1
        name = f"patronage_tmp_{self._serial}"
        cached = self.backend._create_cached_table(name, expr)
        try:
            yield cached
        finally:
            if self.engine == "spark":
                self.backend._drop_cached_table(name)
            else:
                with self.backend._safe_raw_sql(f"DROP TABLE IF EXISTS {name}"):
                    pass

    def close(self) -> None:
        for step in reversed(self._cleanup):
            step()
        self._cleanup.clear()


def _arrow_schema(name: str) -> pa.Schema:
    return pa.schema([(c, pa.string() if c in _TEXT else pa.int64()) for c in SOURCE_COLUMNS[name]])


# SQLite: SQLite spells each block of rows as one CSV text (printf, in C) holding the raw
# values — text quoted SQL-style by %Q ('it''s', NULL bare), numbers and timestamps (in
# SQLAlchemy's storage format 'YYYY-MM-DD HH:MM:SS.ffffff') by %s (NULL: empty) — and Arrow
# parses it, timestamps included: one Python object per block instead of a tuple per row.
# SQLite (one core, the caller's connection) spells the next block while Arrow parses the
# last one in a thread. Blocks are rowid ranges (ids can be sparse: sized by the count). CSV
# rather than NDJSON (json_object): as cheap for SQLite to spell, half the text, and a
# third of the parsing.
SQLITE_ROWS = 250_000  # rows per CSV block


def _sqlite_columns(name: str) -> list[tuple[str, str, pa.DataType]]:
    """(JSON key, SQLite expression, Arrow type to parse) of one table's block query."""
    if name == "events":
        list_id = "CAST(properties ->> '$.list_id' AS TEXT)"
        return [
            ("customer_id", "customer_id", pa.int64()),
            # `visitor` is made in Arrow (_normalise): the anonymous id only where it is used
            ("anonymous_id", "iif(customer_id IS NULL, anonymous_id, NULL)", pa.string()),
            ("name", "name", pa.string()),
            ("ts_us", '"timestamp"', _TS),
            ("device", "CAST(context ->> '$.device.type' AS TEXT)", pa.string()),
            ("list_id", f"iif(name = '{CLICKED}', {list_id}, NULL)", pa.string()),
        ]
    return [(_us(c.name), c.name, c.arrow) for c in SOURCES[name]]


def _rowid_range(raw: Any, name: str) -> tuple[int, int, int]:
    """min(rowid), max(rowid), count(*) of a table. Three subqueries, as SQLite answers each
    alone from the b-tree's ends or its page counts, but all three in one SELECT by reading
    every row (0.7 s against 0.07 s for 10M events)."""
    lo, hi, count = raw.execute(
        f"SELECT (SELECT min(rowid) FROM {name}), (SELECT max(rowid) FROM {name}), "  # noqa: S608
        f"(SELECT count(*) FROM {name})"
    ).fetchone()
    return lo, hi, count


def _sqlite_blocks(raw: Any, name: str) -> Iterator[bytes]:
    """The table as CSV blocks of SQLITE_ROWS rows, in rowid order."""
    columns = _sqlite_columns(name)
    spelling = ",".join("%Q" if arrow == pa.string() else "%s" for _, _, arrow in columns)
    row = f"printf('{spelling}', {', '.join(expr for _, expr, _ in columns)})"
    query = (
        f"SELECT CAST(group_concat({row}, char(10)) AS BLOB) FROM {name} "  # noqa: S608
        "WHERE rowid BETWEEN ? AND ?"
    )
    lo, hi, count = _rowid_range(raw, name)
    if not count:
        return
    # rowid ranges of about SQLITE_ROWS rows each if the ids are spread evenly (they need
    # not be: a block is then larger or smaller, never wrong)
    step = (hi - lo) // -(-count // SQLITE_ROWS) + 1
    for start in range(lo, hi + 1, step):
        text = raw.execute(query, (start, start + step - 1)).fetchone()[0]
        if text:
            yield text


def _parse_block(name: str, text: bytes) -> pa.Table:
    schema = pa.schema([(key, arrow) for key, _, arrow in _sqlite_columns(name)])
    return pa_csv.read_csv(
        io.BytesIO(text),
        read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=1 << 24),
        parse_options=pa_csv.ParseOptions(
            quote_char="'", double_quote=True, escape_char=False, newlines_in_values=True
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types=schema,
            null_values=["", "NULL"],  # %s spells NULL as nothing, %Q as a bare NULL
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # 'NULL' and '' are text
        ),
    )


def _normalise(name: str, table: pa.Table) -> pa.Table:
    """Parsed SQLite blocks -> the normalised table (SOURCE_COLUMNS, `_arrow_schema`)."""
    columns = {}
    for column_name in table.column_names:
        column = table.column(column_name)
        if column.type == _TS:
            column = column.cast(pa.int64())
        columns[column_name] = column
    if name == "events":
        visitor = pc.coalesce(columns["customer_id"].cast(pa.string()), columns["anonymous_id"])
        columns["visitor"] = visitor
    schema = _arrow_schema(name)
    return pa.table([columns[c] for c in schema.names], schema=schema)


def _read_sqlite_table(raw: Any, name: str, pool: ThreadPoolExecutor) -> pa.Table:
    parts = [pool.submit(_parse_block, name, text) for text in _sqlite_blocks(raw, name)]
    blocks = [part.result() for part in parts]
    if not blocks:
        return _arrow_schema(name).empty_table()
    return _normalise(name, pa.concat_tables(blocks))


# read on a connection of its own, in parallel, when the session's has nothing uncommitted
_APART = ("events",)

# SQLite, when the session's connection has nothing uncommitted (ADR 0006): ADBC's SQLite
# driver reads the file on connections of its own straight into Arrow (C, no text spelled
# and parsed), ADBC_READERS connections at once, each taking the next block of any table.
# ADBC infers a result column's type from its first rows' values (a column that starts
# with NULLs would be taken as integers), so each block query starts with one typed sentinel
# row — 0, '' and a timestamp text — that is dropped from the result. Timestamps come as
# SQLAlchemy's text and are parsed by Arrow (the same parser as the CSV reader).
ADBC_ROWS = 1_000_000  # rows per block
ADBC_READERS = 2
_SENTINEL = {pa.int64(): "0", pa.string(): "''", _TS: "'1970-01-01 00:00:00'"}


def _sqlite_file(raw: Any) -> str | None:
    """The path of the connection's main database file (None: in memory, or temporary)."""
    for _, schema, path in raw.execute("PRAGMA database_list").fetchall():
        if schema == "main":
            return str(path) or None
    return None


def _adbc_blocks(raw: Any, name: str) -> list[sqlite_reader.Block]:
    """One table's block queries: rowid ranges of about ADBC_ROWS rows."""
    lo, hi, count = _rowid_range(raw, name)
    if not count:
        return []
    columns = _sqlite_columns(name)
    sentinel = ", ".join(f"{_SENTINEL[arrow]} AS {key}" for key, _, arrow in columns)
    select = ", ".join(f"{expr} AS {key}" for key, expr, _ in columns)
    schema = sqlite_reader.schema_text(pa.schema([(key, arrow) for key, _, arrow in columns]))
    step = (hi - lo) // -(-count // ADBC_ROWS) + 1
    return [
        sqlite_reader.Block(
            name,
            f"SELECT {sentinel}, 1 AS sentinel UNION ALL "  # noqa: S608 (built from constants)
            f"SELECT {select}, 0 FROM {name} WHERE rowid BETWEEN {start} AND {start + step - 1}",
            schema,
        )
        for start in range(lo, hi + 1, step)
    ]


def _read_sqlite_adbc(
    path: str, raw: Any, progress: Progress | None, names: tuple[str, ...] = tuple(SOURCE_COLUMNS)
) -> dict[str, pa.Table]:
    """The source tables `names` of the SQLite file `path` (`raw`: a connection to it, for
    the block ranges), read by ADBC_READERS connections of ADBC's in a child process
    (`sqlite_reader`: never in this one, ADR 0006)."""
    blocks = [block for name in names for block in _adbc_blocks(raw, name)]
    if progress:
        progress("store (ADBC)")
    parts = sqlite_reader.read(path, blocks, ADBC_READERS)
    out = {}
    for name in names:
        tables = [part for part, block in zip(parts, blocks, strict=True) if block.table == name]
        out[name] = (
            _normalise(name, pa.concat_tables(tables))
            if tables
            else _arrow_schema(name).empty_table()
        )
    return out


def _read_sqlite_tables(
    session: Session, raw: Any, progress: Progress | None, *, use_adbc: bool = True
) -> dict[str, pa.Table]:
    """Every source table. When the session's connection has no transaction open (nothing
    uncommitted: each of its statements sees the last commit, as any connection's would) and
    the store is a file, ADBC reads it (`_read_sqlite_adbc`). Otherwise as CSV: Arrow parses
    a block while SQLite spells the next (both release the GIL), the events on a second
    connection when nothing is uncommitted (an in-memory store), else on the session's."""
    if use_adbc and not raw.in_transaction:
        path = _sqlite_file(raw)
        if path is not None:
            return _read_sqlite_adbc(path, raw, progress)
    out: dict[str, pa.Table] = {}
    apart = None if raw.in_transaction else session.connection().engine.raw_connection()
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="analytics-read") as pool:
            later = {}
            if apart is not None:
                second = apart.driver_connection
                later = {n: pool.submit(_read_sqlite_table, second, n, pool) for n in _APART}
            for name in SOURCE_COLUMNS:
                if progress:
                    progress(name)
                if name in later:
                    out[name] = later[name].result()
                else:
                    out[name] = _read_sqlite_table(raw, name, pool)
    finally:
        if apart is not None:
            apart.close()
    return out


def _read_postgres(raw: Any, name: str) -> pa.Table:
    """COPY of the normalised query as CSV, parsed by Arrow (no Python object per value)."""
    schema = _arrow_schema(name)
    buffer = io.BytesIO()
    with raw.cursor() as cursor:
        sql = f"COPY ({_pg_select(name)}) TO STDOUT WITH (FORMAT csv)"
        with cursor.copy(sql) as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    if not buffer.getbuffer().nbytes:
        return schema.empty_table()
    return pa_csv.read_csv(
        buffer,
        read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=1 << 24),
        convert_options=pa_csv.ConvertOptions(
            column_types=schema,
            null_values=[""],  # COPY spells NULL as an empty field, '' as ""
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def read_arrow(session: Session, progress: Progress | None = None) -> dict[str, pa.Table]:
    """The normalised source tables (SOURCE_COLUMNS) as Arrow, read in the session's
    transaction: PostgreSQL through COPY, SQLite through ADBC or as CSV blocks."""
    connection = session.connection()
    raw = connection.connection.driver_connection
    if connection.dialect.name != "postgresql":
        return _read_sqlite_tables(session, raw, progress)
    out = {}
    for name in SOURCE_COLUMNS:
        if progress:
            progress(name)
        out[name] = _read_postgres(raw, name)
    return out


def load_duckdb(session: Session, progress: Progress | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB over the normalised source tables.

    The Arrow tables are registered as they are (DuckDB scans Arrow in place, in parallel):
    copying them into DuckDB tables cost time and, for a while, twice the memory.
    """
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # every result read back is ordered explicitly (order_by): DuckDB need not keep the
    # order of its inputs, which frees its joins and materialisations (~10 % less CPU)
    con.execute("SET preserve_insertion_order = false")
    for name, arrow_table in read_arrow(session, progress).items():
        con.register(name, arrow_table)
    return con


def _duckdb_store(session: Session, progress: Progress | None) -> Store:
    con = load_duckdb(session, progress)
    backend = ibis.duckdb.from_connection(con)
    store = Store("duckdb", backend, {name: backend.table(name) for name in SOURCE_COLUMNS})
    store._cleanup.append(con.close)
    return store


def _database_store(session: Session, progress: Progress | None) -> Store:
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        raise EngineUnavailable(
            "PATRONAGE_ANALYTICS_ENGINE=database computes inside PostgreSQL; this store is "
            f"{connection.dialect.name}: use PATRONAGE_ANALYTICS_ENGINE=duckdb (the default), "
            "which reads a SQLite store in-process"
        )
    if progress:
        progress("store (in the database)")
    raw = connection.connection.driver_connection
    backend = ibis.postgres.from_connection(raw)
    # the schema given: ibis would otherwise probe it with a temporary view
    tables = {
        name: backend.sql(_pg_select(name), schema=source_schema(name), dialect="postgres")
        for name in SOURCE_COLUMNS
    }
    return Store("database", backend, tables)


_spark: Any = None


def spark_session() -> Any:
    """The process's Spark session (created once: a JVM start costs seconds)."""
    global _spark
    if _spark is None:
        from pyspark.sql import SparkSession

        _spark = (
            SparkSession.builder.master(get_settings().spark_master)
            .appName("patronage-analytics")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", str(get_settings().spark_shuffle_partitions))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        _spark.sparkContext.setLogLevel("ERROR")
    return _spark


def _spark_store(session: Session, progress: Progress | None) -> Store:
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pyspark is in the spark extra
        raise EngineUnavailable(
            "PATRONAGE_ANALYTICS_ENGINE=spark needs pyspark and Java 17: "
            "pip install 'patronage[spark]'"
        ) from exc
    lake = Path(tempfile.mkdtemp(prefix="patronage-lake-"))
    con = load_duckdb(session, progress)
    try:
        for name in SOURCE_COLUMNS:
            con.execute(f"COPY {name} TO '{lake / name}.parquet' (FORMAT PARQUET)")
    finally:
        con.close()
    if progress:
        progress("spark")
    backend = ibis.pyspark.connect(spark_session())
    tables = {
        name: backend.read_parquet(str(lake / f"{name}.parquet"), table_name=f"lake_{name}")
        for name in SOURCE_COLUMNS
    }
    store = Store("spark", backend, tables)
    store._cleanup.append(lambda: shutil.rmtree(lake, ignore_errors=True))
    return store


@contextmanager
def open_store(
    session: Session, engine: str | None = None, progress: Progress | None = None
) -> Iterator[Store]:
    """The engine `engine` (default: PATRONAGE_ANALYTICS_ENGINE) over the session's store."""
    name = engine or get_settings().analytics_engine
    openers = {"duckdb": _duckdb_store, "database": _database_store, "spark": _spark_store}
    if name not in openers:
        raise EngineUnavailable(f"PATRONAGE_ANALYTICS_ENGINE must be one of {', '.join(ENGINES)}")
    store = openers[name](session, progress)
    try:
        yield store
    finally:
        store.close()


def stop_spark() -> None:
    """Stop the process's Spark session (tests; a worker keeps it for its lifetime)."""
    global _spark
    if _spark is not None:
        _spark.stop()
        _spark = None
