"""Dashboard KPIs on a large shop: time of `compute_kpis` and `take_snapshot`.

Builds a shop inside the database itself (SQL generators: a recursive CTE on SQLite,
generate_series on PostgreSQL): N customers (2% merged into another), about 4 orders each,
spread over three years, 5% cancelled, 3% refunded by half. Then times the KPI computation
(best and median of --runs) and, as the reference, one plain scan of the orders table
(`SELECT count(*), sum(total_minor) FROM orders`), the floor any aggregate over orders pays.

    .venv/bin/python benchmarks/dashboard_kpis.py [--customers 1000000] [--backend sqlite|postgres]

Prints one JSON line; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

THREE_YEARS = 3 * 365 * 86400


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _use(url: str, data_dir: Path) -> None:
    from patronage import config, db

    os.environ["PATRONAGE_ENV"] = "test"
    os.environ["PATRONAGE_DATA_DIR"] = str(data_dir)
    os.environ["PATRONAGE_DATABASE_URL"] = url
    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()


SQLITE_FILL = [
    """
    WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < :customers)
    INSERT INTO customers (id, key_version, traits, is_anonymous, created_at, updated_at,
                           signup_at, country, merged_into_id)
    SELECT x, 1, '{}', 0, :now, :now, :now, 'DE', CASE WHEN x % 50 = 0 THEN x - 1 END FROM seq
    """,
    """
    WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < :orders)
    INSERT INTO orders (id, external_id, customer_id, status, currency, subtotal_minor,
                        discount_minor, shipping_minor, tax_minor, total_minor, placed_at,
                        updated_at)
    SELECT x, 'o' || x, CAST(r * r * :customers AS INTEGER) + 1,
           CASE WHEN x % 20 = 0 THEN 'cancelled' ELSE 'delivered' END, 'EUR',
           500 + (x * 31337) % 20000, 0, 0, 0, 500 + (x * 31337) % 20000,
           strftime('%Y-%m-%d %H:%M:%S', :now, '-' || ((x * 7919) % :span) || ' seconds')
             || '.000000',
           :now
    FROM (SELECT x, (abs(random()) % 1000000) / 1000000.0 AS r FROM seq)
    """,
    """
    INSERT INTO refunds (order_id, amount_minor, created_at)
    SELECT id, total_minor / 2, :now FROM orders WHERE id % 33 = 0
    """,
]

POSTGRES_FILL = [
    """
    INSERT INTO customers (id, key_version, traits, is_anonymous, created_at, updated_at,
                           signup_at, country, merged_into_id)
    SELECT x, 1, '{}', false, :now, :now, :now, 'DE', CASE WHEN x % 50 = 0 THEN x - 1 END
    FROM generate_series(1, :customers) AS x
    """,
    """
    INSERT INTO orders (id, external_id, customer_id, status, currency, subtotal_minor,
                        discount_minor, shipping_minor, tax_minor, total_minor, placed_at,
                        updated_at)
    SELECT x, 'o' || x, floor(r * r * :customers)::bigint + 1,
           CASE WHEN x % 20 = 0 THEN 'cancelled' ELSE 'delivered' END, 'EUR',
           500 + (x * 31337) % 20000, 0, 0, 0, 500 + (x * 31337) % 20000,
           CAST(:now AS timestamptz) - make_interval(secs => (x * 7919) % :span),
           :now
    FROM (SELECT x, random() AS r FROM generate_series(1::bigint, :orders) AS x) AS g
    """,
    """
    INSERT INTO refunds (order_id, amount_minor, created_at)
    SELECT id, total_minor / 2, :now FROM orders WHERE id % 33 = 0
    """,
    "SELECT setval('customers_id_seq', (SELECT max(id) FROM customers))",
    "SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))",
    "ANALYZE",
]


def fill(url: str, customers: int, orders: int) -> float:
    from patronage import db

    engine = db.get_engine()
    postgres = url.startswith("postgresql")
    now = datetime.now(UTC).replace(microsecond=0)
    params = {
        "customers": customers,
        "orders": orders,
        "span": THREE_YEARS,
        "now": now if postgres else now.strftime("%Y-%m-%d %H:%M:%S.000000"),
    }
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in POSTGRES_FILL if postgres else SQLITE_FILL:
            conn.execute(text(statement), params)
    if not postgres:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def measure(runs: int) -> dict[str, object]:
    from patronage import db
    from patronage.analytics import service

    timings, scans = [], []
    kpis = None
    for i in range(runs):
        with db.transaction() as session:
            started = time.perf_counter()
            session.execute(text("SELECT count(*), sum(total_minor) FROM orders")).one()
            scans.append(time.perf_counter() - started)
        with db.transaction() as session:
            started = time.perf_counter()
            kpis = service.compute_kpis(session)
            timings.append(time.perf_counter() - started)
        say(f"  run {i + 1}: kpis {timings[-1]:.2f} s, plain scan {scans[-1]:.2f} s")
    with db.transaction() as session:
        started = time.perf_counter()
        service.take_snapshot(session)
        snapshot_s = time.perf_counter() - started
    assert kpis is not None
    return {
        "kpis_best_s": round(min(timings), 3),
        "kpis_median_s": round(statistics.median(timings), 3),
        "snapshot_s": round(snapshot_s, 3),
        "reference_plain_scan_best_s": round(min(scans), 3),
        "kpis": {
            "customers": kpis.customers,
            "buyers": kpis.buyers,
            "orders": kpis.orders,
            "revenue_minor": kpis.revenue_minor,
            "average_order_minor": kpis.average_order_minor,
            "repeat_purchase_rate": round(kpis.repeat_purchase_rate, 4),
        },
    }


def run(backend: str, customers: int, orders: int, runs: int, pg: str) -> dict[str, object]:
    from patronage import db, migrate

    with tempfile.TemporaryDirectory(prefix="patronage-bench-") as tmp:
        data_dir = Path(tmp)
        admin = None
        name = f"patronage_bench_{os.getpid()}"
        if backend == "sqlite":
            url = f"sqlite:///{data_dir / 'bench.db'}"
        else:
            base = make_url(pg).set(drivername="postgresql+psycopg")
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = base.set(database=name).render_as_string(hide_password=False)
        try:
            _use(url, data_dir)
            migrate.upgrade()
            say(f"{backend}: filling {customers:,} customers, {orders:,} orders …")
            fill_s = fill(url, customers, orders)
            say(f"{backend}: filled in {fill_s:.1f} s; measuring")
            result = {"backend": backend, "fill_s": round(fill_s, 1), **measure(runs)}
        finally:
            db.dispose_engines()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=float, default=4.0)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "PATRONAGE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/test"
        ),
    )
    args = parser.parse_args()
    orders = int(args.customers * args.orders_per_customer)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = [run(b, args.customers, orders, args.runs, args.pg_url) for b in backends]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "benchmark": "dashboard_kpis",
                "customers": args.customers,
                "orders": orders,
                "results": results,
                "peak_rss_mb": round(peak_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
