"""`patronage demo` on a shop large enough for the analytics read to take the paths a
small one never does (block reads over many pages, a write-ahead log checkpointed while
the refresh reads). A demo of 20,000 customers died of SIGBUS in the segments step while
every test, on shops of a few hundred, passed: this runs the first command's pipeline at
that size, in a process of its own, as a user would.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_cli import run

CUSTOMERS = 20_000


@pytest.mark.slow
def test_the_demo_pipeline_completes_on_a_shop_of_20000_customers(tmp_path: Path) -> None:
    result = run(
        "demo",
        "--customers",
        str(CUSTOMERS),
        "--seed",
        "11",
        "--no-serve",
        data_dir=tmp_path,
        timeout=900,
    )
    # a crash in a child of the pipeline shows as a negative exit code (-7: SIGBUS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"generated {CUSTOMERS:,} customers" in result.stdout, result.stdout
    for stage in ("Customer analytics", "Segments", "Personas", "Next categories"):
        assert stage in result.stdout

    with sqlite3.connect(tmp_path / "patronage.db") as store:
        assert store.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        counts = {
            table: store.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in (
                "customers",
                "analytics_customer_features",
                "analytics_customer_scores",
                "recommend_builds",
            )
        }
    assert counts == {
        "customers": CUSTOMERS,
        "analytics_customer_features": CUSTOMERS,
        "analytics_customer_scores": CUSTOMERS,
        "recommend_builds": 1,
    }
