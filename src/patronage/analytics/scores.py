"""CLV and churn scores per customer, from the CLV models (analytics/clv), with reasons.

The models are fitted on the shop's counted orders (features.transactions) in weeks,
calibration end = now. A customer who cannot be scored gets no number and a sentence saying
why; the numbers of a scored customer come with a sentence explaining their P(alive).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from patronage.analytics.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    HoldoutReport,
    calibration_holdout,
    score_customers,
    summarize_transactions,
)
from patronage.analytics.clv.scoring import MESSAGES
from patronage.analytics.features import utc_naive
from patronage.errors import ValidationFailed

WEEK_DAYS = 7.0
HORIZONS_DAYS = (90, 365)
CLV_MONTHS = 12


SCORE_COLUMNS = (
    "p_alive",
    "churn_risk",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_spend_minor",
    "clv_minor",
)


@dataclass
class ScoreRun:
    """Scores per customer as columns, in the order of the ids given to `compute`:
    SCORE_COLUMNS (float or None), `reason` (a sentence) and `problems` (reason codes; the
    lists are read only: customers with the same codes may share one list)."""

    customer_ids: list[int]
    columns: dict[str, list[Any]]
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> dict[int, dict[str, Any]]:
        """One dict per customer (tests, small shops)."""
        names = list(self.columns)
        values = [self.columns[c] for c in names]
        return {
            cid: dict(zip(names, row, strict=True))
            for cid, row in zip(self.customer_ids, zip(*values, strict=True), strict=True)
        }

    def problem_counts(self) -> Counter[str]:
        return Counter(code for codes in self.columns["problems"] for code in codes)


@lru_cache(maxsize=65536)
def humanize_days(days: float) -> str:
    """A duration as people say it: '5 days', '6 weeks', '14 months', '3 years'."""
    days = max(0.0, float(days))
    if days < 14:
        n, unit = round(days), "day"
    elif days < 7 * 9:
        n, unit = round(days / 7), "week"
    elif days < 365.25 * 2:
        n, unit = round(days / 30.4375), "month"
    else:
        n, unit = round(days / 365.25), "year"
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _ago(days: float) -> str:
    return "today" if days < 1 else f"{humanize_days(days)} ago"


def reason_sentence(p_alive: float, orders: int, recency_days: int, span_days: float) -> str:
    """'P(alive) 0.21: last of 7 orders was 14 months ago; typical gap 6 weeks'."""
    head = f"P(alive) {p_alive:.2f}"
    if orders <= 1:
        return (
            f"{head}: one order so far, {_ago(recency_days)}; "
            "a customer is only judged lapsed after a repeat purchase"
        )
    gap = span_days / (orders - 1)
    return (
        f"{head}: last of {orders} orders was {_ago(recency_days)}; "
        f"typical gap {humanize_days(gap)}"
    )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _arrays(tx: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer ids, UTC days, net values) of `features.transactions` rows."""
    ids = np.asarray(tx.column("customer_id").to_numpy(), dtype=np.int64)
    days = np.asarray(tx.column("day").to_numpy(), dtype=np.int64).astype("datetime64[D]")
    return ids, days, np.asarray(tx.column("net_minor").to_numpy(), dtype=np.float64)


def _finite_list(values: npt.NDArray[np.float64]) -> list[float | None]:
    """Floats, None where not finite (a value not computed is never shown as a number)."""
    return pa.array(values, mask=~np.isfinite(values)).to_pylist()  # type: ignore[no-any-return]


