"""CDNOW through the generic importer: exact counts and totals, and a re-run changes nothing."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from patronage import db
from patronage.collect.importing import load_mapping, run_path

DATA = Path(__file__).resolve().parent.parent / "data"
CDNOW = DATA / "cdnow" / "CDNOW_master.txt"
MAPPING = DATA / "mappings" / "cdnow.toml"


def _expected() -> tuple[int, int, int, int]:
    lines = [line.split() for line in CDNOW.read_text().splitlines()[1:]]
    cents = sum(int(Decimal(v) * 100) for _, _, _, v in lines)
    cds = sum(int(n) for _, _, n, _ in lines)
    return len(lines), len({c for c, _, _, _ in lines}), cds, cents


def checksum() -> str:
    """Every imported row, in id order: equal checksums mean nothing changed."""
    queries = [
        "SELECT id, external_id, customer_id, status, currency, subtotal_minor, total_minor,"
        " placed_at, cancelled_at, updated_at FROM orders ORDER BY id",
        "SELECT id, order_id, product_id, quantity, unit_price_minor FROM order_items ORDER BY id",
        "SELECT id, external_id, name, price_minor FROM products ORDER BY id",
        "SELECT id, user_id, country, updated_at FROM customers ORDER BY id",
        "SELECT id, customer_id, kind, value FROM identities ORDER BY id",
    ]
    digest = hashlib.sha256()
    with db.transaction() as s:
        for q in queries:
            for row in s.execute(text(q)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.mark.slow
def test_cdnow(database: str) -> None:
    lines, customers, cds, cents = _expected()
    assert (lines, customers, cds, cents) == (69_659, 23_570, 167_881, 250_031_563)
    mapping = load_mapping("orders", MAPPING)
    with db.transaction() as s:
        result = run_path(s, CDNOW, mapping)
    assert result.written and not result.rejected
    assert result.counts == {
        "orders_inserted": 69_659,
        "orders_updated": 0,
        "orders_unchanged": 0,
        "lines_written": 69_659,
        "customers_created": 23_570,
        "products_created": 1,
    }
    with db.transaction() as s:
        row = s.execute(
            text(
                "SELECT count(*), count(DISTINCT customer_id), sum(total_minor),"
                " min(placed_at), max(placed_at) FROM orders"
            )
        ).one()
        assert (row[0], row[1], int(row[2])) == (69_659, 23_570, cents)
        assert str(row[3])[:10] == "1997-01-01"
        assert str(row[4])[:10] == "1998-06-30"
        items = s.execute(text("SELECT count(*), sum(quantity) FROM order_items")).one()
        assert (items[0], int(items[1])) == (69_659, cds)
        assert s.execute(text("SELECT count(*) FROM products")).scalar() == 1
        assert s.execute(text("SELECT count(*) FROM customers")).scalar() == 23_570
        ids = s.execute(text("SELECT count(*) FROM identities WHERE kind = 'user_id'")).scalar()
        assert ids == 23_570
    before = checksum()
    with db.transaction() as s:
        again = run_path(s, CDNOW, load_mapping("orders", MAPPING))
    assert again.counts["orders_inserted"] == 0
    assert again.counts["orders_updated"] == 0
    assert again.counts["orders_unchanged"] == 69_659
    assert again.counts["lines_written"] == 0
    assert again.counts["customers_created"] == 0
    assert checksum() == before
