"""Benchmark: reading a SQLite store into the DuckDB engine's Arrow tables, three ways, in one run.

    .venv/bin/python benchmarks/analytics_read.py --db /tmp/bench-sqlite/bench.db

- `csv`: ADR 0005's reader — SQLite spells blocks of rows as CSV (printf), Arrow parses them;
  the events on a second connection (what the session's own connection still uses when it
  holds uncommitted rows);
- `adbc`: ADR 0006's reader — ADBC's SQLite driver in a child process, two connections,
  straight into Arrow (the blocks come back as Arrow files in /dev/shm, mapped);
- `connectorx`: the same block queries read by connectorx (Rust), all blocks of a table at
  once in its own threads. Only if `connectorx` is importable (it is not a dependency:
  `pip install --target DIR connectorx` and PYTHONPATH=DIR).

Every table of each reader is compared with the CSV reader's (schema and values: types, NULLs,
timestamps, row order; tables that differ are compared again sorted, to tell another row order
from other values). Prints one JSON line: per reader wall and CPU seconds (all threads), the load
average before and after, and whether every table is equal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from patronage.analytics import engine


def _cpu() -> float:
    """CPU seconds of this process and its finished children (ADBC reads in a child)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def read_csv(path: str) -> dict[str, pa.Table]:
    from sqlalchemy.orm import Session

    from patronage import db

    # the store's engine as patronage opens it (its pragmas: mmap, cache size, busy timeout)
    with Session(db.engine_for(f"sqlite:///{path}")) as session:
        raw = session.connection().connection.driver_connection
        return engine._read_sqlite_tables(session, raw, None, use_adbc=False)


def read_adbc(path: str) -> dict[str, pa.Table]:
    raw = sqlite3.connect(path)
    try:
        return engine._read_sqlite_adbc(path, raw, None)
    finally:
        raw.close()


def read_connectorx(path: str) -> dict[str, pa.Table]:
    import connectorx as cx

    raw = sqlite3.connect(path)
    out = {}
    try:
        for name in engine.SOURCE_COLUMNS:
            queries = [block.query for block in engine._adbc_blocks(raw, name)]
            if not queries:
                out[name] = engine._arrow_schema(name).empty_table()
                continue
            table = cx.read_sql(f"sqlite://{path}", queries, return_type="arrow")
            # every block's sentinel row (wherever connectorx put it) is dropped
            table = table.filter(pc.equal(table.column("sentinel"), 0))
            columns = [
                table.column(key).cast(arrow) for key, _, arrow in engine._sqlite_columns(name)
            ]
            keys = [key for key, _, _ in engine._sqlite_columns(name)]
            out[name] = engine._normalise(name, pa.table(columns, names=keys))
    finally:
        raw.close()
    return out


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names]).combine_chunks()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="the SQLite demo database file")
    parser.add_argument("--readers", default="csv,adbc,connectorx")
    args = parser.parse_args()
    readers = {"csv": read_csv, "adbc": read_adbc, "connectorx": read_connectorx}
    names = [r.strip() for r in args.readers.split(",") if r.strip()]
    if "csv" in names:
        names.remove("csv")
    names.insert(0, "csv")  # the reference, read first
    results: list[dict[str, Any]] = []
    reference: dict[str, pa.Table] = {}
    for name in names:
        if name == "connectorx":
            try:
                import connectorx  # noqa: F401
            except ImportError:
                results.append({"reader": name, "error": "connectorx is not installed"})
                continue
        load_start, started, cpu = _load(), time.perf_counter(), _cpu()
        tables = readers[name](args.db)
        run: dict[str, Any] = {
            "reader": name,
            "seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(_cpu() - cpu, 2),
            "loadavg_start": load_start,
            "loadavg_end": _load(),
            "rows": {t: tables[t].num_rows for t in tables},
        }
        if name == "csv":
            reference = tables
        else:
            run["equal_to_csv"] = {
                t: tables[t].schema == reference[t].schema
                and tables[t].combine_chunks().equals(reference[t].combine_chunks())
                for t in reference
            }
            run["all_equal"] = all(run["equal_to_csv"].values())
            # a reader may return the blocks in another order: the same rows, sorted?
            run["equal_rows_in_another_order"] = [
                t
                for t, same in run["equal_to_csv"].items()
                if not same and _sorted(tables[t]).equals(_sorted(reference[t]))
            ]
        del tables
        print(json.dumps(run), file=sys.stderr, flush=True)
        results.append(run)
    print(
        json.dumps(
            {
                "benchmark": "analytics_read",
                "db": args.db,
                "cores": os.cpu_count(),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "readers": results,
            }
        )
    )


if __name__ == "__main__":
    main()
