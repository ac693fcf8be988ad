"""From a transaction log to the (frequency, recency, T, monetary value) the models need.

Conventions of Fader, Hardie & Lee (2005) and lifetimes: purchases on the same calendar day
are one purchase (amounts summed); the first purchase day starts the customer's clock and is
not a repeat; frequency = repeat purchase days up to the calibration end; recency = first to
last purchase day; T = first purchase day to the calibration end; monetary value = mean
amount of the repeat purchase days (0 without repeats). Times are in days divided by the
unit's length (W = 7). Dates are calendar days (aware datetimes are taken in UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt

from patronage.analytics.clv._checks import ArrayLike, FloatArray
from patronage.errors import ValidationFailed

UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0}


@dataclass(frozen=True)
class RFMSummary:
    """One row per customer whose first purchase is on or before the calibration end."""

    customer_ids: npt.NDArray[np.generic]
    first_purchase: npt.NDArray[np.datetime64]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray
    time_unit: str
    calibration_end: np.datetime64
    # filled when an observation end after the calibration end is given
    observation_end: np.datetime64 | None
    frequency_holdout: FloatArray | None
    monetary_value_holdout: FloatArray | None
    duration_holdout: float | None
    # what was left out, and why
    n_customers_after_calibration: int
    n_transactions_after_observation: int

    def __len__(self) -> int:
        return len(self.customer_ids)


def _to_day(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.date()
    return value


def _as_day(name: str, value: date | datetime | np.datetime64 | str) -> np.datetime64:
    try:
        day: np.datetime64 = np.array([_to_day(value)]).astype("datetime64[D]")[0]
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"{name} is not a date") from exc
    if np.isnat(day):
        raise ValidationFailed(f"{name} is not a date")
    return day


def _as_days(dates: ArrayLike) -> npt.NDArray[np.int64]:
    values = np.asarray(dates)
    try:
        if values.dtype == object:
            values = np.array([_to_day(v) for v in values.tolist()], dtype="datetime64[D]")
        days = values.astype("datetime64[D]")
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("dates must be dates or datetimes") from exc
    if np.isnat(days).any():
        raise ValidationFailed(f"{int(np.isnat(days).sum())} transactions have no date")
    return days.astype(np.int64)


def summarize_transactions(
    customer_ids: ArrayLike,
    dates: ArrayLike,
    amounts: ArrayLike | None = None,
    *,
    calibration_end: date | datetime | np.datetime64 | str,
    observation_end: date | datetime | np.datetime64 | str | None = None,
    time_unit: str = "W",
) -> RFMSummary:
    """Summarise a transaction log per customer (vectorised; sorts once).

    Transactions after `observation_end` (orders in the future, for instance) are ignored and
    counted; customers whose first purchase is after `calibration_end` are left out and
    counted. With `observation_end` later than `calibration_end`, the repeat purchase days in
    (calibration_end, observation_end] are counted per customer as the holdout.
    """
    if time_unit not in UNIT_DAYS:
        raise ValidationFailed(f"time_unit must be one of {', '.join(UNIT_DAYS)}")
    unit = UNIT_DAYS[time_unit]
    ids = np.asarray(customer_ids)
    if ids.ndim != 1:
        raise ValidationFailed("customer_ids must be one-dimensional")
    days = _as_days(dates)
    money = np.zeros(len(ids)) if amounts is None else np.asarray(amounts, dtype=np.float64)
    if not (len(ids) == len(days) == len(money)):
        raise ValidationFailed("customer_ids, dates and amounts differ in length")
    if not np.all(np.isfinite(money)):
        raise ValidationFailed(f"{int((~np.isfinite(money)).sum())} amounts are not finite")
    cal_end = _as_day("calibration_end", calibration_end)
    obs_end = _as_day("observation_end", observation_end) if observation_end is not None else None
    if obs_end is not None and obs_end < cal_end:
        raise ValidationFailed("observation_end is before calibration_end")
    last_day = (obs_end if obs_end is not None else cal_end).astype(np.int64)
    cal_day = cal_end.astype(np.int64)

    in_window = days <= last_day
    n_future = int((~in_window).sum())
    ids, days, money = ids[in_window], days[in_window], money[in_window]

    if len(ids) == 0:
        days = np.zeros(1, dtype=np.int64)[:0]
        origin = np.int64(0)
    else:
        origin = days.min()
    unique_ids, codes = np.unique(ids, return_inverse=True)
    # one row per (customer, day), amounts summed: same-day orders are one purchase
    span = np.int64(days.max() - origin + 1) if len(days) else np.int64(1)
    key = codes.astype(np.int64) * span + (days - origin)
    day_keys, day_index = np.unique(key, return_inverse=True)
    day_amount = np.bincount(day_index, weights=money, minlength=len(day_keys))
    day_customer = day_keys // span
    day_of = day_keys % span + origin

    # rows are sorted by customer then day: each customer's first row is the first purchase
    starts = np.flatnonzero(np.r_[True, day_customer[1:] != day_customer[:-1]][: len(day_customer)])
    first_day = day_of[starts]
    owner = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(day_customer)]))
    is_repeat = day_of > first_day[owner]
    in_cal = day_of <= cal_day

    counted = np.bincount(owner, weights=in_cal & is_repeat, minlength=len(starts))
    repeat_spend = np.bincount(
        owner, weights=day_amount * (in_cal & is_repeat), minlength=len(starts)
    )
    last_cal = np.full(len(starts), np.iinfo(np.int64).min)
    np.maximum.at(last_cal, owner[in_cal], day_of[in_cal])

    cohort = first_day <= cal_day
    frequency = counted[cohort]
    recency = (last_cal[cohort] - first_day[cohort]) / unit
    T = (cal_day - first_day[cohort]) / unit
    monetary = np.divide(
        repeat_spend[cohort], frequency, out=np.zeros(int(cohort.sum())), where=frequency > 0
    )
    holdout = hold_money = duration = None
    if obs_end is not None and obs_end > cal_end:
        later = ~in_cal
        holdout = np.bincount(owner, weights=later, minlength=len(starts))[cohort].astype(float)
        spend = np.bincount(owner, weights=day_amount * later, minlength=len(starts))[cohort]
        hold_money = np.divide(spend, holdout, out=np.zeros(len(holdout)), where=holdout > 0)
        duration = float(last_day - cal_day) / unit
    return RFMSummary(
        customer_ids=unique_ids[cohort],
        first_purchase=first_day[cohort].astype("datetime64[D]"),
        frequency=frequency.astype(np.float64),
        recency=recency.astype(np.float64),
        T=T.astype(np.float64),
        monetary_value=monetary,
        time_unit=time_unit,
        calibration_end=cal_end,
        observation_end=obs_end,
        frequency_holdout=holdout,
        monetary_value_holdout=hold_money,
        duration_holdout=duration,
        n_customers_after_calibration=int((~cohort).sum()),
        n_transactions_after_observation=n_future,
    )
