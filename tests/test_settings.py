"""Settings and key material: clear errors for every wrong setting, never a traceback."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from patronage import config
from patronage.config import ConfigError

PATRONAGE = str(Path(sys.executable).parent / "patronage")


def b64(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No PATRONAGE_ variable but a data directory of this test's own."""
    for name in list(os.environ):
        if name.startswith("PATRONAGE_") and name != "PATRONAGE_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PATRONAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    yield monkeypatch
    config.get_settings.cache_clear()
    config.reset_cipher()


def keyring_error(**variables: str) -> str:
    settings = config.Settings(**variables)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        config.check_production_ready(settings)
    return str(caught.value)


def test_production_without_keys_names_the_variables(env: pytest.MonkeyPatch, tmp_path: Path):
    env.setenv("PATRONAGE_ENV", "production")
    settings = config.load_settings()
    with pytest.raises(ConfigError) as caught:
        config.check_production_ready(settings)
    assert str(caught.value) == (
        "no encryption keys: set PATRONAGE_ENCRYPTION_KEYS and PATRONAGE_BLIND_INDEX_KEY, "
        f"or PATRONAGE_KEY_FILE to an existing key file (looked for {tmp_path / 'data'}"
        "/keys.json)"
    )
    assert not (tmp_path / "data" / "keys.json").exists()  # production never generates keys


def test_production_needs_a_database_url(env: pytest.MonkeyPatch):
    env.setenv("PATRONAGE_ENV", "production")
    env.setenv("PATRONAGE_ENCRYPTION_KEYS", f"1:{b64()}")
    env.setenv("PATRONAGE_BLIND_INDEX_KEY", b64())
    with pytest.raises(ConfigError, match=r"^set PATRONAGE_DATABASE_URL in production"):
        config.check_production_ready(config.load_settings())
    env.setenv("PATRONAGE_DATABASE_URL", "postgresql://app@db.internal:5432/patronage")
    settings = config.load_settings()
    config.check_production_ready(settings)  # complete: no error
    assert settings.resolved_database_url == ("postgresql+psycopg://app@db.internal:5432/patronage")
    assert settings.cookies_secure is True


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"encryption_keys": "1:changeme", "blind_index_key": "{B}"},
            "PATRONAGE_ENCRYPTION_KEYS version 1 is a placeholder; set it to a random base64 key",
        ),
        (
            {"encryption_keys": "1:{K}", "blind_index_key": "CHANGEME"},
            "PATRONAGE_BLIND_INDEX_KEY is a placeholder; set it to a random base64 key",
        ),
        (
            {"encryption_keys": "1:{K},2: secret ", "blind_index_key": "{B}"},
            "PATRONAGE_ENCRYPTION_KEYS version 2 is a placeholder; set it to a random base64 key",
        ),
        (
            {"encryption_keys": "changeme", "blind_index_key": "{B}"},
            "PATRONAGE_ENCRYPTION_KEYS must look like '1:<base64>,2:<base64>'",
        ),
        (
            {"encryption_keys": "1:{K}"},
            "set PATRONAGE_BLIND_INDEX_KEY (base64 of >= 32 random bytes)",
        ),
        (
            {"encryption_keys": "1:%%%not-base64", "blind_index_key": "{B}"},
            "PATRONAGE_ENCRYPTION_KEYS version 1 is not valid base64",
        ),
        (
            {"encryption_keys": "1:{SHORT}", "blind_index_key": "{B}"},
            "PATRONAGE_ENCRYPTION_KEYS: key version 1 must be 32 bytes (AES-256)",
        ),
        (
            {"encryption_keys": "1:{K}", "blind_index_key": "{SHORT}"},
            "PATRONAGE_BLIND_INDEX_KEY: the blind index key must be at least 32 bytes",
        ),
        (
            {
                "encryption_keys": "1:{K},2:{K}",
                "encryption_active_key": "3",
                "blind_index_key": "{B}",
            },
            "PATRONAGE_ENCRYPTION_ACTIVE_KEY=3 is not a version in PATRONAGE_ENCRYPTION_KEYS "
            "(versions: 1, 2)",
        ),
    ],
)
def test_bad_keys_are_refused(env: pytest.MonkeyPatch, variables: dict[str, str], message: str):
    real = {"K": b64(), "B": b64(), "SHORT": b64(16)}
    for name, value in variables.items():
        env.setenv(f"PATRONAGE_{name.upper()}", value.format(**real))
    env.setenv("PATRONAGE_ENV", "production")
    env.setenv("PATRONAGE_DATABASE_URL", "postgresql://app@db/patronage")
    with pytest.raises(ConfigError) as caught:
        config.check_production_ready(config.load_settings())
    assert str(caught.value) == message
    for secret in real.values():
        assert secret not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "not a url",
            "invalid settings: PATRONAGE_DATABASE_URL is not a database URL "
            "(expected sqlite:///path/to/file.db or postgresql://user@host:5432/db)",
        ),
        (
            "mysql://x",
            "invalid settings: PATRONAGE_DATABASE_URL: unsupported database 'mysql' "
            "(use sqlite or postgresql)",
        ),
    ],
)
def test_malformed_database_url(env: pytest.MonkeyPatch, url: str, message: str):
    env.setenv("PATRONAGE_DATABASE_URL", url)
    with pytest.raises(ConfigError) as caught:
        config.load_settings()
    assert str(caught.value) == message


