"""CLV and churn scores per customer, from the CLV models (analytics/clv), with reasons.

The models are fitted on the shop's counted orders (features.transactions) in weeks,
calibration end = now. A customer who cannot be scored gets no number and a sentence saying
why; the numbers of a scored customer come with a sentence explaining their P(alive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
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


@dataclass
class ScoreRun:
    rows: dict[int, dict[str, Any]]
    model: dict[str, Any] = field(default_factory=dict)


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
    rows: dict[int, dict[str, Any]] = {}
    model: dict[str, Any] = {"clv_months": CLV_MONTHS, "discount_rate": discount_rate}
    model["margin"] = margin
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
        now_day = np.datetime64(utc_naive(now).date(), "D")
        for i, cid in enumerate(summary.customer_ids.tolist()):
            x = int(summary.frequency[i])
            span = float(summary.recency[i]) * WEEK_DAYS
            recency = int((now_day - summary.first_purchase[i]).astype(int)) - round(span)
            values = {
                "p_alive": first.p_alive[i],
                "churn_risk": first.churn_risk[i],
                "expected_purchases_90d": first.expected_purchases[i],
                "expected_purchases_365d": second.expected_purchases[i],
                "expected_spend_minor": first.expected_spend[i],
                "clv_minor": first.clv[i],
            }
            row: dict[str, Any] = {k: _finite(v) for k, v in values.items()}
            problems = [code for code, mask in first.problems.items() if mask[i]]
            notes = [why.get(code, MESSAGES[code]) for code in problems]
            if row["p_alive"] is not None:
                sentence = reason_sentence(row["p_alive"], x + 1, recency, span)
                if notes:
                    sentence += ". Not computed: " + "; ".join(notes)
            else:
                sentence = "Not scored: " + "; ".join(notes)
            row["reason"] = sentence
            row["problems"] = problems
            rows[int(cid)] = row
    for cid in customer_ids:
        if cid not in rows:
            rows[cid] = {
                "p_alive": None,
                "churn_risk": None,
                "expected_purchases_90d": None,
                "expected_purchases_365d": None,
                "expected_spend_minor": None,
                "clv_minor": None,
                "reason": "no orders up to now: nothing to score yet",
                "problems": ["no_orders"],
            }
    return ScoreRun(rows=rows, model=model)


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
