"""Run Alembic programmatically (used by `patronage migrate`, the demo and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.attributes["connection"] = engine
    return config


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    # one head: when capabilities add migrations side by side, a merge revision joins them
    # (tests/test_migrations.py refuses a second head).
    command.upgrade(alembic_config(engine), revision)
