"""Settings from the environment (prefix PATRONAGE_) and the key material they point to.

Development: a key file is generated in the data directory on first run (owner-only).
Production: nothing is generated; missing or placeholder secrets stop start-up with a
message naming the variable to set.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from patronage.kit.crypto import FieldCipher, Keyring, new_key

PLACEHOLDERS = {"", "changeme", "change-me", "secret", "placeholder", "xxx", "todo", "none"}


class ConfigError(Exception):
    """Settings are invalid; the message says what to set and is safe to print."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATRONAGE_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory"
    )
    broker_url: str | None = Field(
        default=None, description="redis://… for many workers; default: SQLite queue file"
    )
    analytics_engine: Literal["duckdb", "spark", "database"] = Field(
        default="duckdb",
        description="where analytics run: in-process DuckDB, inside PostgreSQL, or Spark",
    )
    spark_master: str = Field(default="local[2]", description="Spark master URL (engine spark)")
    spark_shuffle_partitions: int = Field(default=4, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    key_file: Path | None = Field(default=None, description="default: DATA_DIR/keys.json")
    encryption_keys: str | None = Field(
        default=None, description="'1:<base64 32 bytes>,2:<…>' (overrides the key file)"
    )
    encryption_active_key: int | None = None
    blind_index_key: str | None = Field(default=None, description="base64, >= 32 bytes")
    session_idle_minutes: int = Field(default=480, ge=1)
    session_max_hours: int = Field(default=168, ge=1)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    login_throttle_minutes: int = Field(default=15, ge=1)
    secure_cookies: bool | None = Field(default=None, description="default: on in production")
    # -- collect (tracking API) --
    merge_on_email: bool = Field(
        default=True, description="an identify whose email matches another profile merges them"
    )
    events_without_consent: Literal["strip", "drop"] = Field(
        default="strip",
        description="events of customers without analytics consent: strip ip, user agent and "
        "page details, or drop the event",
    )
    ingest_processing: Literal["background", "inline"] | None = Field(
        default=None,
        description="tracking API: land and acknowledge, then process in the background, or "
        "process landed messages before answering; default: inline when env=test",
    )
    ingest_processor_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="CPU priority of the background processor below the requests' (0: the same)",
    )

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(
                "PATRONAGE_DATABASE_URL is not a database URL "
                "(expected sqlite:///path/to/file.db or postgresql://user@host:5432/db)"
            ) from exc
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError(
                f"PATRONAGE_DATABASE_URL: unsupported database '{url.get_backend_name()}' "
                "(use sqlite or postgresql)"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "sqlite:///")):
            raise ValueError("PATRONAGE_BROKER_URL must start with redis:// or sqlite:///")
        return value or None

    @cached_property  # every request's session asks (parsing the URL cost ~40 us each time)
    def resolved_database_url(self) -> str:
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'patronage.db').resolve()}"
        url = make_url(self.database_url)
        if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_dir / "keys.json"

    @property
    def ingest_inline(self) -> bool:
        mode = self.ingest_processing or ("inline" if self.env == "test" else "background")
        return mode == "inline"

    @property
    def cookies_secure(self) -> bool:
        return self.env == "production" if self.secure_cookies is None else self.secure_cookies


