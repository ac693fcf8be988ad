"""A validated message as the landing table keeps it, and back.

The request validates and normalises (clock skew corrected, ids checked); the processor
works on exactly that, without validating again. The JSON is sealed with the field cipher
(AES-GCM, base64 text): personal data waits there before the processor moves it into the
profile's encrypted fields, and the bytes of a deleted row stay in the database file.
"""

from __future__ import annotations

import base64
from datetime import datetime

import pydantic_core

from patronage.collect.validate import Incoming
from patronage.config import get_cipher

_CONTEXT = "event_landing.payload"


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
