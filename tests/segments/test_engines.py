"""The `database` engine: the same compiled rules inside PostgreSQL, same members."""

from __future__ import annotations

from typing import Any

import pytest

from patronage import config, db
from patronage.errors import ValidationFailed
from patronage.segments import rules as r
from patronage.segments import service
from patronage.segments.engine import DatabaseEngine
from tests.segments import store
from tests.segments.dataset import NOW, no_segments, percentiles
from tests.segments.test_rules import CASES


def test_rules_run_inside_postgresql_with_the_same_members(
    database: str, backend: str, monkeypatch: Any
) -> None:
    with db.transaction() as s:
        store.load(s)
    with db.transaction() as s:
        if backend == "sqlite":
            with pytest.raises(ValidationFailed):
                DatabaseEngine.from_store(s, [], NOW)
            return
        engine = DatabaseEngine.from_store(s, [], NOW)
        try:
            found = {
                i: set(engine.members(engine.compiler(no_segments, percentiles), r.parse_rule(raw)))
                for i, (raw, _) in enumerate(CASES)
            }
        finally:
            engine.close()
    assert found == {i: expected for i, (_, expected) in enumerate(CASES)}
    # PATRONAGE_ANALYTICS_ENGINE=database chooses it for every evaluation
    monkeypatch.setenv("PATRONAGE_ANALYTICS_ENGINE", "database")
    config.get_settings.cache_clear()
    try:
        with db.transaction() as s:
            rule = {"type": "trait", "field": "country", "op": "eq", "value": "DE"}
            assert service.preview(s, rule, now=NOW).sample == [1, 2]
    finally:
        monkeypatch.delenv("PATRONAGE_ANALYTICS_ENGINE")
        config.get_settings.cache_clear()
