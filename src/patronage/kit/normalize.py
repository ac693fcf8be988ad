"""Canonical forms of identifiers, so blind indexes match however people type them."""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"[^\d+]")


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    """Keep digits and a leading '+': '+44 (20) 7946-0000' -> '+442079460000'."""
    cleaned = _NON_DIGITS.sub("", value.strip())
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    return cleaned[0] + cleaned[1:].replace("+", "") if cleaned else cleaned
