"""The SQLite readers of the DuckDB engine: ADBC on connections of its own (the file as last
committed), and text spelled by SQLite as CSV on the session's connection, parsed by Arrow.

Both return the same tables. Values that CSV could garble or ADBC could mistype (quotes, commas,
newlines, the text 'NULL', empty text, NULL — also first in a block —, timestamps with and
without fractions, sparse rowids across blocks) come back exactly.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from patronage.analytics import engine, features, rfm

ORDERS = """CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT,
channel TEXT, total_minor BIGINT, discount_minor BIGINT, coupon TEXT, placed_at DATETIME,
cancelled_at DATETIME)"""
EVENTS = """CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id INTEGER, anonymous_id TEXT,
name TEXT, "timestamp" DATETIME, context JSON, properties JSON)"""

TRICKY = ["it's", 'say "hi"', "a,b", "two\nlines", "NULL", "", "é ü 東京", "'", "''", None]


READERS = ["csv", "adbc"]


def _read(raw: sqlite3.Connection, name: str, reader: str) -> list[dict[str, object]]:
    raw.commit()
    if reader == "adbc":
        path = engine._sqlite_file(raw)
        assert path is not None
        table = engine._read_sqlite_adbc(path, raw, None, (name,))[name]
        return table.to_pylist()  # type: ignore[no-any-return]
    with ThreadPoolExecutor(max_workers=1) as pool:
        rows: list[dict[str, object]] = engine._read_sqlite_table(raw, name, pool).to_pylist()
        return rows


@pytest.mark.parametrize("reader", READERS)
def test_orders_come_back_exactly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reader: str
) -> None:
    monkeypatch.setattr(engine, "SQLITE_ROWS", 3)  # several blocks
    monkeypatch.setattr(engine, "ADBC_ROWS", 3)
    raw = sqlite3.connect(tmp_path / "store.db")
    raw.execute(ORDERS)
    rows = []
    for i, text in enumerate(TRICKY):
        oid = 1 + i * 1_000_003  # sparse ids
        cancelled = None if i % 2 else f"2025-01-0{1 + i % 9} 00:00:00.000001"
        rows.append(
            (
                oid,
                None if i == 3 else i,
                text,
                text,
                -5 * i,
                0,
                text,
                "2025-06-15 12:00:00.5",
                cancelled,
            )
        )
    raw.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    got = _read(raw, "orders", reader)
    placed = features.to_us(features.EPOCH.replace(year=2025, month=6, day=15, hour=12)) + 500_000
    assert got == [
        {
            "id": oid,
            "customer_id": cid,
            "status": text,
            "channel": text,
            "total_minor": total,
            "discount_minor": 0,
            "coupon": text,
            "placed_us": placed,
            "cancelled_us": None
            if cancelled is None
            else features.to_us(features.EPOCH.replace(year=2025, day=int(cancelled[9]))) + 1,
        }
        for oid, cid, text, _, total, _, _, _, cancelled in rows
    ]


@pytest.mark.parametrize("reader", READERS)
def test_events_visitor_device_and_list_id(tmp_path: Path, reader: str) -> None:
    raw = sqlite3.connect(tmp_path / "store.db")
    raw.execute(EVENTS)
    raw.executemany(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                5,
                7,
                "anon-a",
                "Product Viewed",
                "2025-01-01 00:00:00",
                '{"device":{"type":"mobile"}}',
                "{}",
            ),
            (
                9,
                None,
                "anon-b",
                "Product Clicked",
                "2025-01-01 00:00:01.000000",
                "{}",
                '{"list_id":"recommended, for you"}',
            ),
            (
                10,
                8,
                None,
                "Product Viewed",
                "2025-01-01 00:00:02.000000",
                '{"device":{"type":3}}',
                '{"list_id":"x"}',
            ),
        ],
    )
    day = features.to_us(features.EPOCH.replace(year=2025))
    assert _read(raw, "events", reader) == [
        {
            "customer_id": 7,
            "visitor": "7",
            "name": "Product Viewed",
            "ts_us": day,
            "device": "mobile",
            "list_id": None,
        },
        {
            "customer_id": None,
            "visitor": "anon-b",
            "name": "Product Clicked",
            "ts_us": day + 1_000_000,
            "device": None,
            "list_id": "recommended, for you",
        },
        # list_id is read for clicks only; a number as device type is its text
        {
            "customer_id": 8,
            "visitor": "8",
            "name": "Product Viewed",
            "ts_us": day + 2_000_000,
            "device": "3",
            "list_id": None,
        },
    ]


def test_empty_table_has_the_schema(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "store.db")
    raw.execute(ORDERS)
    raw.commit()
    with ThreadPoolExecutor(max_workers=1) as pool:
        table = engine._read_sqlite_table(raw, "orders", pool)
    assert table.num_rows == 0
    assert table.schema == engine._arrow_schema("orders")
    table = engine._read_sqlite_adbc(str(tmp_path / "store.db"), raw, None, ("orders",))["orders"]
    assert table.num_rows == 0
    assert table.schema == engine._arrow_schema("orders")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_session_sees_its_own_uncommitted_rows(session: Session, backend: str) -> None:
    """Nothing uncommitted: ADBC reads the file; after a write in the session, the session's
    own connection is read (ADBC's connections would not see the row)."""
    from tests.analytics.test_features import build

    build(session)
    session.commit()

    def totals() -> list[int]:
        totals: list[int] = engine.read_arrow(session)["orders"]["total_minor"].to_pylist()
        return totals

    raw = session.connection().connection.driver_connection
    assert not raw.in_transaction  # so read_arrow takes the ADBC path
    path = engine._sqlite_file(raw)
    assert path is not None
    before = totals()
    session.execute(sa.text("UPDATE orders SET total_minor = total_minor + 1"))
    assert raw.in_transaction
    assert totals() == [t + 1 for t in before]
    # ADBC's own connections see the last commit only: why it is not used now
    adbc = engine._read_sqlite_adbc(path, raw, None, ("orders",))["orders"]
    assert adbc["total_minor"].to_pylist() == before
    session.rollback()
    assert totals() == before


def test_half_even_division_matches_the_scalar_one() -> None:
    rng = np.random.default_rng(3)
    numerators = np.concatenate([rng.integers(-(10**9), 10**9, 5000), np.arange(-20, 21)])
    denominators = np.concatenate([rng.integers(1, 10**4, 5000), np.full(41, 4)])
    got = features._half_even(numerators, denominators).tolist()
    expected = [
        features._div_half_even(int(n), int(d))
        for n, d in zip(numerators.tolist(), denominators.tolist(), strict=True)
    ]
    assert got == expected


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_finish_table_is_finish_for_every_row(session: Session, backend: str) -> None:
    from tests.analytics.test_features import NOW, build

    build(session)
    for now in (NOW, NOW.replace(year=2024, month=12, hour=3)):
        with engine.open_store(session, "duckdb") as store:
            expr = features.feature_table(store.tables, features.to_us(now))
            raw = store.arrow(expr.order_by("customer_id"))
        expected = [features.finish(row, now) for row in raw.to_pylist()]
        got = features.finish_table(raw, now).rows()
        assert got == expected
        # the same types too (an int is not a float, a datetime is aware)
        assert [[type(v) for v in r.values()] for r in got] == [
            [type(v) for v in r.values()] for r in expected
        ]


def test_segments_are_segment_of_for_every_score() -> None:
    r, f, m = np.array([(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]).T
    assert rfm.segments(r, f, m) == [
        rfm.segment_of(int(a), int(b), int(c)) for a, b, c in zip(r, f, m, strict=True)
    ]


# Run in a process of its own: on failure SQLite's memory map of the wal-index faults (SIGBUS).
ONE_SQLITE_SCENARIO = """
import sys
from sqlalchemy import text
from patronage import db
from patronage.analytics import engine

def write(n):
    with db.transaction() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS scratch (v BLOB)"))
        s.execute(text("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r "
                       "WHERE i < :n) INSERT INTO scratch SELECT randomblob(3000) FROM r"),
                  {"n": n})

write(6000)  # more frames than one 32 KiB region of the wal-index: it is mapped beyond it
with db.transaction() as s:
    s.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
write(1)  # the log starts again, small
with db.transaction() as s:
    tables = engine.read_arrow(s)
write(6000)  # the log grows into the second region again
maps = open("/proc/self/maps").read()
print(tables["orders"].num_rows, "adbc_driver" in maps)
"""


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_adbc_read_leaves_the_process_one_sqlite(database: str, data_dir: Path) -> None:
    """ADBC's driver links a SQLite of its own; two in one process lose each other's locks
    (the driver truncated the wal-index the process's connections had mapped: `patronage
    demo` died of SIGBUS). The read runs in a child process: here the log grows past what
    the driver would have left mapped, and the driver's library is never loaded."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PATRONAGE_DATABASE_URL": database, "PATRONAGE_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-c", ONE_SQLITE_SCENARIO],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "0 False"), done.stderr[-2000:]


def test_a_killed_readers_blocks_are_swept() -> None:
    """Block files of a process that is gone (killed while reading: /dev/shm is memory) are
    removed by the next read; a live process's are left alone."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    from patronage.analytics import sqlite_reader

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(gone.stdout)
    base = Path(tempfile.gettempdir())
    dead = base / f"{sqlite_reader.PREFIX}{dead_pid}-test"
    live = base / f"{sqlite_reader.PREFIX}{os.getpid()}-test"
    try:
        for folder in (dead, live):
            folder.mkdir()
            (folder / "0.arrow").write_bytes(b"x")
        sqlite_reader._sweep()
        assert (dead.exists(), live.exists()) == (False, True)
    finally:
        shutil.rmtree(dead, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)
