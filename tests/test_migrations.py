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


_OLD_PAYLOAD_CONTEXT = "event_landing.payload"  # how version 0008 sealed a landed message


def _sealed_0008_message(name: str) -> str:
    """A message as version 0008 landed it: one object, its id in a column of its own."""
    import base64

    import pydantic_core

    from patronage.config import get_cipher

    message = {
        "t": "track", "ts": "2026-11-20T10:00:00+00:00", "n": name, "u": "u-0008",
        "a": None, "sa": None, "p": {"n": 1}, "c": {}, "tr": {}, "pv": None, "g": None,
    }  # fmt: skip
    sealed = get_cipher().encrypt(pydantic_core.to_json(message).decode(), _OLD_PAYLOAD_CONTEXT)
    assert sealed is not None
    return base64.b64encode(sealed).decode()


def test_messages_waiting_in_the_0008_landing_are_carried_over(empty_engine: Engine) -> None:
    """Nothing acknowledged is lost by the upgrade to one landing row per request."""
    from datetime import UTC, datetime

    from patronage.collect import landing

    command.upgrade(migrate.alembic_config(empty_engine), "0008_event_landing")
    with empty_engine.begin() as conn:
        for i, failed in ((1, None), (2, "processing failed: RuntimeError")):
            conn.execute(
                text(
                    "INSERT INTO event_landing (message_id, source_id, source_name, "
                    "received_at, payload, failed) VALUES (:m, 7, 'shop', :at, :p, :f)"
                ),
                {
                    "m": f"m-0008-{i}",
                    "at": datetime(2026, 11, 20, 10, 0, i, tzinfo=UTC),
                    "p": _sealed_0008_message(f"Old {i}"),
                    "f": failed,
                },
            )
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT digest, source_id, source_name, messages, done, payload, failed "
                "FROM landed_batches ORDER BY id"
            )
        ).all()
    assert [(r[0], r[1], r[2], r[3], r[4], r[6]) for r in rows] == [
        ("event_landing:m-0008-1", 7, "shop", 1, 0, None),
        ("event_landing:m-0008-2", 7, "shop", 1, 0, "processing failed: RuntimeError"),
    ]
    at = datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC)
    (message,) = landing.decode(rows[0][0], at, rows[0][5])
    assert (message.message_id, message.name, message.user_id, message.properties) == (
        "m-0008-1",
        "Old 1",
        "u-0008",
        {"n": 1},
    )
    assert "event_landing" not in _tables(empty_engine)


def test_a_0008_sqlite_landing_file_is_carried_over(tmp_path: Path) -> None:
    """SQLite keeps the landing table in a file of its own, outside the migrations."""
    from patronage.collect import landing
    from patronage.collect.models import LandedBatch

    engine = create_engine(f"sqlite:///{tmp_path / 'shop.landing.db'}")
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE event_landing (id INTEGER PRIMARY KEY, message_id VARCHAR(128) "
                "NOT NULL UNIQUE, source_id INTEGER, source_name VARCHAR(128) NOT NULL, "
                "received_at DATETIME NOT NULL, payload TEXT NOT NULL, failed VARCHAR(200))"
            )
        )
        conn.execute(
            text(
                "INSERT INTO event_landing (message_id, source_id, source_name, received_at, "
                "payload) VALUES ('m-file', NULL, 'shop', '2026-11-20 10:00:00.000000', :p)"
            ),
            {"p": _sealed_0008_message("From the file")},
        )
    LandedBatch.metadata.tables["landed_batches"].create(engine)
    landing._carry_over(engine)
    assert _tables(engine) == {"landed_batches"}
    with engine.connect() as conn:
        ((digest, messages, payload),) = conn.execute(
            text("SELECT digest, messages, payload FROM landed_batches")
        ).all()
    from datetime import datetime

    (message,) = landing.decode(digest, datetime(2026, 11, 20, 10), payload)
    assert (messages, message.message_id, message.name) == (1, "m-file", "From the file")
    engine.dispose()
