"""The migrations build exactly the schema the models describe, and undo it, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from patronage import db, migrate
from patronage.migrations import import_models


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no tables at all (not the shared, migrated test database)."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield engine
        engine.dispose()
        return
    run_url = make_url(request.getfixturevalue("postgres_url"))
    name = f"{run_url.database}_migrations"
    admin = create_engine(run_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(run_url.set(database=name))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_matches_models_and_downgrade_removes_everything(empty_engine: Engine) -> None:
    import_models()
    expected = {t.name for t in db.Base.metadata.sorted_tables}
    assert len(expected) >= 20

    migrate.upgrade(empty_engine)
    assert _tables(empty_engine) == expected | {"alembic_version"}
    heads = set(ScriptDirectory.from_config(migrate.alembic_config()).get_heads())
    assert len(heads) == 1, f"add a merge revision joining {sorted(heads)}"
    with empty_engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == heads

        # what autogenerate would write next: nothing, or the migrations lag the models
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "target_metadata": db.Base.metadata}
        )
        drift = compare_metadata(context, db.Base.metadata)
    assert drift == [], f"models and migrations differ: {drift}"

    command.downgrade(migrate.alembic_config(empty_engine), "base")
    assert _tables(empty_engine) <= {"alembic_version"}
    with empty_engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is None

    # and up again: a downgrade leaves nothing behind that blocks the next upgrade
    migrate.upgrade(empty_engine)
    assert _tables(empty_engine) == expected | {"alembic_version"}
