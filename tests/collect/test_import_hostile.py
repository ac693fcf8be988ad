"""Hostile files through the importer (the CLI's code path): a clear error or exact
rejections, and nothing half-written."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from patronage import db
from patronage.collect.imports import import_file, resolve_mapping, safe_cell, write_rejects
from patronage.errors import ValidationFailed

HEAD = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
GOOD = "536365,85123A,HEART,6,12/01/2010 08:26,2.55,17850,France\n"


def _orders(path: Path, **options: bool):  # type: ignore[no-untyped-def]
    mapping = resolve_mapping("orders", "order-lines")
    mapping.format = None  # from the file name: .csv or .parquet
    return import_file(path, mapping, **options)


def _nothing_written() -> None:
    with db.transaction() as s:
        for table in ("orders", "order_items", "customers", "products", "identities"):
            assert s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table


def _refused(path: Path, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _orders(path)
    assert str(caught.value.detail).startswith(message), caught.value.detail
    _nothing_written()


def test_wrong_encoding(database: str, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEAD + GOOD.replace("HEART", "CŒUR DÉCO")).encode("cp1252"))
    _refused(latin, "not valid UTF-8 text (line 2, byte ")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes((HEAD + GOOD).encode("utf-16"))
    _refused(utf16, "not a text file: it holds binary data (NUL bytes)")
    # told the encoding, the same file imports, its text intact
    mapping = resolve_mapping("orders", "order-lines")
    mapping.encoding = "cp1252"
    result = import_file(latin, mapping)
    assert result.written and result.counts["orders_inserted"] == 1
    with db.transaction() as s:
        assert s.execute(text("SELECT name FROM products")).scalar_one() == "CŒUR DÉCO"


def test_truncated_and_fake_parquet(database: str, tmp_path: Path) -> None:
    table = pa.table({c: ["1"] for c in HEAD.strip().split(",")})
    whole = tmp_path / "whole.parquet"
    pq.write_table(table, whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    _refused(cut, "not a Parquet file (no PAR1 magic at both ends)")
    hollow = tmp_path / "hollow.parquet"
    hollow.write_bytes(data[:8] + b"\x00" * (len(data) - 12) + data[-4:])
    _refused(hollow, "the Parquet file is damaged and cannot be read")


def test_missing_columns_and_a_huge_header(database: str, tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    short.write_text("InvoiceNo,StockCode,Quantity\n1,A,2\n")
    _refused(short, "the file has no column(s) Description, InvoiceDate, UnitPrice, CustomerID")
    wide = tmp_path / "wide.csv"
    names = [f"c{i}" for i in range(10_000)]
    wide.write_text(",".join(names) + "\n" + ",".join("x" for _ in names) + "\n")
    with pytest.raises(ValidationFailed) as caught:
        _orders(wide)
    detail = str(caught.value.detail)
    assert detail.startswith("the file has no column(s) InvoiceNo, StockCode")
    assert len(detail) < 600  # names at most 30 of the 10,000 columns it has
    _nothing_written()
    twice = tmp_path / "twice.csv"
    twice.write_text(HEAD.strip() + ",Country\n")
    _refused(twice, "the header names a column twice: Country")


def test_huge_field_is_refused_by_row(database: str, tmp_path: Path) -> None:
    huge = tmp_path / "huge.csv"
    huge.write_text(HEAD + GOOD + GOOD.replace("HEART", "x" * 5_000_000).replace("85123A", "B"))
    result = _orders(huge)
    assert not result.written
    assert [(r.row, r.column, r.reason) for r in result.rejected] == [
        (2, "Description", "longer than 512"),
    ]
    _nothing_written()


def test_formula_injection_is_kept_as_text_and_escaped_in_reports(
    database: str, tmp_path: Path
) -> None:
    evil = "=cmd|' /C calc'!A0"
    f = tmp_path / "evil.csv"
    f.write_text(
        HEAD.replace("Country", "@SUM(1+1)")
        + f'536365,"{evil}","{evil}",6,12/01/2010 08:26,2.55,"+1-2",France\n'
        + '536366,X,"-2+3",abc,12/01/2010 08:26,2.55,17850,France\n'
    )
    mapping = resolve_mapping("orders", "order-lines")
    mapping.fields["country"] = "@SUM(1+1)"
    report = tmp_path / "rejects.csv"
    result = import_file(f, mapping, skip_invalid=True, rejects=report)
    assert result.written
    with db.transaction() as s:
        assert s.execute(text("SELECT external_id, name FROM products")).one() == (evil, evil)
        assert s.execute(text("SELECT user_id FROM customers")).scalar_one() == "+1-2"
    assert [(r.column, r.reason) for r in result.rejected] == [("Quantity", "not a whole number")]
    # a column named like a formula is escaped in the report
    write_rejects([*result.rejected, type(result.rejected[0])(9, "@SUM(1+1)", "=bad")], report)
    rows = list(csv.reader(io.StringIO(report.read_text())))
    assert rows == [
        ["row", "column", "reason"],
        ["2", "Quantity", "not a whole number"],
        ["9", "'@SUM(1+1)", "'=bad"],
    ]
    assert [safe_cell(v) for v in ("=1", "+1", "-1", "@x", "\tx", "ok", None)] == [
        "'=1", "'+1", "'-1", "'@x", "'\tx", "ok", "",
    ]  # fmt: skip


def test_year_3000_and_negative_prices(database: str, tmp_path: Path) -> None:
    f = tmp_path / "odd.csv"
    f.write_text(
        HEAD
        + GOOD
        + "536366,A,X,1,12/01/3000 08:26,2.55,17850,France\n"
        + "536367,B,X,1,12/01/1850 08:26,2.55,17850,France\n"
        + "536368,C,X,1,12/01/2010 08:26,-2.55,17850,France\n"
        + "536369,D,X,0,12/01/2010 08:26,2.55,17850,France\n"
    )
    result = _orders(f)
    assert not result.written
    assert sorted((r.row, r.column, r.reason) for r in result.rejected) == [
        (2, "InvoiceDate", "date out of range (before 1900 or in the future)"),
        (3, "InvoiceDate", "date out of range (before 1900 or in the future)"),
        (4, "UnitPrice", "negative"),
        (5, "Quantity", "zero quantity"),
    ]
    _nothing_written()
    customers = tmp_path / "c.csv"
    customers.write_text("user_id,birthday,signup_at\nu1,3000-01-01,\nu2,,2999-12-31\n")
    result = import_file(customers, resolve_mapping("customers"))
    assert sorted((r.row, r.column) for r in result.rejected) == [(1, "birthday"), (2, "signup_at")]
    _nothing_written()


def test_a_failure_while_writing_leaves_nothing(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patronage.orders import service as orders_service

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(orders_service, "upsert_orders", broken)
    f = tmp_path / "ok.csv"
    f.write_text(HEAD + GOOD)
    with pytest.raises(RuntimeError):
        _orders(f)
    _nothing_written()  # customers and products were written before the failure: rolled back
