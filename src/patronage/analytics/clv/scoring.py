"""Score every customer: P(alive), churn risk, expected purchases, expected spend, CLV.

Unlike the estimators' methods, which refuse bad input outright, scoring a whole shop keeps
going: a row that cannot be scored gets no number (NaN inside, None in `to_records`) and a
reason code saying why, and every other row is still computed. Work is done in chunks so
memory stays proportional to the chunk, not to the shop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from patronage.analytics.clv import bgnbd
from patronage.analytics.clv._checks import (
    REASONS,
    ArrayLike,
    BoolArray,
    FloatArray,
    ModelNotReady,
    as_array,
    rfm_problems,
    same_length,
)
from patronage.analytics.clv.bgnbd import BetaGeoFitter
from patronage.analytics.clv.gamma_gamma import GammaGammaFitter, check_clv_terms
from patronage.errors import ValidationFailed

OUTPUTS = ("p_alive", "churn_risk", "expected_purchases", "expected_spend", "clv")
_PURCHASES = ("p_alive", "churn_risk", "expected_purchases", "clv")
_SPEND = ("expected_spend", "clv")

MESSAGES: dict[str, str] = {
    **REASONS,
    "purchase_model_not_ready": "the BG/NBD purchase model is not fitted or did not converge",
    "spend_model_not_ready": "the Gamma-Gamma spend model is not fitted or did not converge",
    "no_spend_given": "no mean repeat spend was given",
    "non_positive_monetary_value": "repeat purchases with a zero, negative or missing mean spend",
    "no_population_mean": "spend model has no population mean (q <= 1) for this little history",
    "numerical_failure": "the formulas overflowed or lost all precision for this history",
}


@dataclass
class CLVScores:
    """Per-customer outputs; `problems[code]` marks the rows a reason code applies to."""

    p_alive: FloatArray
    churn_risk: FloatArray
    expected_purchases: FloatArray
    expected_spend: FloatArray
    clv: FloatArray
    horizon: float
    clv_months: int
    problems: dict[str, BoolArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.p_alive)

    def counts(self) -> dict[str, int]:
        """How many customers each reason applies to: the 'what could not be computed'."""
        return {code: int(mask.sum()) for code, mask in self.problems.items()}

    def reasons(self, i: int) -> list[str]:
        return [MESSAGES[code] for code, mask in self.problems.items() if mask[i]]

    def to_records(self) -> Iterator[dict[str, Any]]:
        """Plain rows for display: a value not computed is None, never NaN."""
        columns = {name: getattr(self, name) for name in OUTPUTS}
        for i in range(len(self)):
            row: dict[str, Any] = {
                name: (float(v[i]) if np.isfinite(v[i]) else None) for name, v in columns.items()
            }
            row["problems"] = [code for code, mask in self.problems.items() if mask[i]]
            yield row


def _ready(model: BetaGeoFitter | GammaGammaFitter | None) -> bool:
    if model is None:
        return False
    try:
        model._param_array()
    except ModelNotReady:
        return False
    return True


def score_customers(
    purchase_model: BetaGeoFitter,
    spend_model: GammaGammaFitter | None,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike | None = None,
    *,
    horizon: float,
    clv_months: int = 12,
    discount_rate: float = 0.01,
    freq: str = "W",
    margin: float = 1.0,
    chunk_size: int = 1_000_000,
) -> CLVScores:
    """Score customers given their (frequency, recency, T) in the model's time unit.

    `horizon` is the window for expected purchases (same unit); CLV covers `clv_months`
    months with a monthly `discount_rate` and a profit `margin` on spend (see
    GammaGammaFitter.customer_lifetime_value). Churn risk is 1 - P(alive).
    """
    check_clv_terms(clv_months, discount_rate, freq, margin)
    if not (np.isfinite(horizon) and horizon >= 0):
        raise ValidationFailed("horizon must be a finite, non-negative duration")
    x = as_array("frequency", frequency)
    tx = as_array("recency", recency)
    t = as_array("T", T)
    m = as_array("monetary_value", monetary_value) if monetary_value is not None else None
    n = same_length(
        frequency=x, recency=tx, T=t, **({"monetary_value": m} if m is not None else {})
    )

    out = {name: np.full(n, np.nan) for name in OUTPUTS}
    problems = rfm_problems(x, tx, t)
    invalid = np.zeros(n, dtype=bool)
    for mask in problems.values():
        invalid |= mask
    spend_blocked = np.zeros(n, dtype=bool)

    purchases_ok = _ready(purchase_model)
    if not purchases_ok:
        problems["purchase_model_not_ready"] = ~invalid
    spend_ok = _ready(spend_model)
    if not spend_ok:
        problems["spend_model_not_ready"] = ~invalid
        spend_blocked[:] = True
    elif m is None:
        problems["no_spend_given"] = ~invalid
        spend_blocked[:] = True
    else:
        assert spend_model is not None
        p, q, _ = spend_model._param_array()
        bad_spend = ~invalid & (x > 0) & ~(np.isfinite(m) & (m > 0))
        no_mean = ~invalid & ~bad_spend & (q <= 1.0) & (p * x + q <= 1.0)
        for code, mask in (
            ("non_positive_monetary_value", bad_spend),
            ("no_population_mean", no_mean),
        ):
            if mask.any():
                problems[code] = mask
                spend_blocked |= mask

    bg = purchase_model._param_array() if purchases_ok else None
    for lo in range(0, n, max(1, chunk_size)):
        sl = slice(lo, min(n, lo + chunk_size))
        ok = ~invalid[sl]
        if not ok.any():
            continue
        # boolean selection copies; skip it for the usual chunk where every row is valid
        pick: slice | BoolArray = slice(None) if ok.all() else ok
        cx, ctx, ct = x[sl][pick], tx[sl][pick], t[sl][pick]
        groups = bgnbd.group_histories(cx, ct)
        alive = None
        if bg is not None:
            odds = bgnbd.grouped_log_alive_odds(bg, cx, ctx, groups)
            alive = expit(-odds)
            out["p_alive"][sl][pick] = alive
            out["churn_risk"][sl][pick] = expit(odds)
            out["expected_purchases"][sl][pick] = bgnbd.expected_purchases(
                bg, cx, ctx, ct, np.full(1, float(horizon)), groups, alive
            )
        if spend_ok and m is not None:
            assert spend_model is not None
            cm = m[sl][pick]
            spendable = ~spend_blocked[sl][pick]
            every = bool(spendable.all())
            spend = np.full(len(cx), np.nan)
            spend[spendable] = spend_model.conditional_expected_average_profit(
                cx[spendable], cm[spendable]
            )
            out["expected_spend"][sl][pick] = spend
            if bg is not None and spendable.any():
                purchases = bgnbd.discounted_purchases(
                    bg,
                    cx if every else cx[spendable],
                    ctx if every else ctx[spendable],
                    ct if every else ct[spendable],
                    months=clv_months,
                    discount_rate=discount_rate,
                    freq=freq,
                    groups=groups if every else None,
                    alive=alive if every else None,
                )
                value = np.full(len(cx), np.nan)
                value[spendable] = margin * spend[spendable] * purchases
                out["clv"][sl][pick] = value

    # a numerical failure must not pass as a number: mark it and keep it NaN
    for name in OUTPUTS:
        expected = ~invalid & ~(spend_blocked if name in _SPEND else False)
        if name in _PURCHASES and not purchases_ok:
            expected &= False
        broken = expected & ~np.isfinite(out[name])
        if broken.any():
            problems.setdefault("numerical_failure", np.zeros(n, dtype=bool))
            problems["numerical_failure"] |= broken
    return CLVScores(
        p_alive=out["p_alive"],
        churn_risk=out["churn_risk"],
        expected_purchases=out["expected_purchases"],
        expected_spend=out["expected_spend"],
        clv=out["clv"],
        horizon=float(horizon),
        clv_months=clv_months,
        problems=problems,
    )
