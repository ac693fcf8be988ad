"""The KPI API: exact JSON for a known shop, permissions, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from patronage import db
from patronage.analytics import service
from tests.analytics.dataset import EXPECTED, NOW, build_shop, expected_months
from tests.conftest import bearer

EXPECTED_JSON = {
    "computed_at": "2025-06-15T12:00:00Z",
    **EXPECTED,
    "revenue_by_month": expected_months(),
}


@pytest.fixture
def shop(database, monkeypatch):
    monkeypatch.setattr(service, "utcnow", lambda: NOW)
    with db.transaction() as s:
        build_shop(s)


def _body(response):
    body = response.json()
    assert isinstance(body.pop("duration_ms"), int)
    return body


def test_kpis_take_a_first_snapshot_then_read_it(client, staff, shop):
    first = client.get("/api/analytics/kpis", headers=bearer(staff["analyst"]))
    assert first.status_code == 200, first.text
    assert _body(first) == EXPECTED_JSON
    with db.transaction() as s:
        assert service.snapshots_on(s, NOW) == 1
    again = client.get("/api/analytics/kpis", headers=bearer(staff["seller_manager"]))
    assert again.status_code == 200
    assert again.json() == first.json()


def test_post_snapshot(client, staff, shop):
    created = client.post("/api/analytics/snapshots", headers=bearer(staff["admin"]))
    assert created.status_code == 201, created.text
    assert _body(created) == EXPECTED_JSON
    client.post("/api/analytics/snapshots", headers=bearer(staff["admin"]))
    with db.transaction() as s:
        assert service.snapshots_on(s, NOW) == 1


def test_authentication_and_permissions(client, staff, shop):
    anonymous = client.get("/api/analytics/kpis")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "not_authenticated"
    assert client.post("/api/analytics/snapshots").status_code == 401
    for role in ("seller_manager", "analyst", "marketer", "agent"):
        denied = client.post("/api/analytics/snapshots", headers=bearer(staff[role]))
        assert denied.status_code == 403, role
        assert denied.json()["error"] == "forbidden"
    with db.transaction() as s:
        assert service.latest_snapshot(s) is None


def test_openapi_documents_the_schema(client):
    spec = client.get("/openapi.json").json()
    ref = spec["paths"]["/api/analytics/kpis"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    assert ref == "#/components/schemas/KpiRead"
    assert "revenue_by_month" in spec["components"]["schemas"]["KpiRead"]["properties"]
    assert "post" in spec["paths"]["/api/analytics/snapshots"]
