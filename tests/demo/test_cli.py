"""`patronage demo`: generate, keep, reset, refuse bad input, then serve."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from patronage import db
from patronage.cli import app

runner = CliRunner(env={"COLUMNS": "200"})  # one line per message


def customers() -> int:
    with db.transaction() as session:
        return int(session.execute(text("SELECT COUNT(*) FROM customers")).scalar_one())


def derived() -> dict[str, int]:
    tables = (
        "analytics_customer_features",
        "analytics_customer_scores",
        "segment_memberships",
        "segment_personas",
        "segment_next_categories",
        "recommend_builds",
    )
    with db.transaction() as session:
        return {
            t: int(session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in tables
        }


# 40 customers, seed 3 (the same on SQLite and PostgreSQL)
DERIVED_40 = {
    "analytics_customer_features": 40,
    "analytics_customer_scores": 40,
    "segment_memberships": 311,
    "segment_personas": 7,
    "segment_next_categories": 99,
    "recommend_builds": 1,
}


def password_of(output: str) -> str:
    found = re.search(r"password: (\S+)", output)
    assert found, output
    return found.group(1)


def test_generates_prints_the_login_and_does_not_serve(database: str) -> None:
    result = runner.invoke(app, ["demo", "--customers", "40", "--seed", "3", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "generated 40 customers" in result.output
    assert "open http://127.0.0.1:8000 and log in as admin" in result.output
    assert len(password_of(result.output)) == 16
    assert customers() == 40
    # the whole pipeline ran on the fresh shop: what the nightly jobs compute is there
    for stage in ("Customer analytics", "Segments", "Personas", "Next categories"):
        assert stage in result.output
    assert derived() == DERIVED_40


def test_keeps_an_existing_shop_unless_reset(database: str) -> None:
    first = runner.invoke(app, ["demo", "--customers", "40", "--no-serve"])
    kept = runner.invoke(app, ["demo", "--customers", "60", "--no-serve"])
    assert kept.exit_code == 0, kept.output
    assert "kept the existing shop (40 customers)" in kept.output
    assert password_of(kept.output) != password_of(first.output)
    assert customers() == 40

    declined = runner.invoke(
        app, ["demo", "--customers", "60", "--reset", "--no-serve"], input="n\n"
    )
    assert declined.exit_code == 1
    assert "Aborted" in declined.output
    assert customers() == 40

    reset = runner.invoke(
        app, ["demo", "--customers", "60", "--reset", "--yes", "--no-serve", "--port", "8123"]
    )
    assert reset.exit_code == 0, reset.output
    assert "generated 60 customers" in reset.output
    assert "open http://127.0.0.1:8123" in reset.output
    assert customers() == 60


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "-5"], "Invalid value for '--customers': Input should be greater than"),
        (["--customers", "lots"], "Invalid value for '--customers': Input should be a valid int"),
        (["--until", "30.06.2026"], "Invalid value for '--until'"),
    ],
)
def test_bad_options_are_refused(database: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["demo", *args, "--no-serve"])
    assert result.exit_code == 2
    assert message in result.output
    assert customers() == 0


def test_serves_the_console_after_generating(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append({"args": a, **kw}))
    result = runner.invoke(app, ["demo", "--customers", "20", "--port", "8124"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1
    assert calls[0]["args"] == ("patronage.app:create_app",)
    assert (calls[0]["port"], calls[0]["workers"]) == (8124, 1)
