"""A small demo shop (300 customers, seed 7) in a fresh database, and ways to look at it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from patronage import db
from patronage.demo import service
from patronage.demo.generator import TABLES, Plan
from patronage.demo.loadmode import tables

SMALL = Plan(customers=300, seed=7)
KEYED = {"email_bidx", "phone_bidx"}  # blind indexes depend on the run's key, not the seed


@pytest.fixture
def shop(database: str) -> Iterator[service.DemoResult]:
    yield service.run(SMALL)


def checksums() -> dict[str, str]:
    """Per table: a digest of every row as the application reads it (decrypted, parsed)."""
    digests = {}
    with db.transaction() as session:
        for table in tables(TABLES):
            columns = [c for c in table.columns if c.name not in KEYED]
            digest = hashlib.sha256()
            for row in session.execute(select(*columns).order_by(table.c.id)):
                digest.update(repr([_plain(v) for v in row]).encode())
            digests[table.name] = digest.hexdigest()[:16]
    return digests


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def counts() -> dict[str, int]:
    from sqlalchemy import func

    with db.transaction() as session:
        return {
            t.name: int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in tables(TABLES)
        }