def compute(
    tx: pa.Table,
    now: datetime,
    customer_ids: list[int],
    *,
    discount_rate: float = 0.01,
    margin: float = 1.0,
) -> ScoreRun:
    """Scores for every id in `customer_ids` (customers without orders get a reason only).

    `tx`: the counted orders (`features.transactions`), ordered by customer and time.
    """
    ids, days, amounts = _arrays(tx)
    model: dict[str, Any] = {"clv_months": CLV_MONTHS, "discount_rate": discount_rate}
    model["margin"] = margin
    n = len(customer_ids)
    columns: dict[str, list[Any]] = {name: [None] * n for name in SCORE_COLUMNS}
    columns["reason"] = ["no orders up to now: nothing to score yet"] * n
    # one list shared by every customer without orders (read only): a million lists of their
    # own cost seconds, most of them in the garbage collector's passes over the new objects
    no_orders = ["no_orders"]
    columns["problems"] = [no_orders] * n
    if len(ids):
        summary = summarize_transactions(
            ids,
            days,
            amounts,
            calibration_end=np.datetime64(utc_naive(now).date(), "D"),
            time_unit="W",
        )
        bg = BetaGeoFitter().fit(summary.frequency, summary.recency, summary.T)
        gg = GammaGammaFitter()
        spendable = (summary.frequency > 0) & (summary.monetary_value > 0)
        if int(spendable.sum()) >= 2:
            gg.fit(summary.frequency[spendable], summary.monetary_value[spendable])
        model["purchase_model"] = {
            "converged": bool(bg.converged_),
            "message": bg.message_,
            "params": {k: _finite(v) for k, v in bg.params_.items()} if bg.converged_ else None,
        }
        gg_fitted = getattr(gg, "converged_", False)
        model["spend_model"] = {
            "converged": bool(gg_fitted),
            "message": getattr(gg, "message_", "fewer than two customers with repeat spend"),
            "params": {k: _finite(v) for k, v in gg.params_.items()} if gg_fitted else None,
        }
        scored = [
            score_customers(
                bg,
                gg if gg_fitted else None,
                summary.frequency,
                summary.recency,
                summary.T,
                summary.monetary_value,
                horizon=days / WEEK_DAYS,
                clv_months=CLV_MONTHS,
                discount_rate=discount_rate,
                margin=margin,
            )
            for days in HORIZONS_DAYS
        ]
        first, second = scored
        why = {
            "purchase_model_not_ready": f"the purchase model could not be fitted ({bg.message_})",
            "spend_model_not_ready": "the spend model could not be fitted "
            f"({model['spend_model']['message']})",
        }
        values = {
            "p_alive": _finite_list(first.p_alive),
            "churn_risk": _finite_list(first.churn_risk),
            "expected_purchases_90d": _finite_list(first.expected_purchases),
            "expected_purchases_365d": _finite_list(second.expected_purchases),
            "expected_spend_minor": _finite_list(first.expected_spend),
            "clv_minor": _finite_list(first.clv),
        }
        orders = (summary.frequency.astype(np.int64) + 1).tolist()
        spans = (summary.recency * WEEK_DAYS).tolist()
        now_day = np.datetime64(utc_naive(now).date(), "D")
        since_first = (now_day - summary.first_purchase).astype(np.int64)
        recency = (since_first - np.round(summary.recency * WEEK_DAYS).astype(np.int64)).tolist()
        codes = list(first.problems)
        flagged = np.zeros(len(summary), dtype=bool)
        for mask in first.problems.values():
            flagged |= mask
        nothing: list[str] = []  # shared, read only (as no_orders above)
        problems: list[list[str]] = [nothing] * len(summary)
        for i in np.flatnonzero(flagged).tolist():
            problems[i] = [code for code in codes if first.problems[code][i]]
        reasons = []
        for p_alive, count, days_since, span, found in zip(
            values["p_alive"], orders, recency, spans, problems, strict=True
        ):
            notes = [why.get(code, MESSAGES[code]) for code in found] if found else []
            if p_alive is not None:
                sentence = reason_sentence(p_alive, count, days_since, span)
                if notes:
                    sentence += ". Not computed: " + "; ".join(notes)
            else:
                sentence = "Not scored: " + "; ".join(notes)
            reasons.append(sentence)
        # the summary's customers among `customer_ids` (every one of them: counted orders
        # are of live customers, and every live customer has a features row)
        position = {cid: i for i, cid in enumerate(customer_ids)}
        at = [position[cid] for cid in summary.customer_ids.tolist()]
        done: dict[str, list[Any]] = {**values, "reason": reasons, "problems": problems}
        for name, column in done.items():
            target = columns[name]
            for i, value in zip(at, column, strict=True):
                target[i] = value
    return ScoreRun(customer_ids=list(customer_ids), columns=columns, model=model)


def holdout(tx: pa.Table, now: datetime, holdout_days: int) -> HoldoutReport:
    """Fit on orders up to now - holdout_days, predict the repeat purchases since."""
    ids, days, amounts = _arrays(tx)
    if not len(ids):
        raise ValidationFailed("no orders: nothing to validate the model on")
    end = np.datetime64(utc_naive(now).date(), "D")
    return calibration_holdout(
        ids,
        days,
        amounts,
        calibration_end=end - np.timedelta64(holdout_days, "D"),
        observation_end=end,
        time_unit="W",
    )
