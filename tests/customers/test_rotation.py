"""Key rotation on SQLite and PostgreSQL: interrupted, resumed, every value intact."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import LargeBinary, select, text, type_coerce
from typer.testing import CliRunner

from patronage import config, db
from patronage.cli import app
from patronage.customers import rotation
from patronage.customers import service as customers
from patronage.customers.models import PII_FIELDS, Customer
from patronage.customers.schemas import CustomerCreate
from patronage.kit.crypto import FieldCipher, key_version_of

N = 1200
runner = CliRunner()


@contextmanager
def _env(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    config.get_settings.cache_clear()
    config.reset_cipher()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config.get_settings.cache_clear()
        config.reset_cipher()


@pytest.fixture
def key_file(database: str, tmp_path: Path) -> Iterator[Path]:
    """A key file of this test's own (the run's shared one stays untouched)."""
    path = tmp_path / "keys" / "keys.json"
    with _env(PATRONAGE_KEY_FILE=str(path)):
        yield path


def person(i: int) -> CustomerCreate:
    return CustomerCreate(
        user_id=f"u{i:05d}",
        email=f"Person.{i:05d}@Example.com",
        phone=f"+49 30 {i:07d}",
        first_name=f"First{i:05d}",
        last_name=f"Last{i:05d}",
        street=f"Street {i}",
        birthday=f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",  # type: ignore[arg-type]
        country="DE",
    )


def _create(n: int) -> dict[int, dict[str, str | None]]:
    with db.transaction() as s:
        rows = [customers.create_customer(s, person(i)) for i in range(n)]
        return {c.id: {f: getattr(c, f) for f in PII_FIELDS} for c in rows}


def _decrypted() -> dict[int, dict[str, str | None]]:
    with db.transaction() as s:
        return {
            c.id: {f: getattr(c, f) for f in PII_FIELDS}
            for c in s.scalars(select(Customer).order_by(Customer.id))
        }


def _header_versions() -> set[int]:
    """Key versions named by the stored ciphertexts themselves."""
    cols = [type_coerce(getattr(Customer, f), LargeBinary) for f in PII_FIELDS]
    with db.transaction() as s:
        return {
            key_version_of(bytes(value))[1]
            for row in s.execute(select(*cols))
            for value in row
            if value is not None
        }


def _status_lines(path: Path, rows: dict[int, int], pending: int) -> str:
    lines = [f"keys from: key file {path}", "active key version: 2"]
    lines += [
        f"key version {v}: {rows.get(v, 0)} rows" + (" (active)" if v == 2 else "") for v in (1, 2)
    ]
    if pending:
        lines.append(f"{pending} rows still on older keys: run 'patronage keys rotate --resume'")
    else:
        lines.append("all rows are on the active key")
    return "\n".join(lines) + "\n"


def test_rotation_interrupted_then_resumed(key_file: Path, monkeypatch: pytest.MonkeyPatch):
    expected = _create(N)
    with db.transaction() as s:
        assert rotation.rows_per_version(s) == {1: N}
    before = json.loads(key_file.read_text())
    assert list(before["keys"]) == ["1"]

    real = rotation.reencrypt_batch
    calls = 0

    def interrupted(session, after_id, batch_size):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second batch
        return real(session, after_id, batch_size)

    monkeypatch.setattr(rotation, "reencrypt_batch", interrupted)
    result = runner.invoke(app, ["keys", "rotate", "--batch-size", "500"])
    assert result.exit_code == 130, result.output
    assert f"added key version 2 to {key_file} (now active)" in result.output
    assert (
        "interrupted after 500 rows (committed); run 'patronage keys rotate --resume' to continue"
        in " ".join(result.output.split())
    )
    monkeypatch.setattr(rotation, "reencrypt_batch", real)

    # the key file: new version active, old one kept, blind index key unchanged, owner-only
    after = json.loads(key_file.read_text())
    assert after["active"] == 2 and sorted(after["keys"]) == ["1", "2"]
    assert after["keys"]["1"] == before["keys"]["1"]
    assert after["blind_index_key"] == before["blind_index_key"]
    assert len(base64.b64decode(after["keys"]["2"])) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not key_file.with_suffix(".tmp").exists()

    # half-way: the first batch (lowest ids) moved, the rest did not, everything still reads
    with db.transaction() as s:
        assert rotation.rows_per_version(s) == {1: 700, 2: 500}
        moved = s.scalars(select(Customer.id).where(Customer.key_version == 2)).all()
    assert sorted(moved) == sorted(expected)[:500]
    assert _header_versions() == {1, 2}
    assert _decrypted() == expected
    status = runner.invoke(app, ["keys", "status"])
    assert status.exit_code == 0
    assert status.output == _status_lines(key_file, {1: 700, 2: 500}, 700)

    # a new rotation is refused while this one is unfinished
    refused = runner.invoke(app, ["keys", "rotate"])
    assert refused.exit_code == 1
    assert "700 rows are not yet on the active key version 2" in " ".join(refused.output.split())
    assert sorted(json.loads(key_file.read_text())["keys"]) == ["1", "2"]

    resumed = runner.invoke(app, ["keys", "rotate", "--resume", "--batch-size", "500"])
    assert resumed.exit_code == 0, resumed.output
    assert "re-encrypted 700 rows in 2 batches with key version 2" in resumed.output
    assert "added key" not in resumed.output

    with db.transaction() as s:
        assert rotation.rows_per_version(s) == {2: N}
    assert _header_versions() == {2}
    assert _decrypted() == expected
    with db.transaction() as s:
        found = customers.find_by_email(s, " PERSON.00777@example.COM ")
        assert found is not None and found.user_id == "u00777"
        by_phone = customers.find_by_phone(s, "+4930 0000042")
        assert by_phone is not None and by_phone.user_id == "u00042"
        actions = s.execute(text("SELECT action, target_id FROM audit_log ORDER BY id")).all()
    assert [tuple(a) for a in actions] == [("keys.add", "2"), ("keys.reencrypt", "2")]

    status = runner.invoke(app, ["keys", "status"])
    assert status.exit_code == 0
    assert status.output == _status_lines(key_file, {2: N}, 0)

    again = runner.invoke(app, ["keys", "rotate", "--resume"])
    assert again.exit_code == 0
    assert again.output == "nothing to re-encrypt: every row is on key version 2\n"


def test_running_server_reads_rows_sealed_with_a_newer_key(key_file: Path):
    """A process that started before the rotation (old keyring cached) still reads every row."""
    expected = _create(3)
    stale = config.get_cipher()
    assert stale.keyring.active == 1
    rotation.add_key(config.get_settings())
    assert rotation.reencrypt_all(batch_size=2).rewritten == 3
    config.reset_cipher(stale)  # what a server started before the rotation still holds
    assert _decrypted() == expected
    assert config.get_cipher().keyring.active == 2  # and it now seals with the new key


def test_environment_keys(database: str):
    one, two, blind = (base64.b64encode(os.urandom(32)).decode() for _ in range(3))
    with _env(
        PATRONAGE_ENCRYPTION_KEYS=f"1:{one}",
        PATRONAGE_ENCRYPTION_ACTIVE_KEY=None,
        PATRONAGE_BLIND_INDEX_KEY=blind,
    ):
        expected = _create(5)
        refused = runner.invoke(app, ["keys", "rotate"])
        assert refused.exit_code == 1
        message = " ".join(refused.output.split())
        assert "the encryption keys come from the environment" in message
        assert "add a version to PATRONAGE_ENCRYPTION_KEYS" in message
        assert "set PATRONAGE_ENCRYPTION_ACTIVE_KEY to it" in message
        assert "'patronage keys rotate --resume'" in message
    with _env(
        PATRONAGE_ENCRYPTION_KEYS=f"1:{one},2:{two}",
        PATRONAGE_ENCRYPTION_ACTIVE_KEY="2",
        PATRONAGE_BLIND_INDEX_KEY=blind,
    ):
        resumed = runner.invoke(app, ["keys", "rotate", "--resume", "--batch-size", "2"])
        assert resumed.exit_code == 0, resumed.output
        assert "re-encrypted 5 rows in 3 batches with key version 2" in resumed.output
        assert _decrypted() == expected
        assert _header_versions() == {2}
        status = runner.invoke(app, ["keys", "status"])
        assert status.output == (
            "keys from: environment (PATRONAGE_ENCRYPTION_KEYS)\n"
            "active key version: 2\n"
            "key version 1: 0 rows\n"
            "key version 2: 5 rows (active)\n"
            "all rows are on the active key\n"
        )


def test_unknown_key_version_is_reported(key_file: Path):
    _create(2)
    with db.transaction() as s:
        s.execute(
            text("UPDATE customers SET key_version = 9 WHERE id = (SELECT MIN(id) FROM customers)")
        )
    status = runner.invoke(app, ["keys", "status"])
    assert status.exit_code == 1
    assert "key version 9: 1 rows (NOT IN THE KEYRING: these rows cannot be decrypted)" in (
        status.output
    )


def test_cipher_without_reload_reports_missing_key() -> None:
    from patronage.kit.crypto import DecryptionError, Keyring

    old = FieldCipher(Keyring({1: b"k" * 32}, 1, b"b" * 32))
    new = FieldCipher(Keyring({1: b"k" * 32, 2: b"n" * 32}, 2, b"b" * 32))
    sealed = new.encrypt("x", "customers.email")
    with pytest.raises(DecryptionError, match="key version 2 is not in the keyring"):
        old.decrypt(sealed, "customers.email")


def test_verify_finds_values_the_bookkeeping_missed(key_file: Path):
    """A process that had not seen the rotation sealed a value with the old key: found, fixed."""
    old_cipher = config.get_cipher()
    expected = _create(4)
    rotation.add_key(config.get_settings())
    assert rotation.reencrypt_all(batch_size=10).rewritten == 4
    ids = sorted(expected)
    # a stale writer (keyring without version 2) seals one value of the first row with key 1,
    # and creates a row that records version 1 while its values use key 2 (the column default)
    stale = FieldCipher(old_cipher.keyring)
    with db.transaction() as s:
        s.execute(
            text("UPDATE customers SET email = :v WHERE id = :id"),
            {"v": stale.encrypt("late@example.com", "customers.email"), "id": ids[0]},
        )
        s.execute(text("UPDATE customers SET key_version = 1 WHERE id = :id"), {"id": ids[1]})
    expected[ids[0]]["email"] = "late@example.com"
    assert runner.invoke(app, ["keys", "status"]).output.endswith(
        "key version 1: 1 rows\nkey version 2: 3 rows (active)\n"
        "1 rows still on older keys: run 'patronage keys rotate --resume'\n"
    )

    result = runner.invoke(app, ["keys", "verify", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("verifying")]
    assert lines == [
        "checked 4 rows; rows with values sealed by key version 1: 1, 2: 4",
        "corrected the recorded key version of 2 rows",
        "1 rows still on older keys: run 'patronage keys rotate --resume'",
    ]
    with db.transaction() as s:
        assert rotation.rows_per_version(s) == {1: 1, 2: 3}
    resumed = runner.invoke(app, ["keys", "rotate", "--resume"])
    assert "re-encrypted 1 rows in 1 batches with key version 2" in resumed.output
    again = runner.invoke(app, ["keys", "verify"])
    lines = [line for line in again.output.splitlines() if not line.startswith("verifying")]
    assert lines == [
        "checked 4 rows; rows with values sealed by key version 2: 4",
        "every row records the key of its oldest value",
    ]
    assert _header_versions() == {2}
    assert _decrypted() == expected


def test_verify_reports_values_that_are_not_ciphertexts(key_file: Path):
    ids = sorted(_create(2))
    with db.transaction() as s:
        s.execute(
            text("UPDATE customers SET street = :v WHERE id = :id"), {"v": b"x", "id": ids[1]}
        )
    result = runner.invoke(app, ["keys", "verify"])
    assert result.exit_code == 1
    assert f"1 rows hold values that are not ciphertexts: {ids[1]}" in result.output
