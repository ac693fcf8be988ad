"""Alembic migrations, shipped inside the package so an installed patronage can migrate."""

from __future__ import annotations

import importlib

CAPABILITIES_WITH_TABLES = (
    "auth",
    "customers",
    "sellers",
    "catalog",
    "orders",
    "collect",
    "support",
    "analytics",
    "segments",
    "recommend",
)


def import_models() -> None:
    """Import every capability's models so Base.metadata knows every table."""
    for name in CAPABILITIES_WITH_TABLES:
        importlib.import_module(f"patronage.{name}.models")
