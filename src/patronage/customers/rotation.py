"""Key rotation: seal every customer's personal fields with the active data key.

Every row says which key sealed it (`customers.key_version`, and the header of each
ciphertext), so re-encryption runs in batches, each committed on its own, and an interrupted
run resumes by simply looking for rows not yet on the active key. Blind indexes use their own
key and do not change.

Rows are read and written as raw bytes (a lightweight table with binary columns), so the
ORM's `Encrypted` type never sees them. An update only lands when the row still holds the bytes
that were read: a profile edited by someone else meanwhile is left for the next pass instead
of being overwritten with stale values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    LargeBinary,
    SmallInteger,
    TableClause,
    bindparam,
    column,
    func,
    select,
    table,
    update,
)
from sqlalchemy.orm import Session

from patronage import config, db
from patronage.auth import service as auth_service
from patronage.config import Settings
from patronage.customers.models import Customer
from patronage.errors import Conflict
from patronage.kit.crypto import DecryptionError, Keyring, key_version_of, new_key

DEFAULT_BATCH = 5000
MAX_PASSES = 3  # extra passes only pick up rows edited concurrently during the previous one


class KeysFromEnvironment(Conflict):
    """Keys set in the environment can only be changed where they are set."""

    code = "keys_from_environment"


class RotationIncomplete(Conflict):
    code = "rotation_incomplete"


class Unreadable(Conflict):
    """A stored value cannot be decrypted (its key is missing or it was tampered with)."""

    code = "undecryptable"


def encrypted_columns() -> list[tuple[str, str]]:
    """(column name, encryption context) of every `Encrypted` column of customers."""
    return [
        (c.name, c.type.context)
        for c in Customer.__table__.columns
        if isinstance(c.type, db.Encrypted)
    ]


class _Bytes(LargeBinary):
    """Bytes passed to the driver as they are: both drivers take `bytes`, and wrapping 12
    values a row in the DB-API Binary type cost a quarter of the rotation's time."""

    cache_ok = True

    def bind_processor(self, dialect: Any) -> None:
        return None


def _raw_table() -> TableClause:
    return table(
        Customer.__tablename__,
        column("id", BigInteger),
        column("key_version", SmallInteger),
        *(column(name, _Bytes) for name, _ in encrypted_columns()),
    )


# -- where the keys live --------------------------------------------------------------------


def keys_from_environment(settings: Settings) -> bool:
    """Mirrors `config.load_keyring`: any key variable set means the environment is the source."""
    return bool(settings.encryption_keys or settings.blind_index_key)


def key_source(settings: Settings) -> str:
    if keys_from_environment(settings):
        return "environment (PATRONAGE_ENCRYPTION_KEYS)"
    return f"key file {settings.resolved_key_file}"


def add_key(settings: Settings) -> Keyring:
    """Add a new key version to the key file and make it the active one (atomic, 0600)."""
    if keys_from_environment(settings):
        raise KeysFromEnvironment(
            "the encryption keys come from the environment, so patronage cannot add one: add a "
            "version to PATRONAGE_ENCRYPTION_KEYS (e.g. '1:<old>,2:<new base64 32 bytes>'), set "
            "PATRONAGE_ENCRYPTION_ACTIVE_KEY to it, restart every server and worker, then run "
            "'patronage keys rotate --resume'"
        )
    current = config.load_keyring(settings)  # creates the key file on a first run (not prod)
    version = max(current.keys) + 1
    keyring = Keyring({**current.keys, version: new_key()}, version, current.blind_index_key)
    config.write_key_file(settings.resolved_key_file, keyring)
    config.reset_cipher()
    return keyring


# -- status -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyStatus:
    source: str
    active: int
    versions: tuple[int, ...]  # in the keyring
    rows: dict[int, int]  # key version -> customer rows sealed with it

    @property
    def pending(self) -> int:
        return sum(n for v, n in self.rows.items() if v != self.active)

    @property
    def unreadable(self) -> dict[int, int]:
        """Rows whose key version is missing from the keyring."""
        return {v: n for v, n in self.rows.items() if v not in self.versions}


