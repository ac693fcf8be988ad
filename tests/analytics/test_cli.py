"""`patronage analytics snapshot`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from patronage import db
from patronage.analytics import service
from patronage.cli import app
from tests.analytics.dataset import NOW, build_shop


@pytest.mark.parametrize("backend", ["sqlite"])
def test_snapshot_prints_the_kpis(database, monkeypatch):
    monkeypatch.setattr(service, "utcnow", lambda: NOW)
    monkeypatch.setenv("COLUMNS", "120")
    with db.transaction() as s:
        build_shop(s)
    result = CliRunner().invoke(app, ["analytics", "snapshot", "--months"])
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    for expected in (
        "KPIs at 2025-06-15 12:00 UTC",
        "customers 5",
        "buyers 4",
        "orders 6",
        "revenue 184.95",
        "average order value 30.82",
        "repeat-purchase rate 50.0%",
        "2023-07 1 3.00",
        "2025-06 2 125.01",
    ):
        assert expected in lines, expected
    with db.transaction() as s:
        assert service.snapshots_on(s, NOW) == 1


def test_snapshot_without_a_database(monkeypatch, tmp_path):
    from patronage import config

    monkeypatch.setenv("PATRONAGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PATRONAGE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    config.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["analytics", "snapshot"])
    finally:
        config.get_settings.cache_clear()
        db.dispose_engines()
    assert result.exit_code == 3
    assert "database unavailable or not migrated" in result.output
