"""Shared fixtures: real SQLite and PostgreSQL databases, an app client, staff of every role.

Services that are not reachable skip their tests with the reason, unless
PATRONAGE_REQUIRE_SERVICES=1 (set by .ci/run), which turns those skips into failures.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from patronage import config, db
from patronage.migrations import import_models

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI demands every real service."""
    if os.environ.get("PATRONAGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def pg_url() -> str:
    return os.environ.get("PATRONAGE_TEST_DATABASE_URL", PG_DEFAULT)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test run on the server of PATRONAGE_TEST_DATABASE_URL.

    Parallel runs (several developers, CI) never see each other's rows; dropped at the end.
    """
    base = make_url(pg_url()).set(drivername="postgresql+psycopg")
    name = f"{base.database or 'test'}_run{os.getpid()}"
    try:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        unavailable(f"PostgreSQL not reachable at {base.render_as_string()}: {exc}")
    yield base.set(database=name).render_as_string(hide_password=False)
    db.dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory (and so one key file) for the whole run."""
    return tmp_path_factory.mktemp("patronage-data")


def _use(url: str | None, data_dir: Path, **extra: str) -> None:
    os.environ["PATRONAGE_ENV"] = "test"
    os.environ["PATRONAGE_DATA_DIR"] = str(data_dir)
    if url is None:
        os.environ.pop("PATRONAGE_DATABASE_URL", None)
    else:
        os.environ["PATRONAGE_DATABASE_URL"] = url
    os.environ.update(extra)
    config.get_settings.cache_clear()
    config.reset_cipher()


@pytest.fixture(scope="session")
def sqlite_template(data_dir: Path) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating every time)."""
    from patronage import migrate

    path = data_dir / "template.db"
    _use(f"sqlite:///{path}", data_dir)
    migrate.upgrade()
    db.dispose_engines()
    return path


_pg_migrated = False


def _reset_postgres(url: str, data_dir: Path) -> None:
    global _pg_migrated
    from patronage import migrate

    _use(url, data_dir)
    engine = db.get_engine()
    if not _pg_migrated:
        migrate.upgrade()
        _pg_migrated = True
    import_models()
    tables = ", ".join(t.name for t in db.Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database(
    backend: str, request: pytest.FixtureRequest, data_dir: Path, tmp_path: Path
) -> Iterator[str]:
    """A fresh, migrated database of the requested backend; yields its URL."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "patronage.db"
        shutil.copy(template, path)
        url = f"sqlite:///{path}"
        _use(url, data_dir)
    else:
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url, data_dir)
    yield url
    db.dispose_engines()


@pytest.fixture
def session(database: str) -> Iterator[db.Session]:
    with db.transaction() as s:
        yield s


# -- the app and its staff -----------------------------------------------------------------

ROLES = ("admin", "marketer", "analyst", "agent", "seller_manager")
PASSWORD = "correct horse battery"


@pytest.fixture
def app(database: str):  # type: ignore[no-untyped-def]
    from patronage.app import create_app

    return create_app()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def staff(database: str) -> dict[str, str]:
    """One user per role (username == role) and an API token each: {role: token}."""
    from patronage.auth import service as auth_service

    tokens = {}
    with db.transaction() as s:
        for role in ROLES:
            auth_service.create_user(s, role, PASSWORD, role)
            _, secret = auth_service.create_token(s, role, "tests")
            tokens[role] = secret
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """Sign in through the real form (login CSRF cookie included); returns the response."""
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "login form has no CSRF token"
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
