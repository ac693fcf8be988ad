"""The console's navigation: a place for every capability in DESIGN.md.

Sections not built yet are listed (so people see the map) but marked as coming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Section:
    label: str
    href: str
    permission: str
    ready: bool = True


SECTIONS = (
    Section("Dashboard", "/", "dashboard:read"),
    Section("Customers", "/customers", "customers:read"),
    Section("Collect", "/collect", "sources:manage"),
    Section("Import", "/collect/imports", "data:import"),
    Section("Analytics", "/analytics", "dashboard:read"),
    Section("Segments", "/segments", "customers:read"),
    Section("Recommendations", "/recommend", "customers:read"),
    Section("Engage", "/engage", "customers:read", ready=False),
    Section("Support", "/support", "customers:pii", ready=False),
    Section("Sellers", "/sellers", "dashboard:read", ready=False),
    Section("Privacy", "/privacy", "audit:read", ready=False),
    Section("Settings", "/settings", "tokens:own"),
)


def visible_sections(principal: Any) -> list[Section]:
    if principal is None:
        return []
    allowed = {str(p) for p in getattr(principal, "permissions", ())}
    return [s for s in SECTIONS if s.permission in allowed]
