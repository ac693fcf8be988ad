"""Where compiled rules run, and how the data they ask about is read.

The engine is pluggable (`ENGINES`, chosen by PATRONAGE_ANALYTICS_ENGINE). `duckdb`, the
default, reads the store tables the rules need (only those, and only the events whose names
the rules mention) through SQLAlchemy Core table clauses — table and column names, never
another capability's models — into Arrow, registers them in an in-memory DuckDB connection
and runs the Ibis expressions there. `database` runs the same expressions inside PostgreSQL
on the store's own tables. `spark` reads as `duckdb` does, writes the tables as a Parquet
lake and runs the expressions on Spark. Other engines plug in by providing the same named
Ibis tables (`compiler.TABLES`) on their backend.

`load_facts` reads one customer's rows (or a handful of customers') for the per-customer
evaluator (segments.local).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    String,
    cast,
    column,
    false,
    func,
    select,
    table,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from patronage.config import get_settings
from patronage.db import UTCDateTime
from patronage.errors import ValidationFailed
from patronage.segments import rules as r
from patronage.segments.compiler import TABLES, Compiler, PercentileLookup, RuleLookup, naive_utc
from patronage.segments.local import Facts, parse_properties, reason_of

BATCH = 100_000
CHUNK = 900  # ids per IN list (SQLite's parameter limit is far above; keeps statements small)

STORE_NAMES = {
    "features": "analytics_customer_features",
    "rfm": "analytics_rfm",
    "scores": "analytics_customer_scores",
    "visits": "events",
    "personas": "segment_persona_members",
}
_SQL_TYPES: dict[str, Any] = {
    "int64": BigInteger(),
    "string": String(),
    "boolean": Boolean(),
    "timestamp": UTCDateTime(),
    "float64": Float(),
}
_ARROW: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us"),
    "float64": pa.float64(),
}


def clause(name: str) -> Any:
    """The store table behind compiler table `name`, as a Core clause with typed columns."""
    cols = TABLES[name]
    return table(STORE_NAMES.get(name, name), *(column(c, _SQL_TYPES[t]) for c, t in cols.items()))


def _selected(name: str, t: Any) -> list[ColumnElement[Any]]:
    # JSON is read as its text: DuckDB parses it, not Python
    return [
        cast(t.c[c], String()) if c in {"properties", "context"} else t.c[c] for c in TABLES[name]
    ]


def _arrow(name: str, rows: Sequence[Any]) -> pa.RecordBatch:
    cols = TABLES[name]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
    return pa.RecordBatch.from_arrays(
        [
            pa.array(list(values), type=_ARROW[t])
            for t, values in zip(cols.values(), columns, strict=True)
        ],
        names=list(cols),
    )


def needs(rule_set: Iterable[r.Node]) -> tuple[set[str], set[str]]:
    """The compiler tables the rules read, and the event names they mention."""
    tables = {"customers", "clock"}
    names: set[str] = set()
    for rule in rule_set:
        for n in r.walk(rule):
            if isinstance(n, r.Feature):
                tables.add("features")
            elif isinstance(n, r.Score):
                tables.add("rfm" if n.score.startswith("rfm_") else "scores")
            elif isinstance(n, r.Rfm):
                tables.add("rfm")
            elif isinstance(n, r.Event | r.NotDone):
                tables.add("events")
                names.add(n.event)
            elif isinstance(n, r.BoughtCategory):
                tables |= {"orders", "order_items", "products"}
            elif isinstance(n, r.Spent):
                tables.add("orders")
            elif isinstance(n, r.Consent):
                tables.add("consents")
            elif isinstance(n, r.Visit):
                tables.add("visits")
            elif isinstance(n, r.InPersona):
                tables.add("personas")
    return tables, names


class DuckDBEngine:
    """Arrow copies of the needed store tables in an in-memory DuckDB; Ibis on top."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        import ibis

        self.con = con
        self.backend = ibis.duckdb.from_connection(con)
        self._tables: dict[str, Any] | None = None

    @classmethod
    def from_store(
        cls, session: Session, rule_set: Sequence[r.Node], now: datetime
    ) -> DuckDBEngine:
        """Loads what `rule_set` (segment references already expanded) needs."""
        tables, names = needs(rule_set)
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        for name in TABLES:
            if name == "clock":
                continue
            t = clause(name)
            stmt = select(*_selected(name, t))
            if name not in tables:
                stmt = stmt.where(false())  # an empty table: the compiler may still name it
            elif name == "events":
                stmt = stmt.where(t.c.customer_id.is_not(None), t.c.name.in_(sorted(names)))
            elif name == "visits":
                stmt = stmt.where(t.c.customer_id.is_not(None), column("type") == "page")
            result = session.execute(stmt)
            batches = []
            while rows := result.fetchmany(BATCH):
                batches.append(_arrow(name, rows))
            schema = pa.schema([(c, _ARROW[k]) for c, k in TABLES[name].items()])
            cls.register(con, name, pa.Table.from_batches(batches, schema=schema))
        cls.register(
            con, "clock", pa.table({"now": pa.array([naive_utc(now)], type=pa.timestamp("us"))})
        )
        return cls(con)

    @staticmethod
    def register(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
        con.register(f"{name}_arrow", data)
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM "{name}_arrow"')  # noqa: S608 (names of TABLES)
        con.unregister(f"{name}_arrow")

    def compiler(self, rules: RuleLookup, percentile: PercentileLookup) -> Compiler:
        if self._tables is None:  # each lookup asks DuckDB's catalogue: once per engine
            self._tables = {name: self.backend.table(name) for name in TABLES}
        return Compiler(self._tables, rules=rules, percentile=percentile, json_text=True)

    def members(self, compiler: Compiler, rule: r.Node) -> list[int]:
        expr = compiler.members(rule)
        arrow = self.backend.to_pyarrow(expr, params=compiler.params)
        return sorted(arrow.column("customer_id").to_pylist())

    def count(self, compiler: Compiler, rule: r.Node) -> int:
        expr = compiler.members(rule).count()
        return int(self.backend.execute(expr, params=compiler.params))

    def close(self) -> None:
        self.con.close()


class DatabaseEngine(DuckDBEngine):
    """The rules run inside PostgreSQL itself (PATRONAGE_ANALYTICS_ENGINE=database): the same
    Ibis expressions, compiled for PostgreSQL, over the store's own tables. It reads through
    a connection of its own, so it sees what is committed (not the caller's pending writes)."""

    name = "database"

    def __init__(self, backend: Any, now: datetime) -> None:
        import ibis

        self.con = None  # type: ignore[assignment]
        self.backend = backend
        self._tables = {}
        for name, cols in TABLES.items():
            if name == "clock":
                moment = naive_utc(now).replace(tzinfo=UTC)
                self._tables[name] = ibis.memtable({"now": [moment]})
                continue
            t = backend.table(STORE_NAMES.get(name, name))
            if name == "visits":
                t = t.filter(t["type"] == "page")
            self._tables[name] = t.select(*cols)

    @classmethod
    def from_store(
        cls, session: Session, rule_set: Sequence[r.Node], now: datetime
    ) -> DatabaseEngine:
        import ibis

        url = session.get_bind().engine.url
        if url.get_backend_name() != "postgresql":
            raise ValidationFailed("the database engine runs segments inside PostgreSQL only")
        backend = ibis.postgres.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        prepare(backend)
        return cls(backend, now)

    def compiler(self, rules: RuleLookup, percentile: PercentileLookup) -> Compiler:
        return Compiler(self._tables or {}, rules=rules, percentile=percentile, pg_json=True)

    def close(self) -> None:
        self.backend.disconnect()


class SparkEngine(DuckDBEngine):
    """The rules run on Spark (PATRONAGE_ANALYTICS_ENGINE=spark, `PATRONAGE_SPARK_MASTER`,
    default local[2]). The store tables the rules need are read as for DuckDB (inside the
    caller's transaction), written once as a Parquet lake (one file per table) and read by
    Spark; the same Ibis expressions are compiled to Spark SQL (Ibis renders the bound
    values as SQL literals, quoted by sqlglot; nothing of a rule is pasted by us)."""

    name = "spark"

    def __init__(self, backend: Any, tables: dict[str, Any], lake: Path | None) -> None:
        self.con = None  # type: ignore[assignment]
        self.backend = backend
        self._tables = tables
        self.lake = lake

    @classmethod
    def from_store(cls, session: Session, rule_set: Sequence[r.Node], now: datetime) -> SparkEngine:
        duck = DuckDBEngine.from_store(session, rule_set, now)
        lake = Path(tempfile.mkdtemp(prefix="patronage-segments-lake-"))
        try:
            for name in TABLES:
                target = str(lake / f"{name}.parquet").replace("'", "''")
                duck.con.execute(f"COPY \"{name}\" TO '{target}' (FORMAT PARQUET)")
        except BaseException:
            shutil.rmtree(lake, ignore_errors=True)
            raise
        finally:
            duck.close()
        return cls.from_lake(lake)

    @classmethod
    def from_arrow(cls, data: dict[str, pa.Table]) -> SparkEngine:
        """Spark over these Arrow tables (named as in `TABLES`; benchmarks, tests)."""
        import pyarrow.parquet as pq

        lake = Path(tempfile.mkdtemp(prefix="patronage-segments-lake-"))
        for name, t in data.items():
            pq.write_table(t, lake / f"{name}.parquet")
        return cls.from_lake(lake)

    @classmethod
    def from_lake(cls, lake: Path) -> SparkEngine:
        """Spark over the Parquet files `<lake>/<table>.parquet`; the lake is deleted on close."""
        import ibis

        backend = ibis.pyspark.connect(spark_session())
        suffix = uuid.uuid4().hex[:12]  # engines of one process share Spark's temporary views
        tables = {
            name: backend.read_parquet(
                str(lake / f"{name}.parquet"), table_name=f"seg_{name}_{suffix}"
            )
            for name in TABLES
        }
        return cls(backend, tables, lake)

    def compiler(self, rules: RuleLookup, percentile: PercentileLookup) -> Compiler:
        return Compiler(self._tables or {}, rules=rules, percentile=percentile, spark_json=True)

    def members(self, compiler: Compiler, rule: r.Node) -> list[int]:
        # straight to Arrow (Ibis' to_pyarrow goes through pandas rows); the shared session's
        # settings are left as they are
        sql = self.backend.compile(compiler.members(rule), params=compiler.params)
        arrow = self.backend._session.sql(sql).toArrow()
        return sorted(arrow.column("customer_id").to_pylist())

    def close(self) -> None:
        session = self.backend._session
        for t in (self._tables or {}).values():
            session.catalog.dropTempView(t.get_name())
        if self.lake is not None:
            shutil.rmtree(self.lake, ignore_errors=True)
            self.lake = None


def spark_session() -> Any:
    """The process's Spark session: the one running (analytics or recommendations may have
    started it: a JVM start costs seconds; its settings are kept), else a new one with the
    same settings as theirs."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is in the spark extra
        raise ValidationFailed(
            "PATRONAGE_ANALYTICS_ENGINE=spark needs pyspark and Java 17: "
            "pip install 'patronage[spark]'"
        ) from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    settings = get_settings()
    spark = (
        SparkSession.builder.master(settings.spark_master)
        .appName("patronage")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# Rules compile to `id IN (subquery)` tests; PostgreSQL hashes such a subquery only when it
# fits in work_mem (default 4MB), else it rescans it for every customer: minutes instead of
# seconds at 1M customers (benchmarks/segments_eval.py --pg-url).
WORK_MEM = "256MB"


def prepare(backend: Any) -> None:
    """Session settings of a connection the database engine runs rules on."""
    backend.raw_sql(f"SET work_mem = '{WORK_MEM}'").close()


ENGINES: dict[str, type[DuckDBEngine]] = {
    "duckdb": DuckDBEngine,
    "database": DatabaseEngine,
    "spark": SparkEngine,
}


def engine_class() -> type[DuckDBEngine]:
    name = get_settings().analytics_engine
    if name not in ENGINES:
        raise ValidationFailed(
            f"segments run on the engines {', '.join(ENGINES)}; "
            f"PATRONAGE_ANALYTICS_ENGINE is {name!r}"
        )
    return ENGINES[name]


# -- percentiles -------------------------------------------------------------------------------

_PERCENTILE_TTL = 60.0
_percentiles: dict[tuple[str, str, float], tuple[float | None, float]] = {}


def percentile_offset(p: float, count: int) -> int:
    """Offset (0-based, ascending order) of the value at percentile `p` of `count` values."""
    return min(count - 1, max(0, math.ceil(p / 100 * count) - 1))


def store_percentiles(session: Session) -> PercentileLookup:
    """Feature percentiles over all customers in the latest analytics refresh: the value at
    offset ceil(p/100 · n) - 1 of the non-null values in ascending order (cached a minute)."""
    url = str(session.get_bind().engine.url)
    f = clause("features")

    def lookup(feature: str, p: float) -> float | None:
        key = (url, feature, p)
        cached = _percentiles.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        col = f.c[feature]
        n = session.execute(select(func.count(col))).scalar_one()
        value = None
        if n:
            offset = percentile_offset(p, n)
            value = session.execute(
                select(col).where(col.is_not(None)).order_by(col).limit(1).offset(offset)
            ).scalar_one()
        _percentiles[key] = (value, time.monotonic() + _PERCENTILE_TTL)
        return value

    return lookup


# -- one customer's rows -----------------------------------------------------------------------


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def load_facts(
    session: Session, customer_ids: Sequence[int], tables: set[str], event_names: set[str]
) -> dict[int, Facts]:
    """Facts of each live customer of `customer_ids` (merged-away ids are left out)."""
    out: dict[int, Facts] = {}
    c = clause("customers")
    trait_cols = [k for k in TABLES["customers"] if k not in {"id", "merged_into_id"}]
    for chunk in _chunks(list(customer_ids)):
        rows = session.execute(
            select(c.c.id, *(c.c[k] for k in trait_cols)).where(
                c.c.id.in_(chunk), c.c.merged_into_id.is_(None)
            )
        ).all()
        for row in rows:
            out[row[0]] = Facts(row[0], dict(zip(trait_cols, row[1:], strict=True)))
    ids = list(out)
    if not ids:
        return out
    for name in ("features", "rfm", "scores"):
        if name not in tables:
            continue
        t = clause(name)
        keys = list(TABLES[name])
        for chunk in _chunks(ids):
            for row in session.execute(
                select(*(t.c[k] for k in keys)).where(t.c.customer_id.in_(chunk))
            ):
                setattr(out[row[0]], name, dict(zip(keys, row, strict=True)))
    if "personas" in tables:
        t = clause("personas")
        for chunk in _chunks(ids):
            for cid, persona in session.execute(
                select(t.c.customer_id, t.c.persona_id).where(t.c.customer_id.in_(chunk))
            ):
                out[cid].persona = persona
    if "consents" in tables:
        t = clause("consents")
        for chunk in _chunks(ids):
            for cid, at, rid, purpose, granted in session.execute(
                select(t.c.customer_id, t.c.recorded_at, t.c.id, t.c.purpose, t.c.granted).where(
                    t.c.customer_id.in_(chunk)
                )
            ):
                out[cid].consents.append((_utc(at), rid, purpose, bool(granted)))
    if "events" in tables and event_names:
        t = clause("events")
        for chunk in _chunks(ids):
            for cid, name, ts, props in session.execute(
                select(
                    t.c.customer_id, t.c.name, t.c.timestamp, cast(t.c.properties, String())
                ).where(t.c.customer_id.in_(chunk), t.c.name.in_(sorted(event_names)))
            ):
                out[cid].events.append((name, _utc(ts), parse_properties(props)))
    if "visits" in tables:
        t = clause("visits")
        for chunk in _chunks(ids):
            for cid, ts, ctx in session.execute(
                select(t.c.customer_id, t.c.timestamp, cast(t.c.context, String())).where(
                    t.c.customer_id.in_(chunk), column("type") == "page"
                )
            ):
                out[cid].visits.append((_utc(ts), reason_of(parse_properties(ctx))))
    if "orders" in tables:
        o = clause("orders")
        orders: dict[int, tuple[int, datetime, int, str]] = {}
        for chunk in _chunks(ids):
            for oid, cid, status, total, placed in session.execute(
                select(o.c.id, o.c.customer_id, o.c.status, o.c.total_minor, o.c.placed_at).where(
                    o.c.customer_id.in_(chunk)
                )
            ):
                orders[oid] = (cid, _utc(placed), int(total or 0), status)
        categories: dict[int, set[int]] = defaultdict(set)
        if "order_items" in tables and orders:
            items, products = clause("order_items"), clause("products")
            for chunk in _chunks(list(orders)):
                for oid, cat in session.execute(
                    select(items.c.order_id, products.c.category_id)
                    .join_from(items, products, items.c.product_id == products.c.id)
                    .where(items.c.order_id.in_(chunk))
                ):
                    if cat is not None:
                        categories[oid].add(int(cat))
        for oid, (cid, placed, total, status) in orders.items():
            out[cid].orders.append((placed, total, status, frozenset(categories.get(oid, ()))))
    return out
