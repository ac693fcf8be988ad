"""Segment evaluation: a five-condition segment over 1M customers on DuckDB, and the
per-customer re-evaluation after one event with 200 live segments.

    .venv/bin/python benchmarks/segments_eval.py [--customers 1000000] [--events-per 12]
        [--store-customers 10000] [--segments 200] [--events 1000] [--seed 7]
        [--pg-url postgresql://…/scratch_db] [--spark] [--skip-full] [--skip-incremental]

Part 1 (`full`): synthetic columnar data generated directly with NumPy / Arrow (building a
1M-customer shop through the store takes far longer than the evaluation measured here) is
registered in DuckDB exactly as `segments.engine` registers the store's tables. The segment
(country, a feature, "Product Viewed where category = shoes at least twice in 30 days", RFM,
marketing-email consent) is compiled by `segments.compiler` and run to the member id list;
the reference is the same segment written by hand as one DuckDB SQL query, in the same run.
The time to read a store into DuckDB is not included (it is shared by every segment of a
rebuild).
With `--pg-url` the same tables are COPied into a scratch PostgreSQL database (dropped and
created) and the segment runs inside PostgreSQL (the `database` engine); with `--spark` they
are written as a Parquet lake and the segment runs on Spark (`local[2]`, the `spark`
engine). Both check that they find DuckDB's members; the JVM start and the lake are reported
apart, as is Spark's first run (it plans and compiles code).

Part 2 (`incremental`): a real SQLite store (migrated, `--store-customers` customers with
events, orders, consents), `--segments` live segments of varied rules. For `--events`
random customers: one "Product Viewed" event is inserted and `refresh_customers` re-evaluates
that customer in every segment the event can affect; its latency percentiles are reported.
The reference is the same re-evaluation with the compiled Ibis rules on DuckDB restricted to
that customer's rows (one query per segment), on a few of the same customers.

Prints progress on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
COUNTRIES = np.array(["DE", "FR", "AT", "IT", "ES", "NL", "PL", "GB", "US", "SE"])
CATEGORIES = np.array(["shoes", "hats", "bags", "shirts", "watches"])
EVENT_NAMES = np.array(["Product Viewed", "Product Added", "Order Completed", "Page Viewed"])
RFM = np.array(
    ["Champions", "Loyal", "Potential Loyalist", "New", "At Risk", "Hibernating", "Lost"]
)

FIVE = {
    "type": "and",
    "conditions": [
        {"type": "trait", "field": "country", "op": "in", "value": ["DE", "AT"]},
        {"type": "feature", "feature": "sessions_30d", "op": "gte", "value": 2},
        {
            "type": "event",
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "eq", "value": "shoes"}],
            "at_least": 2,
            "within_days": 30,
        },
        {"type": "rfm", "segments": ["Champions", "Loyal", "Potential Loyalist"]},
        {"type": "consent", "purpose": "marketing_email"},
    ],
}

REFERENCE_SQL = """
WITH views AS (
  SELECT customer_id FROM events
  WHERE name = 'Product Viewed' AND timestamp >= TIMESTAMP '{cutoff}'
    AND json_extract_string(properties, '$.category') = 'shoes'
  GROUP BY customer_id HAVING count(*) >= 2
), latest AS (
  SELECT customer_id, arg_max(granted, (recorded_at, id)) AS granted
  FROM consents WHERE purpose = 'marketing_email' GROUP BY customer_id
)
SELECT c.id FROM customers c
JOIN features f ON f.customer_id = c.id
JOIN rfm r ON r.customer_id = c.id
JOIN views v ON v.customer_id = c.id
JOIN latest l ON l.customer_id = c.id
WHERE c.merged_into_id IS NULL AND c.country IN ('DE', 'AT') AND f.sessions_30d >= 2
  AND r.segment IN ('Champions', 'Loyal', 'Potential Loyalist') AND l.granted
