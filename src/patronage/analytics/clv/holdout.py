"""Calibration / holdout check: fit on the past, predict a later period, compare.

The test Fader, Hardie & Lee (2005, fig. 4) use: customers grouped by their repeat purchases
in the calibration period (0, 1, ..., 7+), actual against predicted repeat purchases in the
holdout, per group and in total. Feeds `patronage analytics validate`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from patronage.analytics.clv._checks import ArrayLike, rfm_problems
from patronage.analytics.clv.bgnbd import BetaGeoFitter
from patronage.analytics.clv.summary import summarize_transactions
from patronage.errors import ValidationFailed


@dataclass(frozen=True)
class FrequencyBucket:
    label: str  # "0", "1", ..., "7+"
    customers: int
    actual: int  # repeat purchases in the holdout, summed over the bucket's customers
    predicted: float | None  # None when the model could not be fitted
    actual_mean: float | None  # per customer; None for an empty bucket
    predicted_mean: float | None


@dataclass(frozen=True)
class HoldoutReport:
    calibration_end: date
    observation_end: date
    time_unit: str
    holdout_length: float  # in time units
    customers: int
    converged: bool
    message: str
    params: dict[str, float]
    log_likelihood: float | None
    buckets: list[FrequencyBucket]
    total_actual: int
    total_predicted: float | None
    customers_after_calibration: int  # first purchase after the calibration end: not scored
    transactions_after_observation: int  # dated after the observation end: ignored

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["calibration_end"] = self.calibration_end.isoformat()
        data["observation_end"] = self.observation_end.isoformat()
        return data


def calibration_holdout(
    customer_ids: ArrayLike,
    dates: ArrayLike,
    amounts: ArrayLike | None = None,
    *,
    calibration_end: date | datetime | np.datetime64 | str,
    observation_end: date | datetime | np.datetime64 | str,
    time_unit: str = "W",
    max_bucket: int = 7,
    penalizer: float = 0.0,
) -> HoldoutReport:
    """Fit BG/NBD on transactions up to `calibration_end`, predict up to `observation_end`.

    Every customer whose first purchase is on or before the calibration end is in the report;
    if the model does not converge the actual figures are still given, predictions are None
    and `message` says why.
    """
    if max_bucket < 1:
        raise ValidationFailed("max_bucket must be >= 1")
    summary = summarize_transactions(
        customer_ids,
        dates,
        amounts,
        calibration_end=calibration_end,
        observation_end=observation_end,
        time_unit=time_unit,
    )
    if summary.frequency_holdout is None or summary.duration_holdout is None:
        raise ValidationFailed("observation_end must be after calibration_end")
    if len(summary) == 0:
        raise ValidationFailed("no customer made a first purchase by the calibration end")
    problems = rfm_problems(summary.frequency, summary.recency, summary.T)
    if problems:  # a summary we built ourselves is consistent; this guards the invariant
        raise ValidationFailed("inconsistent summary: " + ", ".join(problems))

    model = BetaGeoFitter(penalizer=penalizer).fit(summary.frequency, summary.recency, summary.T)
    predicted = None
    if model.converged_:
        predicted = model.conditional_expected_number_of_purchases_up_to_time(
            summary.duration_holdout, summary.frequency, summary.recency, summary.T
        )
    actual = summary.frequency_holdout
    bucket = np.minimum(summary.frequency, max_bucket).astype(np.int64)
    buckets = []
    for k in range(max_bucket + 1):
        members = bucket == k
        n = int(members.sum())
        total_pred = None if predicted is None else float(predicted[members].sum())
        buckets.append(
            FrequencyBucket(
                label=f"{k}+" if k == max_bucket else str(k),
                customers=n,
                actual=int(actual[members].sum()),
                predicted=total_pred,
                actual_mean=float(actual[members].mean()) if n else None,
                predicted_mean=(total_pred / n) if (n and total_pred is not None) else None,
            )
        )
    return HoldoutReport(
        calibration_end=summary.calibration_end.astype(date),
        observation_end=(summary.observation_end or summary.calibration_end).astype(date),
        time_unit=time_unit,
        holdout_length=summary.duration_holdout,
        customers=len(summary),
        converged=model.converged_,
        message=model.message_,
        params=dict(model.params_),
        log_likelihood=model.log_likelihood_ if model.converged_ else None,
        buckets=buckets,
        total_actual=int(actual.sum()),
        total_predicted=None if predicted is None else float(predicted.sum()),
        customers_after_calibration=summary.n_customers_after_calibration,
        transactions_after_observation=summary.n_transactions_after_observation,
    )
