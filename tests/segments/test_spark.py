"""Segments on Spark (`local[2]`): the same members as DuckDB, for every kind of condition.

One Spark session for the module (a JVM start costs seconds to tens of seconds on a busy
machine); the store is read as for DuckDB and handed to Spark as a Parquet lake.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import text

from patronage import config, db
from patronage.analytics import service as analytics_service
from patronage.demo import service as demo
from patronage.segments import rules as r
from patronage.segments import service
from patronage.segments.compiler import TABLES
from patronage.segments.engine import _ARROW, SparkEngine
from patronage.segments.schemas import SegmentCreate
from tests.analytics.test_engines import SMALL
from tests.segments.dataset import NOW, RAW, no_segments, percentiles
from tests.segments.test_rules import CASES

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def spark() -> Iterator[None]:
    """The JVM is stopped afterwards only if this module started it (another capability's
    tests may keep theirs, which segments share)."""
    from pyspark.sql import SparkSession

    before = SparkSession.getActiveSession()
    yield
    after = SparkSession.getActiveSession()
    if before is None and after is not None:
        after.stop()


def _arrow(now: datetime = NOW) -> dict[str, pa.Table]:
    out = {}
    for name, cols in TABLES.items():
        rows = RAW.get(name, [])
        if name == "clock":
            rows = [{"now": now.replace(tzinfo=None)}]
        out[name] = pa.table(
            {c: pa.array([row[c] for row in rows], type=_ARROW[t]) for c, t in cols.items()}
        )
    return out


def test_hand_built_cases_on_spark() -> None:
    """Every case of the rule tests (exact members, known by hand) on Spark."""
    eng = SparkEngine.from_arrow(_arrow())
    try:
        found = {
            i: set(eng.members(eng.compiler(no_segments, percentiles), r.parse_rule(raw)))
            for i, (raw, _) in enumerate(CASES)
        }
        count = eng.count(eng.compiler(no_segments, percentiles), r.parse_rule(CASES[0][0]))
    finally:
        eng.close()
    assert {i: v for i, v in found.items() if v != CASES[i][1]} == {}
    assert count == len(CASES[0][1])


DEMO_NOW = datetime(2026, 7, 1, tzinfo=UTC)  # the day after the demo shop's last day


def _demo_rules(top_category: int) -> dict[str, dict[str, Any]]:
    """One segment per kind of condition (personas apart), and combinations; each matches
    some of the 300."""
    shoes = {"property": "category", "op": "in", "value": ["Skincare", "Kitchen"]}
    pricey = {"property": "price", "op": "gte", "value": 20}
    return {
        "trait": {"type": "trait", "field": "country", "op": "in", "value": ["DE", "FR"]},
        "age": {"type": "trait", "field": "age", "op": "between", "value": [30, 50]},
        "feature": {"type": "feature", "feature": "total_spend_minor", "op": "gte", "value": 50000},
        "percentile": {
            "type": "feature",
            "feature": "total_spend_minor",
            "percentile": True,
            "op": "gte",
            "value": 80,
        },
        "score": {"type": "score", "score": "rfm_r", "op": "gte", "value": 4},
        "clv": {"type": "score", "score": "p_alive", "op": "gt", "value": 0.5},
        "event": {
            "type": "event",
            "event": "Product Viewed",
            "where": [shoes, pricey],
            "at_least": 2,
        },
        "event_window": {"type": "event", "event": "Product Added", "within_days": 90},
        "rfm": {"type": "rfm", "segments": ["Champions", "Loyal", "Potential Loyalist"]},
        "consent": {"type": "consent", "purpose": "marketing_email"},
        "no_consent": {"type": "consent", "purpose": "personalisation", "granted": False},
        "bought_category": {"type": "bought_category", "category_id": top_category},
        "spent": {"type": "spent", "op": "gte", "amount_minor": 20000, "within_days": 365},
        "spent_little": {"type": "spent", "op": "lt", "amount_minor": 5000},
        "not_done": {"type": "not_done", "event": "Order Completed", "since_days": 180},
        "visit": {"type": "visit", "reasons": ["email", "organic_search", "direct"]},
        "five": {
            "type": "and",
            "conditions": [
                {"type": "trait", "field": "country", "op": "in", "value": ["DE", "FR", "ES"]},
                {"type": "feature", "feature": "orders", "op": "gte", "value": 2},
                {"type": "event", "event": "Product Viewed", "where": [pricey]},
                {"type": "not", "condition": {"type": "rfm", "segments": ["Lost"]}},
                {"type": "consent", "purpose": "analytics"},
            ],
        },
    }


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_demo_shop_spark_equals_duckdb(database: str, backend: str, monkeypatch: Any) -> None:
    """Full evaluation and preview of segments using every kind of condition: Spark finds
    exactly DuckDB's members (re-evaluating on Spark writes no entry and no exit)."""
    demo.run(SMALL)
    with db.transaction() as s:
        analytics_service.refresh_customer_analytics(s, DEMO_NOW)
    with db.transaction() as s:
        personas = service.refresh_personas(s, DEMO_NOW).personas
    with db.transaction() as s:
        top = s.execute(
            text(
                "SELECT p.category_id FROM order_items i JOIN products p ON p.id = i.product_id "
                "GROUP BY p.category_id ORDER BY count(*) DESC, p.category_id LIMIT 1"
            )
        ).scalar_one()
        ids = {}
        rules = _demo_rules(top)
        rules["persona"] = {"type": "persona", "personas": [p.id for p in personas[:2]]}
        for name, rule in rules.items():
            created = service.create_segment(
                s, SegmentCreate(name=name, rule=rule), "test", evaluate_now=False
            )
            ids[name] = created.id
        nested = {
            "type": "and",
            "conditions": [
                {"type": "segment", "segment_id": ids["rfm"]},
                {"type": "not", "condition": {"type": "segment", "segment_id": ids["consent"]}},
            ],
        }
        ids["membership"] = service.create_segment(
            s, SegmentCreate(name="membership", rule=nested), "test", evaluate_now=False
        ).id
    with db.transaction() as s:
        on_duckdb = {e.name: e.size for e in service.evaluate(s, now=DEMO_NOW)}
        previews = {
            name: service.preview(s, {"type": "segment", "segment_id": sid}, now=DEMO_NOW)
            for name, sid in ids.items()
        }
    # every segment tells something: neither nobody nor everybody
    assert all(0 < size < 300 for size in on_duckdb.values()), on_duckdb
    monkeypatch.setenv("PATRONAGE_ANALYTICS_ENGINE", "spark")
    config.get_settings.cache_clear()
    try:
        with db.transaction() as s:
            on_spark = service.evaluate(s, now=DEMO_NOW)
            spark_previews = {
                name: service.preview(s, {"type": "segment", "segment_id": sid}, now=DEMO_NOW)
                for name, sid in ids.items()
            }
    finally:
        monkeypatch.delenv("PATRONAGE_ANALYTICS_ENGINE")
        config.get_settings.cache_clear()
    assert {e.name: e.size for e in on_spark} == on_duckdb
    assert {e.name: (e.entered, e.left) for e in on_spark} == dict.fromkeys(on_duckdb, (0, 0))
    assert {n: (p.count, p.sample) for n, p in spark_previews.items()} == {
        n: (p.count, p.sample) for n, p in previews.items()
    }