def rows_per_version(session: Session) -> dict[int, int]:
    raw = _raw_table()
    stmt = select(raw.c.key_version, func.count()).group_by(raw.c.key_version)
    return {int(v): int(n) for v, n in session.execute(stmt)}


def key_status(session: Session, settings: Settings) -> KeyStatus:
    keyring = config.get_cipher().keyring
    return KeyStatus(
        source=key_source(settings),
        active=keyring.active,
        versions=tuple(sorted(keyring.keys)),
        rows=rows_per_version(session),
    )


def count_pending(session: Session, active: int) -> int:
    raw = _raw_table()
    stmt = select(func.count()).select_from(raw).where(raw.c.key_version != active)
    return int(session.scalar(stmt) or 0)


# -- re-encryption ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    read: int  # rows selected
    written: int  # rows re-encrypted (read minus rows edited concurrently)
    last_id: int  # resume after this id in the same pass


def reencrypt_batch(session: Session, after_id: int, batch_size: int) -> BatchResult:
    """Re-encrypt up to `batch_size` rows (id > after_id) not on the active key.

    The caller commits; nothing is written when no row is left.
    """
    cipher = config.get_cipher()
    active = cipher.keyring.active
    fields = encrypted_columns()
    raw = _raw_table()
    stmt = (
        select(raw)
        .where(raw.c.key_version != active, raw.c.id > after_id)
        .order_by(raw.c.id)
        .limit(batch_size)
        .with_for_update()  # PostgreSQL locks the batch; SQLite relies on the guard below
    )
    rows = session.execute(stmt).mappings().all()
    if not rows:
        return BatchResult(0, 0, after_id)
    params: list[dict[str, Any]] = []
    for row in rows:
        item: dict[str, Any] = {"b_id": row["id"], "b_old_version": row["key_version"]}
        for name, context in fields:
            old = row[name]
            old = bytes(old) if old is not None else None
            item[f"b_old_{name}"] = old
            try:
                plain = cipher.decrypt(old, context)
            except DecryptionError as exc:
                raise Unreadable(f"customer {row['id']}, {name}: {exc}") from None
            item[f"b_new_{name}"] = cipher.encrypt(plain, context)
        params.append(item)
    guarded = update(raw).where(
        raw.c.id == bindparam("b_id"),
        raw.c.key_version == bindparam("b_old_version"),
        *(
            raw.c[name].is_not_distinct_from(bindparam(f"b_old_{name}", type_=_Bytes))
            for name, _ in fields
        ),
    )
    values: dict[str, Any] = {name: bindparam(f"b_new_{name}") for name, _ in fields}
    values["key_version"] = active
    result = session.connection().execute(guarded.values(values), params)
    written = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else -1
    if written < 0:  # driver cannot tell: count what is still pending in this batch
        ids = [p["b_id"] for p in params]
        left = session.scalar(
            select(func.count())
            .select_from(raw)
            .where(raw.c.id.in_(ids), raw.c.key_version != active)
        )
        written = len(ids) - int(left or 0)
    return BatchResult(len(rows), written, int(rows[-1]["id"]))


@dataclass(frozen=True)
class RotationResult:
    active: int
    rewritten: int
    batches: int
    remaining: int  # rows still not on the active key (edited concurrently MAX_PASSES times)


