"""Spark (`local[2]`) computes the same features and RFM as DuckDB, to the digit.

One Spark session for the module (a JVM start costs ~20 s); the store is SQLite, read through
Arrow and handed to Spark as a Parquet lake.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from patronage.analytics import engine, refresh
from patronage.demo import service as demo
from tests.analytics.test_engines import SMALL, computed, differences
from tests.analytics.test_features import EXPECTED, NOW, build

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


@pytest.fixture(scope="module", autouse=True)
def spark() -> Iterator[None]:
    yield
    engine.stop_spark()


def test_known_shop_on_spark(session: Session, backend: str) -> None:
    ids = build(session)
    with engine.open_store(session, "spark") as store:
        result = refresh.compute(store, NOW)
    got = {
        row["customer_id"]: {k: v for k, v in row.items() if k != "customer_id"}
        for row in result.features
    }
    assert {name: got[cid] for name, cid in ids.items()} == EXPECTED
    assert result.future_orders == 1
    assert result.engine == "spark"


def test_demo_shop_duckdb_equals_spark(database: str, backend: str) -> None:
    demo.run(SMALL)
    on_duckdb = computed("duckdb")
    on_spark = computed("spark")
    assert len(on_spark.features) == len(on_duckdb.features) == 300
    assert differences(on_duckdb, on_spark) == []
    assert on_spark.future_orders == on_duckdb.future_orders
    assert on_spark.patterns == on_duckdb.patterns
