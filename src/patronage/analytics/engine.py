"""The analytics engine: DuckDB in-process, fed from the store through Arrow.

Other capabilities' tables (customers, orders, order items, refunds, returns, reviews,
products, events, tickets) are read read-only as SQLAlchemy Core table clauses — table and
column names, never their ORM models (docs/adr/0003-analytics-engine.md) — in batches turned
into Arrow tables and registered in an in-memory DuckDB connection. The same reading works on
SQLite and PostgreSQL and runs inside the caller's transaction, so it sees exactly what the
session sees. Every analytic query then runs in DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import BigInteger, Integer, SmallInteger, String, cast, column, select, table
from sqlalchemy.orm import Session

from patronage.config import get_settings
from patronage.db import UTCDateTime
from patronage.errors import ValidationFailed

BATCH = 100_000

# UTC wall-clock: the engine computes in UTC whatever its session time zone
_TS = pa.timestamp("us")


@dataclass(frozen=True)
class Col:
    name: str
    sql_type: Any
    arrow: pa.DataType
    as_text: bool = False  # JSON read as its text (parsed by DuckDB, not Python)


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
    "refunds": (_i("order_id"), _i("amount_minor"), _t("created_at")),
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


def _arrow(cols: tuple[Col, ...], rows: Sequence[Any]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    return pa.RecordBatch.from_arrays(
        [pa.array(list(values), type=c.arrow) for c, values in zip(cols, columns, strict=True)],
        names=[c.name for c in cols],
    )


def load_store(
    session: Session, progress: Callable[[str], None] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding Arrow copies of the store tables analytics reads."""
    engine = get_settings().analytics_engine
    if engine != "duckdb":
        raise ValidationFailed(
            f"analytics engine {engine!r} is not available yet; "
            "set PATRONAGE_ANALYTICS_ENGINE=duckdb"
        )
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for name, cols in SOURCES.items():
        if progress:
            progress(name)
        schema = pa.schema([(c.name, c.arrow) for c in cols])
        clause = table(name, *(column(c.name, c.sql_type) for c in cols))
        exprs = [cast(clause.c[c.name], String()) if c.as_text else clause.c[c.name] for c in cols]
        stmt = select(*exprs)
        if name == "events":
            stmt = stmt.where(clause.c.customer_id.is_not(None))
        result = session.execute(stmt)
        batches = []
        while rows := result.fetchmany(BATCH):
            batches.append(_arrow(cols, rows))
        arrow_table = pa.Table.from_batches(batches, schema=schema)
        con.register(f"{name}_arrow", arrow_table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")  # noqa: S608 (constant)
        con.unregister(f"{name}_arrow")
    return con