def test_other_invalid_settings_name_their_variable(env: pytest.MonkeyPatch):
    env.setenv("PATRONAGE_PORT", "abc")
    env.setenv("PATRONAGE_BROKER_URL", "amqp://rabbit")
    with pytest.raises(ConfigError) as caught:
        config.load_settings()
    assert str(caught.value) == (
        "invalid settings: PATRONAGE_BROKER_URL must start with redis:// or sqlite:///; "
        "PATRONAGE_PORT: Input should be a valid integer, unable to parse string as an integer"
    )


def test_key_file_created_owner_only_on_first_run(env: pytest.MonkeyPatch, tmp_path: Path):
    settings = config.load_settings()
    path = tmp_path / "data" / "keys.json"
    assert settings.resolved_key_file == path
    assert not path.exists()
    old_umask = os.umask(0)  # permissions must not depend on the caller's umask
    try:
        first = config.load_keyring(settings)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["active"] == 1 and list(data["keys"]) == ["1"]
    assert len(base64.b64decode(data["keys"]["1"])) == 32
    assert len(base64.b64decode(data["blind_index_key"])) == 32
    assert config.load_keyring(settings) == first  # the second run reads, never regenerates
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys.json"]  # no temp left


def _first_run_keyring(data_dir: str) -> bytes:
    os.environ["PATRONAGE_DATA_DIR"] = data_dir
    return config.load_keyring(config.load_settings()).keys[1]


def test_processes_starting_at_once_share_one_key(env: pytest.MonkeyPatch, tmp_path: Path):
    """Found by the 1M demo benchmark: generator processes each wrote a key of their own on
    first run, so rows one of them encrypted were lost with its overwritten key."""
    from concurrent.futures import ProcessPoolExecutor

    data_dir = str(tmp_path / "fresh")
    for _ in range(5):  # a race: try it a few times
        shutil.rmtree(data_dir, ignore_errors=True)
        with ProcessPoolExecutor(4) as pool:
            keys = list(pool.map(_first_run_keyring, [data_dir] * 8))
        stored = config.read_key_file(Path(data_dir) / "keys.json").keys[1]
        assert set(keys) == {stored}
        assert sorted(p.name for p in Path(data_dir).iterdir()) == ["keys.json"]


def test_key_file_elsewhere_and_malformed(env: pytest.MonkeyPatch, tmp_path: Path):
    path = tmp_path / "secrets" / "patronage-keys.json"
    env.setenv("PATRONAGE_KEY_FILE", str(path))
    settings = config.load_settings()
    keyring = config.load_keyring(settings)
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "data" / "keys.json").exists()
    assert keyring.active == 1
    path.write_text('{"keys": {"1": "changeme"}, "active": 1, "blind_index_key": "x"}')
    with pytest.raises(ConfigError, match=rf"^{path} key 1 is a placeholder"):
        config.load_keyring(settings)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=rf"^key file {path} is unreadable or malformed"):
        config.load_keyring(settings)


# -- the commands: non-zero exit, one message, no traceback ------------------------------------


def run_cli(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PATRONAGE_")}
    environ.update({"PATRONAGE_DATA_DIR": str(tmp_path / "data"), **variables})
    environ.pop("COLUMNS", None)
    return subprocess.run(
        [PATRONAGE, *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "variables", "code", "message"),
    [
        (
            ("migrate",),
            {"PATRONAGE_DATABASE_URL": "not a url"},
            2,
            "error: invalid settings: PATRONAGE_DATABASE_URL is not a database URL "
            "(expected sqlite:///path/to/file.db or postgresql://user@host:5432/db)",
        ),
        (
            ("serve",),
            {"PATRONAGE_DATABASE_URL": "mysql://x"},
            2,
            "error: invalid settings: PATRONAGE_DATABASE_URL: unsupported database 'mysql' "
            "(use sqlite or postgresql)",
        ),
        (
            ("serve",),
            {"PATRONAGE_ENV": "production"},
            2,
            "error: no encryption keys: set PATRONAGE_ENCRYPTION_KEYS and "
            "PATRONAGE_BLIND_INDEX_KEY, or PATRONAGE_KEY_FILE to an existing key file "
            "(looked for data/keys.json)",
        ),
        (
            ("migrate",),
            {"PATRONAGE_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"},
            3,
            "error: database unavailable or not migrated: connection failed: connection to "
            'server at "127.0.0.1", port 9 failed: Connection refused',
        ),
    ],
)
def test_commands_with_bad_settings(
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    args: tuple[str, ...],
    variables: dict[str, str],
    code: int,
    message: str,
):
    message = message.replace("(looked for data/", f"(looked for {tmp_path}/data/")
    if args == ("migrate",) and "not a url" in variables.values():
        result = run_cli(tmp_path, *args, **variables)  # one real process, start to end
        returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    else:  # the same entry point in-process: a process start costs seconds here
        from typer.testing import CliRunner

        from patronage.cli import app

        for name, value in variables.items():
            env.setenv(name, value)
        config.get_settings.cache_clear()
        config.reset_cipher()
        outcome = CliRunner().invoke(app, list(args))
        returncode, stdout, stderr = outcome.exit_code, outcome.stdout, outcome.stderr
    assert returncode == code, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    # Rich wraps at the terminal width (80 columns in a pipe); the message itself is one line
    assert " ".join(stderr.split()) == message
