"""Bulk import of 1M order lines from CSV, on SQLite and PostgreSQL, next to a raw load.

    .venv/bin/python benchmarks/import_orders.py [--rows 1000000] [--db sqlite,postgres]
        [--pg-url postgresql://postgres@127.0.0.1:5432] [--seed 7] [--profile DIR]

Generates (deterministically, in a temporary directory) a CSV of order lines in the shape
of shop exports and of the console's "order-lines" preset: InvoiceNo, StockCode,
Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country; about 4 lines an
invoice, 2 % cancellations ("C" invoices, negative quantities), 3 % guest lines.

For each database: a fresh one (SQLite file in the temporary directory; PostgreSQL database
`bench_import_<pid>`, created and dropped), migrated, then the file is imported through
`collect.imports.import_file` (the code path of `patronage import orders`) in a child
process of its own, which reports seconds, rows/s and its peak RSS. In the same run, the
references: pyarrow's and DuckDB's read of the same CSV (parsing only), and the raw load
of the same rows into one plain table (`executemany` on SQLite, `COPY` on PostgreSQL)
with no validation, no upsert and no foreign keys.

Prints one JSON line on stdout; progress on stderr. `--profile DIR` writes a pyinstrument
HTML profile of each import there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SECONDS = 60.0
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
COUNTRIES = ["United Kingdom"] * 8 + ["France", "Germany", "EIRE", "Spain", "Netherlands"]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, rows: int, seed: int) -> dict[str, int]:
    """Order lines, invoice after invoice; every invoice has one customer and one date."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, size=rows // 2 + 16)  # 1..7 lines, mean 4
    ends = np.cumsum(sizes)
    invoices = int(np.searchsorted(ends, rows, side="left")) + 1
    sizes = sizes[:invoices]
    sizes[-1] -= int(ends[invoices - 1] - rows)
    invoice_of_line = np.repeat(np.arange(invoices), sizes)
    products = 4000
    # distinct products within an invoice (a repeated identical line is refused as a duplicate)
    first_line = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.arange(rows) - first_line[invoice_of_line]
    base = rng.integers(0, products, size=invoices)
    product = (base[invoice_of_line] + position * 577) % products
    price_of_product = rng.integers(10, 5000, size=products)  # cents
    cancelled = rng.random(invoices) < 0.02
    guest = rng.random(invoices) < 0.03
    customer = rng.integers(12346, 12346 + 60_000, size=invoices)
    start = np.datetime64("2010-12-01T08:00")
    minutes = np.sort(rng.integers(0, 365 * 24 * 60, size=invoices))
    stamps = (start + minutes.astype("timedelta64[m]")).astype(object)
    dates = [t.strftime("%m/%d/%Y %H:%M") for t in stamps]
    country = rng.integers(0, len(COUNTRIES), size=invoices)
    quantity = rng.integers(1, 25, size=rows)
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        chunk: list[str] = []
        for i in range(rows):
            inv = int(invoice_of_line[i])
            p = int(product[i])
            q = int(quantity[i])
            number = f"{536365 + inv}"
            if cancelled[inv]:
                number, q = "C" + number, -q
            cents = int(price_of_product[p])
            who = "" if guest[inv] else str(int(customer[inv]))
            chunk.append(
                f"{number},P{p:05d},PRODUCT {p} DESCRIPTION,{q},{dates[inv]},"
                f"{cents // 100}.{cents % 100:02d},{who},{COUNTRIES[int(country[inv])]}\n"
            )
            if len(chunk) == 50_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    return {"rows": rows, "invoices": invoices, "products": products}


def use_database(url: str, data_dir: Path) -> None:
    from patronage import config, db

    os.environ["PATRONAGE_DATA_DIR"] = str(data_dir)
    os.environ["PATRONAGE_DATABASE_URL"] = url
    os.environ["PATRONAGE_ENV"] = "test"
    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()


def child(url: str, data_dir: Path, csv_path: Path, profile: Path | None) -> None:
    """The import itself, in a process of its own (a clean peak RSS)."""
    from patronage import migrate
    from patronage.collect.imports import PRESETS, import_file, resolve_mapping

    use_database(url, data_dir)
    migrate.upgrade()
    mapping = resolve_mapping("orders", "order-lines")
    assert PRESETS["order-lines"].kind == "orders"
    phases: dict[str, float] = {}
    begun = time.perf_counter()

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in phases:
            phases[phase] = time.perf_counter() - begun

    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    started = time.perf_counter()
    result = import_file(csv_path, mapping, progress=progress)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        name = url.split(":", 1)[0]
        (profile / f"import_{name}.html").write_text(profiler.output_html())
        (profile / f"import_{name}.txt").write_text(profiler.output_text(show_all=False))
    assert result.written and not result.rejected, result.summary()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "rows_per_s": round(result.rows / seconds),
                "validate_seconds": round(phases.get("write", seconds) - phases["validate"], 2),
                "write_seconds": round(seconds - phases.get("write", seconds), 2),
                "counts": result.counts,
                "peak_rss_mib": round(peak_rss_mib()),
            }
        )
    )