def load_settings() -> Settings:
    """Settings from the environment; a ConfigError (never a traceback) when they are wrong."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None


def _problem(err: Any) -> str:
    name = f"PATRONAGE_{'_'.join(str(p) for p in err['loc']).upper()}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    # our validators already name the variable; pydantic's own messages do not
    return msg if msg.startswith(name) else f"{name}: {msg}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


# -- keys -------------------------------------------------------------------------------


def _b64(value: str, name: str) -> bytes:
    if value.strip().lower() in PLACEHOLDERS:
        raise ConfigError(f"{name} is a placeholder; set it to a random base64 key")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{name} is not valid base64") from exc


def _keyring_from_env(settings: Settings) -> Keyring:
    if not settings.blind_index_key:
        raise ConfigError("set PATRONAGE_BLIND_INDEX_KEY (base64 of >= 32 random bytes)")
    keys: dict[int, bytes] = {}
    for part in (settings.encryption_keys or "").split(","):
        version, _, material = part.strip().partition(":")
        if not version.isdigit() or not material:
            raise ConfigError("PATRONAGE_ENCRYPTION_KEYS must look like '1:<base64>,2:<base64>'")
        keys[int(version)] = _b64(material, f"PATRONAGE_ENCRYPTION_KEYS version {version}")
    active = settings.encryption_active_key or max(keys)
    if active not in keys:
        raise ConfigError(
            f"PATRONAGE_ENCRYPTION_ACTIVE_KEY={active} is not a version in "
            f"PATRONAGE_ENCRYPTION_KEYS (versions: {', '.join(map(str, sorted(keys)))})"
        )
    blind = _b64(settings.blind_index_key, "PATRONAGE_BLIND_INDEX_KEY")
    try:
        return Keyring(keys, active, blind)
    except ValueError as exc:
        # which variable: the keyring checks key lengths and version numbers
        name = "PATRONAGE_BLIND_INDEX_KEY" if "blind" in str(exc) else "PATRONAGE_ENCRYPTION_KEYS"
        raise ConfigError(f"{name}: {exc}") from exc


def read_key_file(path: Path) -> Keyring:
    try:
        data = json.loads(path.read_text())
        keys = {int(v): _b64(k, f"{path} key {v}") for v, k in data["keys"].items()}
        return Keyring(keys, int(data["active"]), _b64(data["blind_index_key"], str(path)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"key file {path} is unreadable or malformed: {exc}") from exc


def write_key_file(path: Path, keyring: Keyring, *, replace: bool = True) -> None:
    """Atomic, 0600: a crash never leaves half a key file.

    `replace=False` creates the file only if there is none (FileExistsError otherwise): two
    processes starting at once must not each write a key of their own, or the data one of
    them encrypts is lost with the key the other overwrites.
    """
    data = {
        "active": keyring.active,
        "keys": {str(v): base64.b64encode(k).decode() for v, k in keyring.keys.items()},
        "blind_index_key": base64.b64encode(keyring.blind_index_key).decode(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            tmp.replace(path)
        else:
            os.link(tmp, path)  # atomic, and fails when another process was first
    finally:
        tmp.unlink(missing_ok=True)


def load_keyring(settings: Settings) -> Keyring:
    if settings.encryption_keys or settings.blind_index_key:
        return _keyring_from_env(settings)
    path = settings.resolved_key_file
    if path.exists():
        return read_key_file(path)
    if settings.env == "production":
        raise ConfigError(
            "no encryption keys: set PATRONAGE_ENCRYPTION_KEYS and PATRONAGE_BLIND_INDEX_KEY, "
            f"or PATRONAGE_KEY_FILE to an existing key file (looked for {path})"
        )
    keyring = Keyring({1: new_key()}, 1, new_key())
    try:
        write_key_file(path, keyring, replace=False)
    except FileExistsError:
        return read_key_file(path)  # another process created it first: use theirs
    return keyring


_cipher: FieldCipher | None = None


def get_cipher() -> FieldCipher:
    global _cipher
    if _cipher is None:
        # reload: a key added by `patronage keys rotate` is picked up without a restart
        _cipher = FieldCipher(
            load_keyring(get_settings()), reload=lambda: load_keyring(get_settings())
        )
    return _cipher


def reset_cipher(cipher: FieldCipher | None = None) -> None:
    """Forget (or replace) the cached cipher, after a rotation or in tests."""
    global _cipher
    _cipher = cipher


def check_production_ready(settings: Settings) -> None:
    """Refuse to start in production without real secrets."""
    if settings.env != "production":
        return
    load_keyring(settings)
    if settings.database_url is None:
        raise ConfigError("set PATRONAGE_DATABASE_URL in production (e.g. postgresql://…)")
