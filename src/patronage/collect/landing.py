"""A validated message as the landing table keeps it (JSON text), and back.

The request validates and normalises (clock skew corrected, ids checked); the processor
works on exactly that, without validating again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pydantic_core

from patronage.collect.validate import Incoming


def encode(m: Incoming) -> str:
    payload: dict[str, Any] = {"t": m.type, "ts": m.timestamp}
    optional = (
        ("n", m.name), ("u", m.user_id), ("a", m.anonymous_id), ("sa", m.sent_at),
        ("p", m.properties), ("c", m.context), ("tr", m.traits), ("pv", m.previous_id),
        ("g", m.group_id),
    )  # fmt: skip
    for key, value in optional:
        if value is not None and value != {}:
            payload[key] = value
    return pydantic_core.to_json(payload).decode()


def decode(message_id: str, received_at: datetime, payload: str) -> Incoming:
    d = pydantic_core.from_json(payload)
    sent_at = d.get("sa")
    return Incoming(
        index=0,
        message_id=message_id,
        type=d["t"],
        name=d.get("n"),
        user_id=d.get("u"),
        anonymous_id=d.get("a"),
        timestamp=datetime.fromisoformat(d["ts"]),
        sent_at=datetime.fromisoformat(sent_at) if sent_at else None,
        properties=d.get("p", {}),
        context=d.get("c", {}),
        traits=d.get("tr", {}),
        previous_id=d.get("pv"),
        group_id=d.get("g"),
        received_at=received_at,
    )