def run_child(url: str, data_dir: Path, csv_path: Path, profile: Path | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", url, "--data-dir", str(data_dir)]
    command += ["--csv", str(csv_path)] + (["--profile", str(profile)] if profile else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        say(done.stderr[-4000:])
        raise SystemExit(f"the import failed on {url.split(':')[0]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def read_references(csv_path: Path) -> dict[str, float]:
    import duckdb
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    table = pacsv.read_csv(csv_path)
    arrow = time.perf_counter() - started
    assert table.num_rows > 0
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv_path}', all_varchar = true)")
    duck = time.perf_counter() - started
    con.close()
    return {"pyarrow_read_csv_seconds": round(arrow, 2), "duckdb_read_csv_seconds": round(duck, 2)}


def _plain_rows(csv_path: Path) -> list[tuple[Any, ...]]:
    import pyarrow.csv as pacsv

    t = pacsv.read_csv(
        csv_path,
        convert_options=pacsv.ConvertOptions(
            timestamp_parsers=["%m/%d/%Y %H:%M"], strings_can_be_null=True
        ),
    )
    columns = [t.column(i).to_pylist() for i in range(t.num_columns)]
    return list(zip(*columns, strict=True))


RAW_TABLE = (
    "CREATE TABLE raw_lines (invoice VARCHAR(32), product VARCHAR(32), description VARCHAR(255),"
    " quantity INTEGER, placed_at TIMESTAMP, unit_price NUMERIC(12, 2), customer VARCHAR(32),"
    " country VARCHAR(64))"
)


def raw_sqlite(csv_path: Path, folder: Path) -> float:
    import sqlite3

    rows = _plain_rows(csv_path)
    con = sqlite3.connect(folder / "raw.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(RAW_TABLE)
    started = time.perf_counter()
    con.executemany("INSERT INTO raw_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def raw_postgres(csv_path: Path, url: str) -> float:
    import psycopg

    rows = _plain_rows(csv_path)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as con:
        con.execute(RAW_TABLE.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
        con.execute("TRUNCATE raw_lines")
        con.commit()
        started = time.perf_counter()
        with con.cursor() as cur, cur.copy("COPY raw_lines FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        con.commit()
        seconds = time.perf_counter() - started
        con.execute("DROP TABLE raw_lines")
    return seconds


def postgres_database(base: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bench_import_{os.getpid()}"
    target = make_url(base).set(drivername="postgresql+psycopg", database=name)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return target.render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data_dir, args.csv, args.profile)
        return
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "order_lines.csv"
        say(f"generating {args.rows:,} order lines …")
        started = time.perf_counter()
        shape = generate(csv_path, args.rows, args.seed)
        say(f"  {time.perf_counter() - started:.1f} s, {csv_path.stat().st_size / 2**20:.0f} MiB")
        out: dict[str, Any] = {
            "benchmark": "import_orders",
            "file": {**shape, "mib": round(csv_path.stat().st_size / 2**20, 1)},
            "target_seconds": TARGET_SECONDS,
            "reference": read_references(csv_path),
        }
        say(f"reference reads: {out['reference']}")
        for backend in [b.strip() for b in args.db.split(",") if b.strip()]:
            data_dir = folder / f"data-{backend}"
            data_dir.mkdir()
            if backend == "sqlite":
                url, drop = f"sqlite:///{data_dir / 'bench.db'}", None
            else:
                url, drop = postgres_database(args.pg_url)
            try:
                say(f"{backend}: importing …")
                result = run_child(url, data_dir, csv_path, args.profile)
                say(f"  {result['seconds']} s, {result['rows_per_s']:,} rows/s")
                say(f"{backend}: raw load of the same rows …")
                if backend == "sqlite":
                    raw = raw_sqlite(csv_path, folder)
                else:
                    raw = raw_postgres(csv_path, url)
                result["raw_load_seconds"] = round(raw, 2)
                result["raw_load_method"] = "executemany" if backend == "sqlite" else "COPY"
                result["ratio_to_raw"] = round(result["seconds"] / raw, 1)
                result["met"] = result["seconds"] <= TARGET_SECONDS
                out[backend] = result
                say(f"  raw {raw:.1f} s")
            finally:
                if drop is not None:
                    drop()
        print(json.dumps(out))


if __name__ == "__main__":
    main()
