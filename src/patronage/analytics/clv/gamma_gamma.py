"""Gamma-Gamma: how much a customer spends per purchase, and lifetime value.

Fader & Hardie (2013), "The Gamma-Gamma model of monetary value" (after Colombo & Jiang 1999).
Each purchase's value z ~ Gamma(p, nu) with the customer's nu ~ Gamma(q, gamma); the mean
zbar of x repeat purchases is then Gamma(px, nu x). Fitted on customers with at least one
repeat purchase and a positive mean spend; the others are excluded and counted.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from scipy.special import digamma, gammaln

from patronage.analytics.clv import bgnbd
from patronage.analytics.clv._base import Estimator
from patronage.analytics.clv._checks import (
    ArrayLike,
    FloatArray,
    ModelNotReady,
    as_array,
    checked_rfm,
    same_length,
)
from patronage.analytics.clv._optimize import compress, maximise
from patronage.errors import ValidationFailed

PARAM_NAMES = ("p", "q", "gamma")

EXCLUSIONS: dict[str, str] = {
    "no_repeat_purchases": "no repeat purchase, so no repeat spend to learn from",
    "non_positive_monetary_value": "mean repeat spend is zero or negative",
    "not_finite": "mean repeat spend is missing or not a finite number",
}


def row_log_likelihood(
    params: FloatArray, x: FloatArray, m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """log f(zbar | x) = log G(px+q) - log G(px) - log G(q) + q log g + (px-1) log zbar
    + px log x - (px+q) log(g + x zbar), with its gradient w.r.t. (p, q, gamma)."""
    p, q, g = params
    px = p * x
    log_m, log_x = np.log(m), np.log(x)
    log_gxm = np.log(g + x * m)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1.0) * log_m
        + px * log_x
        - (px + q) * log_gxm
    )
    psi = digamma(px + q)
    grad = np.empty((len(x), 3))
    grad[:, 0] = x * (psi - digamma(px) + log_m + log_x - log_gxm)
    grad[:, 1] = psi - digamma(q) + np.log(g) - log_gxm
    grad[:, 2] = q / g - (px + q) / (g + x * m)
    return ll, grad


class GammaGammaFitter(Estimator):
    """Gamma-Gamma estimator: fit(frequency, monetary_value) on mean repeat spend.

    `monetary_value` is the mean value of a customer's repeat purchases (zbar), in any money
    unit; predictions come back in the same unit. Learned: params_ {p, q, gamma},
    log_likelihood_, converged_, message_, n_iter_, n_customers_ (customers fitted on) and
    n_excluded_ (customers left out, by reason: see EXCLUSIONS).
    """

    MODEL = "GammaGammaFitter"
    LABEL = "Gamma-Gamma"
    PARAM_NAMES = PARAM_NAMES

    n_excluded_: dict[str, int]

    def fit(
        self, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
    ) -> Self:
        self._check_hyperparameters()
        x = as_array("frequency", frequency)
        m = as_array("monetary_value", monetary_value)
        w = np.ones(len(x)) if weights is None else as_array("weights", weights)
        if same_length(frequency=x, monetary_value=m, weights=w) == 0:
            raise ValidationFailed("cannot fit the Gamma-Gamma model: no customers given")
        if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x != np.round(x)):
            raise ValidationFailed("frequency must be whole numbers >= 0")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValidationFailed("weights must be non-negative counts")
        finite = np.isfinite(m)
        masks = {
            "no_repeat_purchases": x == 0,
            "not_finite": (x > 0) & ~finite,
            "non_positive_monetary_value": (x > 0) & finite & (m <= 0),
        }
        self.n_excluded_ = {k: round(float(w[v].sum())) for k, v in masks.items()}
        keep = (x > 0) & finite & (m > 0) & (w > 0)
        self.n_customers_ = round(float(w[keep].sum()))
        if self.n_customers_ < 2:
            self._fail(
                f"{self.n_customers_} customer(s) with a repeat purchase and a positive spend;"
                " at least 2 are needed to estimate spend heterogeneity"
            )
            return self
        if weights is None:
            (x, m), w = compress(x[keep], m[keep])
        else:
            x, m, w = x[keep], m[keep], w[keep]
        # start from the method-of-moments scale so the first step is not absurd for cents
        start = np.array([1.0, 2.0, float(np.average(m, weights=w))])
        result = maximise(
            lambda params: row_log_likelihood(params, x, m),
            w,
            PARAM_NAMES,
            penalizer=self.penalizer,
            tol=self.tol,
            max_iter=int(self.max_iter),
            start=start,
        )
        self._learn(result)
        return self

    def _extra_state(self) -> dict[str, Any]:
        return {"n_excluded": dict(self.n_excluded_)}

    def _load_extra_state(self, fitted: dict[str, Any]) -> None:
        self.n_excluded_ = {str(k): int(v) for k, v in fitted["n_excluded"].items()}

    @property
    def population_mean_(self) -> float | None:
        """E[Z] = p gamma / (q - 1): the spend expected of a customer with no history.

        Undefined (None) when q <= 1: the fitted spend distribution then has no mean.
        """
        p, q, g = self._param_array()
        return float(p * g / (q - 1.0)) if q > 1.0 else None

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """E[Z | x, zbar] = (q-1)/(px+q-1) * p gamma/(q-1) + px/(px+q-1) * zbar.

        A weighted average of the population mean and the customer's own mean spend; with no
        repeat purchase it is the population mean.
        """
        p, q, g = self._param_array()
        x = as_array("frequency", frequency)
        m = as_array("monetary_value", monetary_value)
        same_length(frequency=x, monetary_value=m)
        if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x != np.round(x)):
            raise ValidationFailed("frequency must be whole numbers >= 0")
        bad = (x > 0) & ~(np.isfinite(m) & (m > 0))
        if bad.any():
            raise ValidationFailed(
                f"cannot compute expected spend: {int(bad.sum())} customers with repeat purchases"
                " have a zero, negative or missing mean spend"
            )
        if q <= 1.0:
            if np.any(x == 0) or np.any(p * x + q <= 1.0):
                raise ModelNotReady(
                    "expected spend is undefined for customers with little history: the fitted"
                    f" q = {q:.3g} <= 1 means the spend distribution has no mean"
                )
            return np.asarray(p * (g + x * m) / (p * x + q - 1.0), dtype=np.float64)
        weight = p * x / (p * x + q - 1.0)
        mean = p * g / (q - 1.0)
        return np.asarray((1.0 - weight) * mean + weight * np.where(x > 0, m, 0.0), np.float64)

    def customer_lifetime_value(
        self,
        transaction_model: bgnbd.BetaGeoFitter,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        monetary_value: ArrayLike,
        *,
        time: int = 12,
        discount_rate: float = 0.01,
        freq: str = "W",
        margin: float = 1.0,
    ) -> FloatArray:
        """Discounted value of the next `time` months, as lifetimes defines it.

        CLV = margin * E[Z | x, zbar] * sum_{k=1..time} (E[Y(k m)] - E[Y((k-1) m)]) / (1+d)^k,
        with m the model time units in a month (freq W: 4.345 weeks, D: 30 days, H: 720 hours,
        M: 1) and d the monthly discount rate.
        """
        bg_params = transaction_model._param_array()
        x, tx, t = checked_rfm(frequency, recency, T, action="compute lifetime value")
        check_clv_terms(time, discount_rate, freq, margin)
        spend = self.conditional_expected_average_profit(x, monetary_value)
        purchases = bgnbd.discounted_purchases(
            bg_params, x, tx, t, months=time, discount_rate=discount_rate, freq=freq
        )
        return np.asarray(margin * spend * purchases, dtype=np.float64)


def check_clv_terms(time: int, discount_rate: float, freq: str, margin: float) -> None:
    if not isinstance(time, int | np.integer) or time < 1:
        raise ValidationFailed("time must be a whole number of months >= 1")
    if not (np.isfinite(discount_rate) and discount_rate > -1.0):
        raise ValidationFailed("discount_rate must be a monthly rate > -1")
    if freq not in bgnbd.PERIODS_PER_MONTH:
        raise ValidationFailed(f"freq must be one of {', '.join(bgnbd.PERIODS_PER_MONTH)}")
    if not (np.isfinite(margin) and margin >= 0):
        raise ValidationFailed("margin must be a finite number >= 0")
