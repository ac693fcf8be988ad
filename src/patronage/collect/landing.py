"""Where the tracking API lands messages, and validated messages as they are kept there.

PostgreSQL: the `landed_batches` table of the database; each request lands in a row of its
own and the processor takes them in its transaction. SQLite: the same table in a file of its
own next to the database (`<name>.landing.db`, created on first use): SQLite has one writer
per file, and a request must never queue behind the processor's transactions on the main
file.

The payload: the request validates and normalises (clock skew corrected, ids checked); the
processor works on exactly that, without validating again. The request's accepted messages
are one JSON array, sealed once with the field cipher (AES-GCM, base64 text): personal data
waits there before the processor moves it into the profile's encrypted fields, and the bytes
of a deleted row stay in the database file.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic_core
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from patronage import db
from patronage.collect.models import LandedBatch
from patronage.collect.validate import Incoming
from patronage.config import get_cipher, get_settings

# the sealing context; the name of the table of version 0008, kept: rows carried over from it
# are opened with it
_CONTEXT = "event_landing.payload"
# the digest of a row carried over from version 0008: this prefix and the message's id (its
# payload is one message object, without its id)
CARRIED = "event_landing:"
_created: set[str] = set()


def separate_engine() -> Engine | None:
    """SQLite: the engine of the landing file; None where the landing table is in the
    database itself (PostgreSQL, an in-memory SQLite)."""
    url = make_url(get_settings().resolved_database_url)
    if url.get_backend_name() != "sqlite" or url.database in {None, "", ":memory:"}:
        return None
    path = Path(str(url.database))
    landing_url = f"sqlite:///{path.with_name(path.stem + '.landing.db')}"
    engine = db.engine_for(landing_url)
    if landing_url not in _created:
        table = LandedBatch.metadata.tables[LandedBatch.__tablename__]
        try:
            table.create(engine, checkfirst=True)
        except OperationalError:  # another process created it at the same moment
            if not inspect(engine).has_table(table.name):
                raise
        _carry_over(engine)
        _created.add(landing_url)
    return engine


def _carry_over(engine: Engine) -> None:
    """A landing file of version 0008 (a table of messages): its waiting messages become
    batches of one, in landing order, in the same transaction that drops the old table (the
    database's own table is carried over by migration 0009)."""
    if not inspect(engine).has_table("event_landing"):
        return
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO landed_batches "
                "(digest, source_id, source_name, received_at, messages, done, payload, failed) "
                "SELECT :prefix || message_id, source_id, source_name, received_at, 1, 0, "
                "payload, failed FROM event_landing ORDER BY id"
            ),
            {"prefix": CARRIED},
        )
        conn.execute(text("DROP TABLE event_landing"))


@contextmanager
def store(session: Session) -> Iterator[Session]:
    """The session that holds the landing table: the caller's own (same transaction), or
    one on the landing file, committed when the block ends."""
    engine = separate_engine()
    if engine is None:
        yield session
        return
    with Session(engine, expire_on_commit=False) as own:
        yield own
        own.commit()


def digest(messages: list[Incoming]) -> str:
    """The landing key of a request: its message ids (a retried request lands nothing twice)."""
    return hashlib.sha256("\n".join(m.message_id for m in messages).encode()).hexdigest()


def encode(messages: list[Incoming]) -> str:
    # every key, even when empty: one dict literal is cheaper than leaving keys out
    payload = [
        {
            "i": m.message_id, "t": m.type, "ts": m.timestamp, "n": m.name, "u": m.user_id,
            "a": m.anonymous_id, "sa": m.sent_at, "p": m.properties, "c": m.context,
            "tr": m.traits, "pv": m.previous_id, "g": m.group_id,
        }
        for m in messages
    ]  # fmt: skip
    sealed = get_cipher().encrypt(pydantic_core.to_json(payload).decode(), _CONTEXT)
    assert sealed is not None
    return base64.b64encode(sealed).decode()


def decode(digest: str, received_at: datetime, payload: str) -> list[Incoming]:
    """The messages of a landed row, in the order they came."""
    opened = pydantic_core.from_json(
        get_cipher().decrypt(base64.b64decode(payload), _CONTEXT) or ""
    )
    if isinstance(opened, dict):  # carried over from version 0008: one message
        opened = [{**opened, "i": digest.removeprefix(CARRIED)}]
    return [_incoming(d, received_at) for d in opened]


def _incoming(d: dict[str, Any], received_at: datetime) -> Incoming:
    sent_at = d["sa"]
    return Incoming(
        index=0,
        message_id=d["i"],
        type=d["t"],
        name=d["n"],
        user_id=d["u"],
        anonymous_id=d["a"],
        timestamp=datetime.fromisoformat(d["ts"]),
        sent_at=datetime.fromisoformat(sent_at) if sent_at else None,
        properties=d["p"],
        context=d["c"],
        traits=d["tr"],
        previous_id=d["pv"],
        group_id=d["g"],
        received_at=received_at,
    )
