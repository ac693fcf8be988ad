"""The `patronage` command: its commands, exit codes and one-line error messages.

The error paths people meet first run as real processes (exit code, stderr, no traceback, a
pipe rather than a terminal); the rest run in-process through Click's runner, which is faster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import create_engine
from typer.testing import CliRunner

from patronage import config, db, migrate
from patronage.cli import app

PATRONAGE = Path(sys.executable).with_name("patronage")
COMMANDS = {
    "serve", "migrate", "demo", "worker", "users", "tokens", "sources", "keys", "analytics",
    "recommend", "import", "export", "segments", "ingestion",
}  # fmt: skip
SUBCOMMANDS = {
    "users": {"create", "list", "set-password"},
    "tokens": {"create"},
    "sources": {"create", "list", "revoke"},
    "keys": {"status", "rotate", "verify"},
    "import": {"customers", "products", "orders", "events"},
    "export": {"events"},
    "ingestion": {"status"},
    "analytics": {"snapshot", "refresh", "show", "validate", "patterns", "cohorts", "funnel"},
    "segments": {
        "list",
        "show",
        "create",
        "preview",
        "refresh",
        "export",
        "personas",
        "next-category",
    },
}
PASSWORD = "correct horse battery"

Invoke = Callable[..., Result]


def run(
    *args: str, data_dir: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `patronage ARGS` in a process of its own, as from a shell whose output is a pipe."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PATRONAGE_")}
    clean.pop("COLUMNS", None)
    clean.update({"PATRONAGE_DATA_DIR": str(data_dir), "PATRONAGE_ENV": "test", **env})
    return subprocess.run(
        [str(PATRONAGE), *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _fresh_settings() -> None:
    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Invoke]:
    """`invoke(*args, **env)`: run the command in-process against a data directory of its own."""
    for name in [k for k in os.environ if k.startswith("PATRONAGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PATRONAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PATRONAGE_ENV", "test")
    runner = CliRunner()

    def _invoke(*args: str, **env: str) -> Result:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        _fresh_settings()
        return runner.invoke(app, list(args), prog_name="patronage")

    yield _invoke
    _fresh_settings()


def listed_commands(help_text: str) -> set[str]:
    """Command names from the 'Commands' section: a Rich panel (sub-commands) or the plain
    list of the root command (kept plain so `--help` imports no capability)."""
    panel = help_text.split("Commands", 1)[1] if "Commands" in help_text else ""
    return set(re.findall(r"^(?:│ |  )([a-z][a-z-]*)\s", panel, re.MULTILINE))


def flat(text: str) -> str:
    """Output with line wrapping undone (in-process, Rich wraps at 80 columns)."""
    return " ".join(text.split())


def assert_one_line_error(stderr: str, stdout: str, message: str) -> None:
    assert "Traceback" not in stderr + stdout
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {stderr!r}"
    assert lines[0].startswith("error: ")
    assert message in lines[0]


# -- real processes ------------------------------------------------------------------------


@pytest.mark.slow
def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run("--help", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "patronage: open-source customer relationship platform." in result.stdout
    assert listed_commands(result.stdout) == COMMANDS
    assert not any(tmp_path.iterdir())  # asking for help writes nothing


@pytest.fixture(scope="module")
def migrated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a migrated SQLite database (migrated in-process: quicker)."""
    data_dir = tmp_path_factory.mktemp("cli-migrated")
    engine = create_engine(f"sqlite:///{data_dir / 'patronage.db'}")
    migrate.upgrade(engine)
    engine.dispose()
    return data_dir


@pytest.mark.slow  # a process of its own: patronage's imports take seconds on a busy machine
def test_short_password_is_refused(migrated_dir: Path) -> None:
    result = run("users", "create", "bob", "--password", "short", data_dir=migrated_dir)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, result.stdout, "password must be at least 10 characters")


@pytest.mark.slow
def test_token_for_unknown_user(migrated_dir: Path) -> None:
    result = run("tokens", "create", "ghost", data_dir=migrated_dir)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, result.stdout, "no user 'ghost'")
    assert "pat_" not in result.stdout


@pytest.mark.slow
def test_migrate_against_unreachable_postgres(tmp_path: Path) -> None:
    # port 1 on the loopback: nothing listens there, so the connection is refused at once
    result = run(
        "migrate", data_dir=tmp_path, PATRONAGE_DATABASE_URL="postgresql://postgres@127.0.0.1:1/x"
    )
    assert result.returncode == 3
    assert_one_line_error(
        result.stderr, result.stdout, "database unavailable or not migrated: connection failed"
    )
    assert "Connection refused" in result.stderr


# -- in-process ----------------------------------------------------------------------------


def test_no_arguments_shows_help(invoke: Invoke) -> None:
    result = invoke()
    assert "Usage: patronage" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(invoke: Invoke, command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: patronage {command}" in result.stdout
    if command in SUBCOMMANDS:
        assert listed_commands(result.stdout) == SUBCOMMANDS[command]


def test_migrate_users_and_tokens(invoke: Invoke, tmp_path: Path) -> None:
    migrated = invoke("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert migrated.stdout.strip() == "database at revision head"
    assert (tmp_path / "data" / "patronage.db").is_file()

    created = invoke("users", "create", "alice", "--role", "admin", "--password", PASSWORD)
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == "created user alice with role admin"

    listed = invoke("users", "list")
    assert listed.exit_code == 0, listed.output
    assert re.search(r"alice\s+│\s+admin\s+│\s+yes\s+│\s+never", listed.stdout)

    token = invoke("tokens", "create", "alice", "--name", "ci")
    assert token.exit_code == 0, token.output
    lines = token.stdout.strip().splitlines()
    assert lines[0] == "API token (shown once, store it now):"
    assert re.fullmatch(r"pat_[A-Za-z0-9_-]{43}", lines[1])

    again = invoke("users", "create", "alice", "--password", PASSWORD)
    assert again.exit_code == 1
    assert again.stderr.strip() == "error: user 'alice' already exists"

    short = invoke("users", "create", "bob", "--password", "short")
    assert short.exit_code == 1
    assert "bob" not in invoke("users", "list").stdout  # nothing half-written


def test_generated_password_is_printed_once(invoke: Invoke) -> None:
    assert invoke("migrate").exit_code == 0
    result = invoke("users", "create", "dora", "--role", "agent", "--password", "-")
    assert result.exit_code == 0, result.output
    assert re.search(r"^password: \S{16}$", result.stdout, re.MULTILINE)


def test_unknown_role_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("users", "create", "carol", "--role", "king", "--password", PASSWORD)
    assert result.exit_code == 2
    assert "'king' is not one of" in flat(result.stderr)
    assert isinstance(result.exception, SystemExit)


def test_invalid_database_url(invoke: Invoke) -> None:
    result = invoke("migrate", PATRONAGE_DATABASE_URL="mysql://root@localhost/x")
    assert result.exit_code == 2
    assert flat(result.stderr) == (
        "error: invalid settings: PATRONAGE_DATABASE_URL: "
        "unsupported database 'mysql' (use sqlite or postgresql)"
    )
    assert isinstance(result.exception, SystemExit)


def test_commands_before_migrate_say_so(invoke: Invoke) -> None:
    result = invoke("users", "list")
    assert result.exit_code == 3
    assert flat(result.stderr) == (
        "error: database unavailable or not migrated: no such table: users"
    )
    assert isinstance(result.exception, SystemExit)
