"""The dashboard's KPIs: exact values on a known shop, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from patronage import db
from patronage.analytics import service
from tests.analytics.dataset import EXPECTED, NOW, build_shop, expected_months


def _kpis_without_timing(kpis: service.KpiRead) -> dict[str, object]:
    data = kpis.model_dump()
    assert isinstance(data.pop("duration_ms"), int)
    return data


def test_kpis_of_a_known_shop(session, backend):
    build_shop(session)
    if backend == "postgres":
        # month buckets must be UTC whatever the connection's time zone
        session.execute(text("SET TIME ZONE 'America/Sao_Paulo'"))
    kpis = service.compute_kpis(session, NOW)
    assert _kpis_without_timing(kpis) == {
        "computed_at": NOW,
        **EXPECTED,
        "revenue_by_month": expected_months(),
    }


def test_empty_shop(session):
    kpis = service.compute_kpis(session, NOW)
    assert kpis.customers == kpis.buyers == kpis.orders == 0
    assert kpis.revenue_minor == kpis.average_order_minor == 0
    assert kpis.repeat_purchase_rate == 0.0
    assert [m.month for m in kpis.revenue_by_month][:2] == ["2023-07", "2023-08"]
    assert {(m.orders, m.revenue_minor) for m in kpis.revenue_by_month} == {(0, 0)}
    assert len(kpis.revenue_by_month) == 24


def test_snapshot_replaces_the_days_row(database):
    with db.transaction() as s:
        build_shop(s)
    with db.transaction() as s:
        first = service.take_snapshot(s, NOW)
    with db.transaction() as s:
        again = service.take_snapshot(s, NOW + timedelta(hours=3))
        assert service.snapshots_on(s, NOW) == 1
        latest = service.latest_snapshot(s)
    assert latest is not None
    assert latest.computed_at == again.computed_at == NOW + timedelta(hours=3)
    assert latest.model_dump() == again.model_dump()
    assert first.revenue_minor == latest.revenue_minor == 18495
    with db.transaction() as s:
        service.take_snapshot(s, NOW + timedelta(days=1))
        assert service.snapshots_on(s, NOW) == 1
        assert service.snapshots_on(s, NOW + timedelta(days=1)) == 1
        assert service.latest_snapshot(s).computed_at == NOW + timedelta(days=1)  # type: ignore[union-attr]


def test_current_kpis_takes_the_first_snapshot(session, monkeypatch):
    monkeypatch.setattr(service, "utcnow", lambda: NOW)
    assert service.latest_snapshot(session) is None
    kpis = service.current_kpis(session)
    assert service.latest_snapshot(session) == kpis
    assert service.current_kpis(session) == kpis


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (datetime(2025, 6, 15, 1, 59, tzinfo=UTC), datetime(2025, 6, 14, 2, 0, tzinfo=UTC)),
        (datetime(2025, 6, 15, 2, 0, tzinfo=UTC), datetime(2025, 6, 15, 2, 0, tzinfo=UTC)),
        (datetime(2025, 6, 15, 23, 0, tzinfo=UTC), datetime(2025, 6, 15, 2, 0, tzinfo=UTC)),
    ],
)
def test_last_nightly_run(now, due):
    assert service.last_nightly_run(now) == due


@pytest.mark.parametrize("backend", ["sqlite"])
def test_nightly_missed(session):
    at = datetime(2025, 6, 15, 2, 0, 5, tzinfo=UTC)
    assert service.nightly_missed(session, at)  # never taken
    service.take_snapshot(session, at)
    assert not service.nightly_missed(session, at + timedelta(hours=23))
    assert service.nightly_missed(session, at + timedelta(days=1))


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(18495, 6, 3082), (18501, 6, 3084), (7, 2, 4), (5, 2, 2), (-5, 2, -2), (10, 3, 3)],
)
def test_round_half_even(numerator, denominator, expected):
    assert service._div_half_even(numerator, denominator) == expected


def test_month_keys_cross_years():
    assert service.month_keys(datetime(2025, 1, 31, 23, 59, tzinfo=UTC), 3) == [
        "2024-11",
        "2024-12",
        "2025-01",
    ]
