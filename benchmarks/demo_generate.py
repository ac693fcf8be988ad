"""Benchmark: generate the demo shop into a fresh database through the bulk write paths.

    .venv/bin/python benchmarks/demo_generate.py --customers 1000000 --db sqlite
    .venv/bin/python benchmarks/demo_generate.py --customers 1000000 --db postgres \\
        --pg-url postgresql://postgres@127.0.0.1:5432/bench_demo

Prints one JSON line: total time, rows and rows/s per table and overall, where the time
went (generating, writing, committing, rebuilding indexes), peak RSS, and the encryption
overhead: the same customer insert (--encryption-sample customers) with field encryption
and blind indexes, and with the personal columns written in clear, measured in this run.
The database is created afresh (PostgreSQL: dropped and created; SQLite: a new file).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 600
TARGET_RSS_MIB = 4096


class StderrReporter:
    """Progress on stderr: one line per stage and every few percent of customers."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.total = 0
        self.done = 0
        self.shown = -1

    def stage(self, name: str, total: int | None = None) -> None:
        self.total, self.done, self.shown = total or 0, 0, -1
        print(f"[{self._t()}] {name}", file=sys.stderr, flush=True)

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        if self.total:
            percent = 100 * self.done // self.total
            if percent // 5 != self.shown // 5:
                self.shown = percent
                print(f"[{self._t()}]   {self.done:,}/{self.total:,}", file=sys.stderr, flush=True)

    def _t(self) -> str:
        return f"{time.perf_counter() - self.started:7.1f}s"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_worker_rss_mib() -> float:
    """The largest generator process (they have exited by now)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def fresh_postgres(url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return target.render_as_string(hide_password=False)


def use_database(url: str, data_dir: Path) -> None:
    from patronage import config, db

    os.environ["PATRONAGE_DATA_DIR"] = str(data_dir)
    os.environ["PATRONAGE_DATABASE_URL"] = url
    os.environ.setdefault("PATRONAGE_ENV", "development")
    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()


def generate(customers: int, seed: int, workers: int | None) -> dict[str, Any]:
    from patronage import migrate
    from patronage.db import get_engine
    from patronage.demo import pipeline, service
    from patronage.demo.generator import Plan

    migrate.upgrade()
    plan = Plan(customers=customers, seed=seed)
    started = time.perf_counter()
    with get_engine().connect() as connection:
        stats = service.write_shop(connection, plan, StderrReporter(), workers)
    seconds = time.perf_counter() - started
    total_rows = sum(stats.rows.values())
    return {
        "seconds": round(seconds, 1),
        "rows": total_rows,
        "rows_per_s": round(total_rows / seconds),
        "generate_seconds": round(stats.generate_seconds, 1),
        "write_seconds": round(sum(stats.write_seconds.values()), 1),
        "workers_count": pipeline.default_workers(plan, get_engine().dialect.name)
        if workers is None
        else workers,
        "merge_seconds": round(stats.write_seconds.get("merge", 0.0), 1),
        "commit_seconds": round(stats.commit_seconds, 1),
        "index_seconds": round(stats.index_seconds, 1),
        "analyze_seconds": round(stats.analyze_seconds, 1),
        "tables": {
            name: {
                "rows": count,
                "write_seconds": round(stats.write_seconds[name], 2),
                "rows_per_s": round(count / stats.write_seconds[name])
                if stats.write_seconds[name]
                else None,
            }
            for name, count in stats.rows.items()
        },
        "lines_per_customer": round(stats.rows["order_items"] / customers, 2),
        "events_per_line": round(stats.rows["events"] / max(1, stats.rows["order_items"]), 2),
    }


def encryption_overhead(sample: int, seed: int) -> dict[str, Any]:
    """The same customers inserted twice into an empty table: sealed, then in clear."""
    import numpy as np
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from patronage.config import get_cipher
    from patronage.customers import service as customers_service
    from patronage.customers.models import PII_FIELDS, Customer
    from patronage.db import get_engine
    from patronage.demo.generator import CHUNK, Plan, catalog_for
    from patronage.demo.people import make_people
    from patronage.demo.timeline import timeline
    from patronage.kit.bulkwrite import write_columns

    plan = Plan(customers=sample, seed=seed)
    tl = timeline(plan.until)
    catalog = catalog_for(plan, tl)
    batches = []
    for index in range(plan.chunks):
        n = min(CHUNK, sample - index * CHUNK)
        rng = np.random.default_rng([seed, 9, index])
        batches.append(make_people(rng, catalog, tl, 1 + index * CHUNK, n).columns)

    def empty(connection: Any) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("TRUNCATE customers CASCADE"))
        else:  # checking every referencing table per deleted row would take minutes
            connection.commit()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
            connection.execute(text("DELETE FROM customers"))
            connection.commit()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")
        connection.commit()

    def insert(sealed: bool) -> float:
        with get_engine().connect() as connection:
            empty(connection)
            session = Session(bind=connection)
            started = time.perf_counter()
            for columns in batches:
                if sealed:
                    customers_service.insert_customers(session, columns)
                else:
                    clear = dict(columns)
                    for name in PII_FIELDS:
                        clear[name] = [
                            v.encode() if isinstance(v, str) else v
                            for v in clear[name]  # type: ignore[attr-defined]
                        ]
                    clear["key_version"] = np.ones(len(clear["id"]), dtype=np.int64)  # type: ignore[arg-type]
                    write_columns(session, Customer.__table__, clear)  # type: ignore[arg-type]
                session.commit()
            seconds = time.perf_counter() - started
            empty(connection)
            return seconds

    cipher = get_cipher()
    started = time.perf_counter()
    for columns in batches:
        for name in PII_FIELDS:
            context = f"customers.{name}"
            for value in columns[name]:  # type: ignore[attr-defined]
                cipher.encrypt(value, context)
    encrypt_only = time.perf_counter() - started
    clear_seconds = insert(sealed=False)
    sealed_seconds = insert(sealed=True)
    return {
        "customers": sample,
        "with_encryption_seconds": round(sealed_seconds, 2),
        "without_encryption_seconds": round(clear_seconds, 2),
        "with_encryption_rows_per_s": round(sample / sealed_seconds),
        "without_encryption_rows_per_s": round(sample / clear_seconds),
        "overhead_percent": round(100 * (sealed_seconds - clear_seconds) / clear_seconds, 1),
        "encrypt_only_seconds": round(encrypt_only, 2),
        "encrypt_us_per_field": round(1e6 * encrypt_only / (sample * len(PII_FIELDS)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432/bench_demo", help="dropped!"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="keys (and the SQLite file, bench.db) go here; default: a temporary directory, "
        "deleted at the end",
    )
    parser.add_argument("--encryption-sample", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=None, help="default: one per spare core")
    args = parser.parse_args()

    work = Path(args.data_dir or tempfile.mkdtemp(prefix="bench-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.db == "postgres":
        url = fresh_postgres(args.pg_url)
        scratch = fresh_postgres(args.pg_url.rsplit("/", 1)[0] + "/bench_demo_encryption")
    else:
        for name in ("bench.db", "bench.db-wal", "bench.db-shm", "scratch.db"):
            (work / name).unlink(missing_ok=True)
        url = f"sqlite:///{work / 'bench.db'}"
        scratch = f"sqlite:///{work / 'scratch.db'}"
    print(f"database: {url}", file=sys.stderr)

    use_database(url, work)
    result: dict[str, Any] = {
        "benchmark": "demo_generate",
        "db": args.db,
        "customers": args.customers,
        "seed": args.seed,
    }
    result.update(generate(args.customers, args.seed, args.workers))
    result["peak_rss_mib"] = round(peak_rss_mib())
    result["peak_worker_rss_mib"] = round(peak_worker_rss_mib())
    if args.db == "sqlite":
        result["database_mib"] = round((work / "bench.db").stat().st_size / 2**20)

    print("encryption overhead …", file=sys.stderr, flush=True)
    use_database(scratch, work)
    from patronage import migrate

    migrate.upgrade()
    result["encryption"] = encryption_overhead(args.encryption_sample, args.seed)
    result["peak_rss_mib"] = round(max(result["peak_rss_mib"], peak_rss_mib()))
    result["targets"] = {
        "seconds": TARGET_SECONDS,
        "peak_rss_mib": TARGET_RSS_MIB,
        "met": result["seconds"] <= TARGET_SECONDS
        and result["peak_rss_mib"] + result["workers_count"] * result["peak_worker_rss_mib"]
        <= TARGET_RSS_MIB,
    }
    print(json.dumps(result), flush=True)
    if args.data_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
