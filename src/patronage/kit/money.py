"""Money is stored as integer minor units (cents) so sums are exact on every database."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal


def to_minor(amount: Decimal | float | int | str) -> int:
    """12.345 -> 1234 (banker's rounding, like most payment processors)."""
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_minor(minor: int | None) -> Decimal:
    """1234 -> Decimal('12.34')."""
    return (Decimal(minor or 0) / 100).quantize(Decimal("0.01"))