"""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def synthetic(n: int, events_per: int, seed: int) -> dict[str, pa.Table]:
    from patronage.segments.compiler import TABLES

    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype=np.int64)
    now = np.datetime64(NOW.replace(tzinfo=None), "us")
    customers = {
        "id": ids,
        "birth_year": rng.integers(1940, 2006, n),
        "gender": rng.choice(np.array(["female", "male", "other"]), n),
        "language": rng.choice(np.array(["de", "fr", "en", "it"]), n),
        "country": rng.choice(COUNTRIES, n),
        "region": rng.choice(np.array(["north", "south", "east", "west"]), n),
        "city": rng.choice(np.array([f"city{i}" for i in range(50)]), n),
        "postcode_prefix": rng.choice(np.array(["10", "20", "30"]), n),
        "is_anonymous": np.zeros(n, dtype=bool),
        "merged_into_id": pa.nulls(n, pa.int64()),
    }
    features: dict[str, Any] = {"customer_id": ids}
    for name, kind in TABLES["features"].items():
        if name == "customer_id":
            continue
        if kind == "float64":
            features[name] = rng.poisson(2.0, n).astype(np.float64)
        else:
            features[name] = pa.nulls(n, pa.string())
    buyers = ids[rng.random(n) < 0.6]
    rfm = {
        "customer_id": buyers,
        "r": rng.integers(1, 6, len(buyers)),
        "f": rng.integers(1, 6, len(buyers)),
        "m": rng.integers(1, 6, len(buyers)),
        "segment": rng.choice(RFM, len(buyers)),
    }
    k = int(n * 1.5)
    consents = {
        "id": np.arange(1, k + 1, dtype=np.int64),
        "customer_id": rng.integers(1, n + 1, k),
        "purpose": rng.choice(np.array(["marketing_email", "analytics", "marketing_sms"]), k),
        "granted": rng.random(k) < 0.7,
        "recorded_at": now - rng.integers(0, 365 * 86_400, k).astype("timedelta64[s]"),
    }
    m = n * events_per
    cats = pa.array(rng.choice(CATEGORIES, m, p=[0.4, 0.15, 0.15, 0.15, 0.15]))
    props = pc.binary_join_element_wise('{"category": "', cats, '"}', "")
    events = {
        "customer_id": rng.integers(1, n + 1, m),
        "name": rng.choice(EVENT_NAMES, m, p=[0.5, 0.2, 0.1, 0.2]),
        "timestamp": now - rng.integers(0, 60 * 86_400, m).astype("timedelta64[s]"),
        "properties": props,
    }
    out = {}
    for name, data in (
        ("customers", customers),
        ("features", features),
        ("rfm", rfm),
        ("consents", consents),
        ("events", events),
    ):
        schema = pa.schema([(c, _arrow_type(t)) for c, t in TABLES[name].items()])
        out[name] = pa.table(
            {c: pa.array(v) if not isinstance(v, pa.Array) else v for c, v in data.items()}
        ).cast(schema)
    for name in ("orders", "order_items", "products", "scores", "visits", "personas"):
        schema = pa.schema([(c, _arrow_type(t)) for c, t in TABLES[name].items()])
        out[name] = schema.empty_table()
    out["clock"] = pa.table({"now": pa.array([NOW.replace(tzinfo=None)], pa.timestamp("us"))})
    return out


def _arrow_type(kind: str) -> pa.DataType:
    from patronage.segments.engine import _ARROW

    return _ARROW[kind]


def part_full(
    n: int,
    events_per: int,
    seed: int,
    runs: int = 5,
    pg_url: str | None = None,
    spark: bool = False,
) -> dict[str, Any]:
    from patronage.segments import rules as r
    from patronage.segments.engine import DuckDBEngine

    say(f"generating {n:,} customers and {n * events_per:,} events…")
    started = time.perf_counter()
    data = synthetic(n, events_per, seed)
    generated = time.perf_counter() - started
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    for name, table in data.items():
        DuckDBEngine.register(con, name, table)
    registered = time.perf_counter() - started
    eng = DuckDBEngine(con)
    rule = r.parse_rule(FIVE)

    def ours() -> list[int]:
        compiler = eng.compiler(lambda _: rule, lambda *_: None)
        return eng.members(compiler, rule)

    cutoff = (NOW - timedelta(days=30)).replace(tzinfo=None).isoformat(sep=" ")
    sql = REFERENCE_SQL.format(cutoff=cutoff)

    def reference() -> list[int]:
        return sorted(x for (x,) in con.execute(sql).fetchall())

    members = ours()  # warm-up; also checks both give the same members
    assert members == reference(), "compiled and hand-written queries disagree"
    times, ref_times = [], []
    for i in range(runs):
        t = time.perf_counter()
        ours()
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        reference()
        ref_times.append(time.perf_counter() - t)
        say(f"run {i + 1}: compiled {times[-1]:.3f} s, hand-written SQL {ref_times[-1]:.3f} s")
    eng.close()
    duckdb_load = [round(x, 2) for x in os.getloadavg()]  # before the other engines add theirs
    postgres = part_postgres(data, members, pg_url) if pg_url else None
    on_spark = part_spark(data, members) if spark else None
    return {
        "customers": n,
        "events": n * events_per,
        "members": len(members),
        "seconds_median": round(statistics.median(times), 3),
        "seconds_best": round(min(times), 3),
        "target_seconds": 2.0,
        "reference_handwritten_sql_median": round(statistics.median(ref_times), 3),
        "generate_seconds": round(generated, 1),
        "arrow_to_duckdb_seconds": round(registered, 2),
        "load_average": duckdb_load,
        "postgres": postgres,
        "spark": on_spark,
    }


# -- part 1c: the same segment on Spark (the `spark` engine) ------------------------------------


def _timed_members(eng: Any, rule: Any, runs: int, label: str) -> list[float]:
    """Seconds of `runs` full evaluations of the rule by an engine (compiled each time, as a
    refresh does)."""
    times = []
    for i in range(runs):
        t = time.perf_counter()
        eng.members(eng.compiler(lambda _: rule, lambda *_: None), rule)
        times.append(time.perf_counter() - t)
        say(f"{label} run {i + 1}: {times[-1]:.3f} s")
    return times


def part_spark(data: dict[str, pa.Table], expected: list[int], runs: int = 3) -> dict[str, Any]:
    """The same synthetic tables as a Parquet lake read by Spark (PATRONAGE_SPARK_MASTER,
    default local[2]); the segment run by `segments.engine.SparkEngine`."""
    from patronage.segments import rules as r
    from patronage.segments.engine import SparkEngine, spark_session

    started = time.perf_counter()
    spark_session()
    session_seconds = time.perf_counter() - started
    started = time.perf_counter()
    eng = SparkEngine.from_arrow(data)
    lake_seconds = time.perf_counter() - started
    rule = r.parse_rule(FIVE)
    try:
        t = time.perf_counter()
        members = eng.members(eng.compiler(lambda _: rule, lambda *_: None), rule)
        first = time.perf_counter() - t
        say(f"spark first run: {first:.3f} s")
        times = _timed_members(eng, rule, runs, "spark")
    finally:
        eng.close()
    return {
        "engine": "spark (local[2] unless PATRONAGE_SPARK_MASTER)",
        "members": len(members),
        "same_members_as_duckdb": members == expected,
        "seconds_median": round(statistics.median(times), 3),
        "seconds_best": round(min(times), 3),
        "seconds_first_run": round(first, 3),
        "session_start_seconds": round(session_seconds, 1),
        "arrow_to_parquet_lake_seconds": round(lake_seconds, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# -- part 1b: the same segment inside PostgreSQL (the `database` engine) --------------------------

# where the compiler's tables live in the store, and the store's own index on events
PG_TABLES = {
    "customers": "customers",
    "features": "analytics_customer_features",
    "rfm": "analytics_rfm",
    "scores": "analytics_customer_scores",
    "consents": "consents",
    "orders": "orders",
    "order_items": "order_items",
    "products": "products",
    "personas": "segment_persona_members",
}
_PG_TYPES = {"int64": "BIGINT", "string": "TEXT", "boolean": "BOOLEAN",
             "timestamp": "TIMESTAMPTZ", "float64": "DOUBLE PRECISION"}  # fmt: skip


def _copy(cur: Any, table: str, data: pa.Table) -> None:
    import pyarrow.csv as pacsv

    cols = ", ".join(f'"{c}"' for c in data.column_names)
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv, HEADER true)") as copy:
        for i, batch in enumerate(data.to_batches(max_chunksize=500_000)):
            sink = pa.BufferOutputStream()
            options = pacsv.WriteOptions(include_header=i == 0)
            pacsv.write_csv(pa.Table.from_batches([batch]), sink, write_options=options)
            copy.write(sink.getvalue().to_pybytes())


def part_postgres(
    data: dict[str, pa.Table], expected: list[int], pg_url: str, runs: int = 3
) -> dict[str, Any]:
    """The same synthetic tables COPied into a scratch PostgreSQL database, in the store's
    table names and types (events with their store indexes), then the five-condition segment
    run by `segments.engine.DatabaseEngine` inside PostgreSQL."""
    import ibis
    import psycopg
    from sqlalchemy.engine import make_url

    from patronage.segments import rules as r
    from patronage.segments.compiler import TABLES
    from patronage.segments.engine import DatabaseEngine, prepare

    url = make_url(pg_url)
    name = url.database or "bench_segments_eval"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')
    target = url.set(drivername="postgresql").render_as_string(False)
    started = time.perf_counter()
    with psycopg.connect(target) as con, con.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")  # the CSV's timestamps are UTC wall-clock
        for short, table in PG_TABLES.items():
            cols = ", ".join(f'"{c}" {_PG_TYPES[t]}' for c, t in TABLES[short].items())
            cur.execute(f"CREATE TABLE {table} ({cols})")
            say(f"  COPY {table} ({data[short].num_rows:,} rows)")
            _copy(cur, table, data[short])
        # events and page views share the store's events table (type track / page)
        cur.execute(
            "CREATE TABLE events (customer_id BIGINT, type TEXT, name TEXT, "
            '"timestamp" TIMESTAMPTZ, properties JSONB, context JSONB)'
        )
        say(f"  COPY events ({data['events'].num_rows:,} rows)")
        ev = data["events"]
        ev = ev.append_column("type", pa.repeat("track", ev.num_rows))
        _copy(cur, "events", ev.append_column("context", pa.repeat("{}", ev.num_rows)))
        for cols in ('customer_id, "timestamp"', 'name, "timestamp"', '"timestamp"'):
            cur.execute(f"CREATE INDEX ON events ({cols})")
        cur.execute("CREATE INDEX ON consents (customer_id)")
        cur.execute("CREATE UNIQUE INDEX ON customers (id)")
        con.commit()
        con.autocommit = True
        cur.execute("VACUUM ANALYZE")
    loaded = time.perf_counter() - started
    backend = ibis.postgres.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=name
    )
    prepare(backend)  # as DatabaseEngine.from_store does
    eng = DatabaseEngine(backend, NOW)
    rule = r.parse_rule(FIVE)
    compiler = eng.compiler(lambda _: rule, lambda *_: None)
    members = eng.members(compiler, rule)  # warm-up and check
    times = _timed_members(eng, rule, runs, "postgres")
    eng.close()
    return {
        "engine": "database (inside PostgreSQL)",
        "members": len(members),
        "same_members_as_duckdb": members == expected,
        "seconds_median": round(statistics.median(times), 3),
        "seconds_best": round(min(times), 3),
        "load_seconds": round(loaded, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# -- part 2: incremental ------------------------------------------------------------------------


def segment_rules(count: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        kind = i % 8
        country = str(rng.choice(COUNTRIES))
        cat = str(rng.choice(CATEGORIES))
        days = int(rng.choice([7, 30, 90]))
        if kind == 0:
            rule = {"type": "trait", "field": "country", "op": "eq", "value": country}
        elif kind == 1:
            rule = {
                "type": "event",
                "event": "Product Viewed",
                "where": [{"property": "category", "op": "eq", "value": cat}],
                "at_least": int(rng.integers(1, 4)),
                "within_days": days,
            }
        elif kind == 2:
            rule = {"type": "not_done", "event": "Order Completed", "since_days": days}
        elif kind == 3:
            rule = {
                "type": "spent",
                "op": "gt",
                "amount_minor": int(rng.integers(1, 50)) * 1000,
                "within_days": 365,
            }
        elif kind == 4:
            rule = {"type": "consent", "purpose": "marketing_email"}
        elif kind == 5:
            rule = {
                "type": "trait",
                "field": "age",
                "op": "between",
                "value": sorted(int(x) for x in rng.integers(18, 80, 2)),
            }
        elif kind == 6:
            rule = {
                "type": "bought_category",
                "category_id": int(rng.integers(1, 6)),
                "within_days": 365,
            }
        else:
            rule = {"type": "event", "event": "Product Added", "within_days": days}
        out.append(
            {
                "type": "and",
                "conditions": [
                    rule,
                    {"type": "trait", "field": "country", "op": "ne", "value": "ZZ"},
                    {"type": "event", "event": "Product Viewed", "within_days": 120},
                ],
            }
            if i % 3 == 0
            else rule
        )
    return out


def build_store(data_dir: Path, customers: int, seed: int) -> None:
    from sqlalchemy import create_engine, insert

    from patronage import config, db, migrate
    from patronage.catalog.models import Category, Product
    from patronage.collect.models import Event
    from patronage.customers.models import Consent, Customer
    from patronage.orders.models import Order, OrderItem

    url = f"sqlite:///{data_dir / 'patronage.db'}"
    os.environ["PATRONAGE_DATABASE_URL"] = url
    os.environ["PATRONAGE_DATA_DIR"] = str(data_dir)
    config.get_settings.cache_clear()
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    rng = np.random.default_rng(seed)
    now = NOW
    with db.transaction() as s:
        s.execute(
            insert(Category),
            [{"id": i, "external_id": f"c{i}", "name": f"c{i}", "path": "/"} for i in range(1, 6)],
        )
        s.execute(
            insert(Product),
            [
                {
                    "id": i,
                    "external_id": f"p{i}",
                    "name": "p",
                    "category_id": 1 + i % 5,
                    "price_minor": 1000,
                }
                for i in range(1, 101)
            ],
        )
        s.execute(
            insert(Customer),
            [
                {
                    "id": i,
                    "country": str(rng.choice(COUNTRIES)),
                    "birth_year": int(rng.integers(1940, 2006)),
                    "gender": "female",
                    "language": "de",
                    "traits": {},
                    "is_anonymous": False,
                }
                for i in range(1, customers + 1)
            ],
        )
        events, orders, items, consents = [], [], [], []
        for cid in range(1, customers + 1):
            for j in range(20):
                events.append(
                    {
                        "message_id": f"{cid}-{j}",
                        "type": "track",
                        "name": str(rng.choice(EVENT_NAMES)),
                        "customer_id": cid,
                        "properties": {"category": str(rng.choice(CATEGORIES))},
                        "context": {},
                        "timestamp": now - timedelta(seconds=int(rng.integers(0, 200 * 86400))),
                        "received_at": now,
                    }
                )
            for _ in range(int(rng.integers(0, 4))):
                oid = len(orders) + 1
                orders.append(
                    {
                        "id": oid,
                        "external_id": f"o{oid}",
                        "customer_id": cid,
                        "status": "delivered",
                        "total_minor": int(rng.integers(1000, 30000)),
                        "placed_at": now - timedelta(days=int(rng.integers(0, 400))),
                    }
                )
                items.append(
                    {
                        "order_id": oid,
                        "product_id": int(rng.integers(1, 101)),
                        "quantity": 1,
                        "unit_price_minor": 1000,
                    }
                )
            consents.append(
                {
                    "customer_id": cid,
                    "purpose": "marketing_email",
                    "granted": bool(rng.random() < 0.6),
                    "source": "bench",
                    "recorded_at": now - timedelta(days=3),
                }
            )
        s.execute(insert(Event), events)
        s.execute(insert(Order), orders)
        s.execute(insert(OrderItem), items)
        s.execute(insert(Consent), consents)


def part_incremental(customers: int, segments: int, events: int, seed: int) -> dict[str, Any]:
    from sqlalchemy import insert

    from patronage import db
    from patronage.collect.models import Event
    from patronage.segments import engine, service
    from patronage.segments.schemas import SegmentCreate

    with tempfile.TemporaryDirectory() as tmp:
        say(f"building a SQLite store of {customers:,} customers…")
        build_store(Path(tmp), customers, seed)
        say(f"creating {segments} segments and evaluating them…")
        with db.transaction() as s:
            for i, rule in enumerate(segment_rules(segments, seed)):
                service.create_segment(
                    s, SegmentCreate(name=f"seg {i}", rule=rule), "bench", evaluate_now=False
                )
        started = time.perf_counter()
        with db.transaction() as s:
            service.evaluate(s, now=NOW)
        full_rebuild = time.perf_counter() - started
        topics = service.topics_of_messages([("track", "Product Viewed")])
        with db.transaction() as s:
            affected = len(service.affected(service.repo.all_segments(s), topics))
        rng = np.random.default_rng(seed + 1)
        latencies, with_commit, changed = [], [], 0
        say(f"{events} events, each re-evaluating {affected} affected segments for one customer…")
        for i in range(events):
            cid = int(rng.integers(1, customers + 1))
            started = time.perf_counter()
            with db.transaction() as s:
                s.execute(
                    insert(Event),
                    [
                        {
                            "message_id": f"bench-{i}",
                            "type": "track",
                            "name": "Product Viewed",
                            "customer_id": cid,
                            "properties": {"category": str(rng.choice(CATEGORIES))},
                            "context": {},
                            "timestamp": NOW,
                            "received_at": NOW,
                        }
                    ],
                )
                t = time.perf_counter()
                changed += service.refresh_customers(s, [cid], topics, now=NOW)
                latencies.append(time.perf_counter() - t)
            with_commit.append(time.perf_counter() - started)
        # reference: the compiled Ibis rules on DuckDB, restricted to the customer's rows
        say("reference: DuckDB per-customer evaluation…")
        ref = []
        with db.transaction() as s:
            cat = service._catalogue(s)
            chosen = service.affected(cat.segments.values(), topics)
            rules_ = [cat.rules[x.id] for x in chosen]
            for _ in range(5):
                cid = int(rng.integers(1, customers + 1))
                t = time.perf_counter()
                eng = _one_customer_engine(s, cid, rules_, engine)
                percentiles = engine.store_percentiles(s)
                for rule in rules_:
                    eng.members(eng.compiler(cat.lookup, percentiles), rule)
                eng.close()
                ref.append(time.perf_counter() - t)
    ms = np.array(latencies) * 1000
    return {
        "store_customers": customers,
        "segments": segments,
        "affected_segments": affected,
        "events": events,
        "membership_changes": changed,
        "refresh_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "refresh_ms_p99": round(float(np.percentile(ms, 99)), 2),
        "target_p99_ms": 50,
        "event_insert_refresh_commit_ms_p99": round(
            float(np.percentile(np.array(with_commit) * 1000, 99)), 2
        ),
        "reference_duckdb_per_customer_ms_median": round(statistics.median(ref) * 1000, 1),
        "full_rebuild_all_segments_seconds": round(full_rebuild, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _one_customer_engine(session: Any, cid: int, rules_: list[Any], engine: Any) -> Any:
    """The DuckDB engine loaded with only one customer's rows (the reference)."""
    from sqlalchemy import select

    from patronage.segments.compiler import TABLES
    from patronage.segments.engine import DuckDBEngine, _arrow, _selected, clause

    tables, _ = engine.needs(rules_)
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for name in TABLES:
        if name == "clock":
            continue
        t = clause(name)
        stmt = select(*_selected(name, t))
        key = (
            t.c.id
            if name == "customers"
            else t.c.customer_id
            if "customer_id" in TABLES[name]
            else None
        )
        if key is not None:
            stmt = stmt.where(key == cid)
        rows = session.execute(stmt).all() if name in tables else []
        DuckDBEngine.register(con, name, pa.Table.from_batches([_arrow(name, rows)]))
    DuckDBEngine.register(
        con, "clock", pa.table({"now": pa.array([NOW.replace(tzinfo=None)], pa.timestamp("us"))})
    )
    return DuckDBEngine(con)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per", type=int, default=12)
    parser.add_argument("--store-customers", type=int, default=10_000)
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--pg-url",
        help="also run the segment inside PostgreSQL on a copy of the data in this database "
        "(dropped and created), e.g. postgresql://postgres@127.0.0.1:5432/bench_segments_eval",
    )
    parser.add_argument(
        "--spark", action="store_true", help="also run the segment on Spark (local[2])"
    )
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    full = None
    if not args.skip_full:
        full = part_full(
            args.customers, args.events_per, args.seed, pg_url=args.pg_url, spark=args.spark
        )
        say(json.dumps(full))
    if args.skip_incremental:
        print(json.dumps({"benchmark": "segments_eval", "full": full}))
        return
    incremental = part_incremental(args.store_customers, args.segments, args.events, args.seed)
    print(json.dumps({"benchmark": "segments_eval", "full": full, "incremental": incremental}))


if __name__ == "__main__":
    main()
