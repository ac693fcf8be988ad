"""GET /api/analytics/patterns | cohorts | funnel: exact JSON on the hand-built shop."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from patronage import db
from patronage.analytics import refresh
from tests.analytics.test_features import NOW, build
from tests.conftest import bearer


@pytest.fixture
def refreshed(database: str) -> None:
    with db.transaction() as s:
        build(s)
        refresh.run(s, NOW)


def test_patterns(client: TestClient, staff: dict[str, str], refreshed: None) -> None:
    got = client.get("/api/analytics/patterns", headers=bearer(staff["seller_manager"]))
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    assert body["computed_at"] == "2025-06-15T12:00:00Z"
    assert body["intervals"]["repeat_purchase_rate"] == 0.25
    assert body["baskets"]["mean_items"] == 5 / 3
    assert body["monthly"][-1] == {
        "month": "2025-06",
        "orders": 2,
        "revenue_minor": 5000,
        "average_order_minor": 2500,
    }
    assert body["timing"][3][14] == 1  # Thursday 14h


def test_cohorts_and_funnel(client: TestClient, staff: dict[str, str], refreshed: None) -> None:
    cohorts = client.get("/api/analytics/cohorts", headers=bearer(staff["analyst"]))
    assert cohorts.status_code == 200, cohorts.text
    row = next(r for r in cohorts.json()["rows"] if r["cohort"] == "2025-01")
    assert row == {
        "cohort": "2025-01",
        "customers": 1,
        "active": [1, 0, 1, 0, 0, 1],
        "retention": [1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
    }
    funnel = client.get("/api/analytics/funnel", headers=bearer(staff["marketer"]))
    assert funnel.status_code == 200, funnel.text
    assert [s["visitors"] for s in funnel.json()["steps"]] == [1, 1, 0, 0]


@pytest.mark.parametrize("path", ["patterns", "cohorts", "funnel"])
def test_needs_credentials(client: TestClient, database: str, path: str) -> None:
    got = client.get(f"/api/analytics/{path}")
    assert got.status_code == 401
    assert got.json()["error"] == "not_authenticated"
