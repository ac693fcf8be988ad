"""Shared helpers of the collect tests: sources, write keys, messages."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from typing import Any

from patronage import db


def new_source(name: str = "web shop") -> str:
    from patronage.auth import service as auth_service

    with db.transaction() as s:
        _, key = auth_service.create_source(s, name)
    return key


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def gz(body: Any) -> bytes:
    return gzip.compress(json.dumps(body).encode())


def mid() -> str:
    return str(uuid.uuid4())


def track(event: str, props: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": mid(),
        "event": event,
        "properties": props or {},
        "timestamp": "2026-11-20T10:00:00.000Z",
        **fields,
    }


def wait_processed(timeout: float = 30.0) -> None:
    """Wait for the server's background processor to empty the landing table."""
    import time

    from patronage.collect import service

    deadline = time.monotonic() + timeout
    while True:
        with db.transaction() as s:
            waiting, _ = service.landing_backlog(s)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{waiting} landed messages still waiting after {timeout} s")
        time.sleep(0.05)
