"""Events (one row per Segment message) through the tracking pipeline itself.

Each row becomes a message (`type` defaults to track; `properties.*` columns become its
properties) and goes through the same validation, identity resolution, consent and
e-commerce mapping as `/v1/batch`. Without a `message_id` column the id is a digest of the
row, so re-importing the same file stores nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

# the service first: importing collect.ingest on its own meets a cycle through customers
from patronage.collect import service as collect_service  # noqa: F401
from patronage.collect.importing.checks import Checker
from patronage.collect.importing.readers import Rejection
from patronage.collect.ingest import SourceRef, ingest
from patronage.collect.validate import validate_messages
from patronage.kit.clock import utcnow

CHUNK = 500


def check(c: Checker) -> list[dict[str, Any]]:
    fields = {
        "messageId": c.text("message_id", 128),
        "type": c.text("type", 16),
        "event": c.text("event", 255),
        "name": c.text("name", 255),
        "userId": c.text("user_id", 255),
        "anonymousId": c.text("anonymous_id", 255),
    }
    stamp = c.moment("timestamp", required=True)
    assert stamp is not None
    props = {
        n.removeprefix("properties."): c.text(n, 10_000)
        for n in [*c.mapping.fields, *c.mapping.constants]
        if n.startswith("properties.")
    }
    lists = {k: (v.to_pylist() if v is not None else None) for k, v in fields.items()}
    prop_lists = {k: v.to_pylist() for k, v in props.items() if v is not None}
    messages: list[dict[str, Any]] = []
    rows = c.frame.row_numbers.tolist()
    stamps = np.datetime_as_string(stamp, unit="ms").tolist()
    kept: list[int] = []
    for i in range(c.rows):
        if c.bad[i]:
            continue
        message: dict[str, Any] = {"type": "track", "timestamp": stamps[i] + "Z"}
        for key, values in lists.items():
            if values is not None and values[i] is not None:
                message[key] = values[i]
        message["properties"] = {k: v[i] for k, v in prop_lists.items() if v[i] is not None}
        if "messageId" not in message:
            digest = hashlib.sha256(json.dumps(message, sort_keys=True).encode()).hexdigest()[:40]
            message["messageId"] = f"import-{digest}"
        messages.append(message)
        kept.append(rows[i])
    _, refusals = validate_messages(messages, {}, utcnow(), None)
    if refusals:
        drop = set()
        for r in refusals:
            c.rejected.append(Rejection(kept[r.index], "", _reason(r.reason)))
            drop.add(r.index)
        messages = [m for j, m in enumerate(messages) if j not in drop]
        bad_rows = {kept[j] for j in drop}
        c.bad |= np.isin(c.frame.row_numbers, list(bad_rows))
    return messages


def _reason(reason: str) -> str:
    # the pipeline's reasons name fields and limits, not values; keep them short anyway
    return reason[:200]


def write(
    session: Session, messages: list[dict[str, Any]], progress: Callable[[int], None]
) -> dict[str, int]:
    counts = {"events_stored": 0, "events_duplicates": 0}
    for start in range(0, len(messages), CHUNK):
        received = utcnow()
        accepted, _ = validate_messages(messages[start : start + CHUNK], {}, received, None)
        result = ingest(session, SourceRef(None, "import"), accepted, received)
        counts["events_stored"] += result.stored
        counts["events_duplicates"] += result.duplicates
        progress(min(start + CHUNK, len(messages)))
    return counts
