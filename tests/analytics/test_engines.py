"""The engines agree: features and RFM on DuckDB and inside PostgreSQL are equal to the digit.

Spark is in test_engine_spark.py (slow: a JVM per module). The demo shop (300 customers, seed
7) has orders, refunds, returns, reviews, tickets and events of every kind features read.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from patronage import db
from patronage.analytics import engine, refresh
from patronage.demo import service as demo
from patronage.demo.generator import Plan
from tests.analytics.test_features import EXPECTED, NOW, build

SMALL = Plan(customers=300, seed=7)
DEMO_NOW = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)


def differences(a: refresh.Computed, b: refresh.Computed) -> list[tuple[int, str, object, object]]:
    """(customer, feature, value on a, value on b) wherever the two engines disagree."""
    out = [
        (x["customer_id"], key, x[key], y[key])
        for x, y in zip(a.features, b.features, strict=True)
        for key in x
        if x[key] != y[key]
    ]
    return out + [(x[0], "rfm", x, y) for x, y in zip(a.rfm, b.rfm, strict=True) if x != y]


def computed(engine_name: str, now: datetime = DEMO_NOW) -> refresh.Computed:
    with db.transaction() as session, engine.open_store(session, engine_name) as store:
        return refresh.compute(store, now)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_database_engine_is_refused_on_sqlite(session: Session, backend: str) -> None:
    with pytest.raises(engine.EngineUnavailable) as err, engine.open_store(session, "database"):
        pass  # pragma: no cover
    assert err.value.status_code == 503
    assert "PATRONAGE_ANALYTICS_ENGINE=duckdb" in str(err.value.detail)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_known_shop_inside_postgresql(session: Session, backend: str) -> None:
    ids = build(session)
    with engine.open_store(session, "database") as store:
        result = refresh.compute(store, NOW)
    got = {
        row["customer_id"]: {k: v for k, v in row.items() if k != "customer_id"}
        for row in result.features
    }
    assert {name: got[cid] for name, cid in ids.items()} == EXPECTED
    assert result.future_orders == 1
    assert result.engine == "database"


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_demo_shop_duckdb_equals_postgresql(database: str, backend: str) -> None:
    demo.run(SMALL)
    on_duckdb = computed("duckdb")
    inside = computed("database")
    assert len(on_duckdb.features) == 300
    assert differences(on_duckdb, inside) == []
    assert len(inside.rfm) == len(on_duckdb.rfm)
    # anchors: the equal results are not both empty
    assert (len(inside.rfm), sum(r["total_spend_minor"] for r in inside.features)) == (
        181,
        17360332,
    )
    assert on_duckdb.future_orders == inside.future_orders
    assert on_duckdb.patterns == inside.patterns
    assert on_duckdb.patterns["funnel"]["steps"][0]["visitors"] > 0
