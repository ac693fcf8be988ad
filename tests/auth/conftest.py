"""Fixtures of the auth tests: settings changed for one test and restored after it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

import pytest

from patronage import config


@pytest.fixture
def settings_env(database: str) -> Iterator[Callable[..., None]]:
    """`settings_env(PATRONAGE_X="1")`: set variables and forget the cached settings."""
    saved: dict[str, str | None] = {}

    def apply(**values: str) -> None:
        for name, value in values.items():
            saved.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        config.get_settings.cache_clear()

    yield apply
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    config.get_settings.cache_clear()


def csrf_of(client) -> str:  # type: ignore[no-untyped-def]
    """The signed-in session's CSRF token, as every page carries it."""
    page = client.get("/settings")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "page has no CSRF token"
    return found.group(1)
