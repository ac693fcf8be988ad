"""Input checks shared by the CLV models: clear messages instead of NaN further down.

The estimators are strict (a bad row is an error, as in scikit-learn); the scoring and
holdout helpers use `rfm_problems` to set bad rows aside with a reason and compute the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from patronage.errors import AppError, ValidationFailed

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ArrayLike = npt.ArrayLike

# Reasons a customer's history cannot be scored; the keys are stable codes for the API.
REASONS: dict[str, str] = {
    "not_finite": "frequency, recency or T is missing or not a finite number",
    "negative_frequency": "frequency is negative",
    "fractional_frequency": "frequency is not a whole number of repeat purchases",
    "negative_recency": "recency is negative",
    "recency_after_T": "recency is greater than T (last purchase after the end of the period)",
    "frequency_without_recency": "repeat purchases recorded but recency is 0",
    "recency_without_frequency": "no repeat purchases but recency is not 0",
}


class ModelNotReady(AppError):
    """The model was not fitted, or its fit did not converge, so it cannot predict."""

    status_code = 409
    code = "model_not_ready"


def as_array(name: str, values: ArrayLike) -> FloatArray:
    """A 1-D float64 array, or a clear error (never a silent broadcast of a 2-D table)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"{name} must be numbers") from exc
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValidationFailed(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def same_length(**arrays: FloatArray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValidationFailed(f"inputs differ in length: {detail}")
    return next(iter(lengths.values()), 0)


def rfm_problems(frequency: FloatArray, recency: FloatArray, T: FloatArray) -> dict[str, BoolArray]:
    """For each reason in REASONS, the rows it applies to (only reasons that occur)."""
    finite = np.isfinite(frequency) & np.isfinite(recency) & np.isfinite(T)
    with np.errstate(invalid="ignore"):
        masks = {
            "not_finite": ~finite,
            "negative_frequency": finite & (frequency < 0),
            "fractional_frequency": finite & (frequency != np.round(frequency)),
            "negative_recency": finite & (recency < 0),
            "recency_after_T": finite & (recency > T),
            "frequency_without_recency": finite & (frequency > 0) & (recency == 0),
            "recency_without_frequency": finite & (frequency == 0) & (recency != 0),
        }
    return {reason: mask for reason, mask in masks.items() if mask.any()}


def describe(problems: dict[str, BoolArray], what: str = "customers") -> str:
    parts = [f"{int(mask.sum())} {what}: {REASONS[reason]}" for reason, mask in problems.items()]
    return "; ".join(parts)


def checked_rfm(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, action: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Arrays for a strict estimator call; raise with every problem counted."""
    x = as_array("frequency", frequency)
    tx = as_array("recency", recency)
    t = as_array("T", T)
    n = same_length(frequency=x, recency=tx, T=t)
    if n == 0:
        raise ValidationFailed(f"cannot {action}: no customers given")
    problems = rfm_problems(x, tx, t)
    if problems:
        raise ValidationFailed(f"cannot {action}: {describe(problems)}")
    return x, tx, t


def broadcast_time(name: str, t: ArrayLike, n: int) -> FloatArray:
    values = as_array(name, t)
    if len(values) not in (1, n):
        raise ValidationFailed(f"{name} must be one number or one per customer")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValidationFailed(f"{name} must be a finite, non-negative duration")
    return np.broadcast_to(values, (n,)) if len(values) == 1 else values


def check_names(data: dict[str, Any], expected: Sequence[str], what: str) -> None:
    missing = [k for k in expected if k not in data]
    if missing:
        raise ValidationFailed(f"{what} is missing {', '.join(missing)}")