def reencrypt_all(
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int], None] | None = None,
    actor: str = "cli",
) -> RotationResult:
    """Re-encrypt every row not on the active key, one committed transaction per batch.

    Safe to interrupt at any point and to run again: it continues with the rows still left.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    active = config.get_cipher().keyring.active
    rewritten = batches = 0
    for _ in range(MAX_PASSES):
        after = 0
        while True:
            with db.transaction() as session:
                result = reencrypt_batch(session, after, batch_size)
            if result.read == 0:
                break
            batches += 1
            rewritten += result.written
            after = result.last_id
            if on_batch is not None:
                on_batch(result.written)
        with db.transaction() as session:
            remaining = count_pending(session, active)
        if remaining == 0:
            break
    if rewritten:
        with db.transaction() as session:
            auth_service.audit(
                session,
                None,
                "keys.reencrypt",
                "key_version",
                str(active),
                {"rows": rewritten, "batches": batches, "remaining": remaining},
                actor=actor,
            )
    return RotationResult(active, rewritten, batches, remaining)


def start_rotation(settings: Settings, actor: str = "cli") -> Keyring:
    """Add a new active key, refusing while an earlier rotation is unfinished."""
    active = config.get_cipher().keyring.active
    with db.transaction() as session:
        pending = count_pending(session, active)
    if pending:
        raise RotationIncomplete(
            f"{pending} rows are not yet on the active key version {active}: finish the "
            "earlier rotation with 'patronage keys rotate --resume' first"
        )
    keyring = add_key(settings)
    with db.transaction() as session:
        auth_service.audit(
            session, None, "keys.add", "key_version", str(keyring.active), actor=actor
        )
    return keyring


# -- verification ---------------------------------------------------------------------------------


@dataclass
class Verification:
    rows: int = 0
    values: dict[int, int] = field(default_factory=dict)  # key version -> values sealed with it
    corrected: int = 0  # rows whose key_version now names their oldest value's key
    corrupt: list[int] = field(default_factory=list)  # ids of rows with unparsable values


def verify_batch(session: Session, after_id: int, batch_size: int, into: Verification) -> int:
    """Check up to `batch_size` rows (id > after_id) against the key versions in their values.

    `customers.key_version` is bookkeeping; the ciphertexts themselves say which key sealed
    them. A row whose `key_version` is not the version of its oldest value (written by a
    process that had not seen a rotation yet, say) gets it corrected, so that `rotate --resume`
    picks it up and no key is retired while a value still needs it. Returns the last id read
    (`after_id` when nothing was left).
    """
    fields = [name for name, _ in encrypted_columns()]
    raw = _raw_table()
    stmt = select(raw).where(raw.c.id > after_id).order_by(raw.c.id).limit(batch_size)
    rows = session.execute(stmt).mappings().all()
    fixes: list[dict[str, int]] = []
    for row in rows:
        versions: set[int] = set()
        try:
            for name in fields:
                if row[name] is not None:
                    versions.add(key_version_of(bytes(row[name]))[1])
        except DecryptionError:
            into.corrupt.append(int(row["id"]))
            continue
        for version in versions:
            into.values[version] = into.values.get(version, 0) + 1
        oldest = min(versions, default=row["key_version"])
        if oldest != row["key_version"]:
            fixes.append({"b_id": row["id"], "b_old": row["key_version"], "b_new": oldest})
    if fixes:
        guarded = update(raw).where(
            raw.c.id == bindparam("b_id"), raw.c.key_version == bindparam("b_old")
        )
        session.connection().execute(guarded.values(key_version=bindparam("b_new")), fixes)
        into.corrected += len(fixes)
    into.rows += len(rows)
    return int(rows[-1]["id"]) if rows else after_id


def verify_all(
    batch_size: int = DEFAULT_BATCH, on_batch: Callable[[int], None] | None = None
) -> Verification:
    """Check every row, one committed transaction per batch (read-mostly, safe to interrupt)."""
    result = Verification()
    after = 0
    while True:
        before = result.rows
        with db.transaction() as session:
            after = verify_batch(session, after, batch_size, result)
        if result.rows == before:
            break
        if on_batch is not None:
            on_batch(result.rows - before)
    if result.corrected:
        with db.transaction() as session:
            auth_service.audit(
                session,
                None,
                "keys.verify",
                None,
                None,
                {"corrected": result.corrected},
                actor="cli",
            )
    return result
