"""`patronage analytics patterns | cohorts | funnel`, and the engine setting from the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from patronage import config, db
from patronage.analytics import refresh
from patronage.cli import app
from tests.analytics.test_features import NOW, build


def _lines(output: str) -> list[str]:
    return [" ".join(line.replace("│", " ").split()) for line in output.splitlines()]


@pytest.fixture
def refreshed(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with db.transaction() as s:
        build(s)
        refresh.run(s, NOW)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_patterns_cohorts_funnel(refreshed: None, backend: str) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["analytics", "patterns"])
    assert out.exit_code == 0, out.output
    lines = _lines(out.output)
    for expected in (
        "31–60 days 1",
        "61–90 days 1",
        "repeat-purchase rate 25.0% (1 of 4 buyers); mean gap 73.0 days",
        "1 items 2",
        "3 items 1",
        "25.00 – 50.00 3 1",
        "≥ 250.00 0 0",
        "50 % 2 100.0%",
    ):
        assert expected in lines, expected
    out = runner.invoke(app, ["analytics", "cohorts"])
    assert out.exit_code == 0, out.output
    assert "2025-01 1 100.0% 0.0% 100.0% 0.0% 0.0% 100.0%" in _lines(out.output)
    out = runner.invoke(app, ["analytics", "funnel"])
    assert out.exit_code == 0, out.output
    lines = _lines(out.output)
    assert "added to cart 1 100.0% 100.0%" in lines
    assert "started checkout 0 0.0% —" in lines


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_database_engine_on_sqlite_is_a_clear_error(
    database: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATRONAGE_ANALYTICS_ENGINE", "database")
    monkeypatch.setenv("COLUMNS", "200")
    config.get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["analytics", "refresh"])
    finally:
        config.get_settings.cache_clear()
    assert out.exit_code != 0
    assert "use PATRONAGE_ANALYTICS_ENGINE=duckdb" in " ".join(out.output.split())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_nothing_before_the_first_refresh(database: str, backend: str) -> None:
    runner = CliRunner()
    for command, text in (
        ("patterns", "no analytics refresh has computed purchase patterns yet"),
        ("cohorts", "No cohorts yet"),
        ("funnel", "No funnel yet"),
    ):
        out = runner.invoke(app, ["analytics", command])
        assert out.exit_code == 0, out.output
        assert text in out.output
