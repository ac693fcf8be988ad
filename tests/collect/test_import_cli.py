"""`patronage import …` end to end: all-or-nothing, --skip-invalid, --dry-run, the rejects
file, exit codes and messages, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from patronage import db
from patronage.cli import app

DATA = Path(__file__).resolve().parent.parent / "data"
LINES = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART,6,12/01/2010 08:26,2.55,17850,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,12/01/2010 08:26,3.39,17850,United Kingdom\n"
    "536366,22633,HAND WARMER,6,12/01/2010 08:28,1.85,17851,France\n"
    "C536379,85123A,WHITE HANGING HEART,-1,12/01/2010 09:41,2.55,17850,United Kingdom\n"
)
BAD = LINES + (
    "536367,84879,BIRD,abc,12/01/2010 08:34,1.69,13047,United Kingdom\n"
    "536368,22960,JAM,3,not a date,4.25,13047,United Kingdom\n"
    "536369,21756,BATH,1,12/01/2010 08:35,-5.95,13047,United Kingdom\n"
)


def _count(table: str) -> int:
    with db.transaction() as s:
        return int(s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["import", *args], prog_name="patronage")
    return result.exit_code, result.output


def test_import_order_lines_then_again_changes_nothing(database: str, tmp_path: Path) -> None:
    source = tmp_path / "lines.csv"
    source.write_text(LINES)
    mapping = str(DATA / "mappings" / "online_retail.toml")
    code, out = _run("orders", str(source), "--mapping", mapping, "-q")
    assert code == 0, out
    assert "4 rows read, 4 valid, 0 refused" in out
    assert "orders inserted    3" in out
    with db.transaction() as s:
        rows = s.execute(
            text("SELECT external_id, status, total_minor FROM orders ORDER BY external_id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("536365", "placed", 6 * 255 + 6 * 339),
        ("536366", "placed", 6 * 185),
        ("C536379", "cancelled", 255),
    ]
    code, out = _run("orders", str(source), "--mapping", mapping, "-q")
    assert code == 0
    assert "orders unchanged   3" in out
    assert _count("orders") == 3


def test_all_or_nothing_reports_every_refused_row(database: str, tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(BAD)
    report = tmp_path / "rejects.csv"
    mapping = str(DATA / "mappings" / "online_retail.toml")
    code, out = _run("orders", str(source), "-m", mapping, "--rejects", str(report), "-q")
    assert code == 1
    assert "7 rows read, 4 valid, 3 refused" in out
    assert "3 rows refused, nothing written; fix them or run again with --skip-invalid" in out
    assert _count("orders") == 0 and _count("customers") == 0 and _count("products") == 0
    with report.open(newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["row", "column", "reason"],
            ["5", "Quantity", "not a whole number"],
            ["6", "InvoiceDate", "not a date (%m/%d/%Y %H:%M or %Y-%m-%d %H:%M:%S)"],
            ["7", "UnitPrice", "negative"],
        ]
    # --dry-run: the same report, exit 1, nothing written
    code, out = _run(
        "orders", str(source), "-m", mapping, "--dry-run", "--rejects", str(report), "-q"
    )
    assert code == 1 and "dry run: nothing written" in out
    assert _count("orders") == 0
    # --skip-invalid keeps the good rows, exit 0
    code, out = _run(
        "orders", str(source), "-m", mapping, "--skip-invalid", "--rejects", str(report), "-q"
    )
    assert code == 0, out
    assert "imported the valid rows; 3 skipped" in out
    assert _count("orders") == 3
    assert len(report.read_text().splitlines()) == 4


def test_column_flags_instead_of_a_mapping_file(database: str, tmp_path: Path) -> None:
    source = tmp_path / "p.csv"
    source.write_text("sku;title;cost\nA-1;Lamp;12.50\nB-2;Chair;40\n")
    code, out = _run(
        "products", str(source), "--delimiter", ";", "--map", "sku=product_id",
        "--map", "title=name", "--map", "cost=price", "-q",
    )  # fmt: skip
    assert code == 0, out
    with db.transaction() as s:
        rows = s.execute(text("SELECT external_id, name, price_minor FROM products ORDER BY 1"))
        assert [tuple(r) for r in rows] == [("A-1", "Lamp", 1250), ("B-2", "Chair", 4000)]


def test_implicit_mapping_takes_the_columns_the_file_has(database: str, tmp_path: Path) -> None:
    source = tmp_path / "customers.jsonl"
    source.write_text('{"user_id": "u1", "country": "FR"}\n{"user_id": "u2", "city": "Lyon"}\n')
    code, out = _run("customers", str(source), "-q")
    assert code == 0, out
    with db.transaction() as s:
        rows = s.execute(text("SELECT user_id, country, city FROM customers ORDER BY user_id"))
        assert [tuple(r) for r in rows] == [("u1", "FR", None), ("u2", None, "Lyon")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("orders", "missing.csv"), "error: no such file: missing.csv"),
        (("orders", "{file}", "--map", "nonsense"), "error: --map takes column=field"),
        (("orders", "{file}", "--map", "a=colour"), "error: mapping: unknown field(s) for orders"),
        (("orders", "{file}"), "error: mapping: no column for order_id, product_id"),
        (("orders", "{file}", "--format", "xml"), "error: mapping: format must be one of"),
    ],
)
def test_bad_input_exits_1_with_one_line(
    database: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    source = tmp_path / "f.csv"
    source.write_text("a,b\n1,2\n")
    code, out = _run(*(a.replace("{file}", str(source)) for a in args), "-q")
    assert code == 1
    assert message in out
    assert "Traceback" not in out


def test_events_from_json_lines_go_through_the_tracking_pipeline(
    database: str, tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(
        '{"user_id": "u1", "event": "Product Viewed", "timestamp": "2026-11-01T10:00:00Z",'
        ' "properties": {"product_id": "p1", "name": "Lamp", "price": 20}}\n'
        '{"anonymous_id": "a1", "event": "Signed Up", "timestamp": "2026-11-01T10:05:00"}\n'
        '{"event": "Nobody", "timestamp": "2026-11-01T10:06:00Z"}\n'
        "not json\n"
    )
    code, out = _run("events", str(source), "--skip-invalid", "--rejects", str(tmp_path / "r.csv"))
    assert code == 0, out
    assert "4 rows read, 2 valid, 2 refused" in out
    with db.transaction() as s:
        rows = s.execute(text("SELECT name, user_id, anonymous_id FROM events ORDER BY name"))
        assert [tuple(r) for r in rows] == [
            ("Product Viewed", "u1", None),
            ("Signed Up", None, "a1"),
        ]
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == "row,column,reason"
    # the same file again stores nothing twice (message ids are digests of the rows)
    code, out = _run(
        "events", str(source), "--skip-invalid", "--rejects", str(tmp_path / "r.csv"), "-q"
    )
    assert code == 0
    assert "events stored      0" in out and "events duplicates  2" in out
    assert _count("events") == 2
