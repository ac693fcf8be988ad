"""Where the tracking API lands messages, and a validated message as it is kept there.

PostgreSQL: the `event_landing` table of the database; requests land in their own rows and
the processor takes them in its transaction. SQLite: the same table in a file of its own next
to the database (`<name>.landing.db`, created on first use): SQLite has one writer per file,
and a request must never queue behind the processor's transactions on the main file.

The payload: the request validates and normalises (clock skew corrected, ids checked); the processor
works on exactly that, without validating again. The JSON is sealed with the field cipher
(AES-GCM, base64 text): personal data waits there before the processor moves it into the
profile's encrypted fields, and the bytes of a deleted row stay in the database file.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pydantic_core
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from patronage import db
from patronage.collect.models import LandedMessage
from patronage.collect.validate import Incoming
from patronage.config import get_cipher, get_settings

_CONTEXT = "event_landing.payload"
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
        table = LandedMessage.metadata.tables[LandedMessage.__tablename__]
        try:
            table.create(engine, checkfirst=True)
        except OperationalError:  # another process created it at the same moment
            if not inspect(engine).has_table(table.name):
                raise
        _created.add(landing_url)
    return engine


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


def encode(m: Incoming) -> str:
    # every key, even when empty: one dict literal is cheaper than leaving keys out
    payload = {
        "t": m.type, "ts": m.timestamp, "n": m.name, "u": m.user_id, "a": m.anonymous_id,
        "sa": m.sent_at, "p": m.properties, "c": m.context, "tr": m.traits,
        "pv": m.previous_id, "g": m.group_id,
    }  # fmt: skip
    sealed = get_cipher().encrypt(pydantic_core.to_json(payload).decode(), _CONTEXT)
    assert sealed is not None
    return base64.b64encode(sealed).decode()


def decode(message_id: str, received_at: datetime, payload: str) -> Incoming:
    d = pydantic_core.from_json(get_cipher().decrypt(base64.b64decode(payload), _CONTEXT) or "")
    sent_at = d["sa"]
    return Incoming(
        index=0,
        message_id=message_id,
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
