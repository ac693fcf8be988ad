"""BG/NBD: how many purchases a customer will make, and whether they are still a customer.

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2). While alive a customer buys at a Poisson rate
lambda ~ Gamma(r, alpha); after each purchase they drop out with probability p ~ Beta(a, b).
Equation numbers below are the paper's. docs/models/clv.md has the derivations.
"""

from __future__ import annotations

from typing import NamedTuple, Self

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln, hyp2f1

from patronage.analytics.clv._base import Estimator
from patronage.analytics.clv._checks import (
    ArrayLike,
    FloatArray,
    as_array,
    broadcast_time,
    checked_rfm,
)
from patronage.analytics.clv._optimize import compress, maximise
from patronage.errors import ValidationFailed

PARAM_NAMES = ("r", "alpha", "a", "b")


def row_log_likelihood(
    params: FloatArray, x: FloatArray, tx: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Eq. 6 in logs, per customer, with its gradient w.r.t. (r, alpha, a, b).

    L = B(a, b+x)/B(a, b) * G(r+x) a^r / G(r) * [(alpha+T)^-(r+x)
        + d(x>0) a/(b+x-1) (alpha+t_x)^-(r+x)]; the bracket is summed with logaddexp.
    """
    r, alpha, a, b = params
    repeat = x > 0
    xs = np.where(repeat, x, 1.0)  # keeps b+x-1 > 0 where the second term is absent anyway
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + tx)
    term1 = -(r + x) * log_at
    term2 = np.where(repeat, np.log(a) - np.log(b + xs - 1.0) - (r + x) * log_atx, -np.inf)
    lse = np.logaddexp(term1, term2)
    ll = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        - gammaln(b)
        + gammaln(b + x)
        - gammaln(a + b + x)
        + lse
    )
    w1 = np.exp(term1 - lse)
    w2 = np.exp(term2 - lse)  # 0 where x == 0
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    grad = np.empty((len(x), 4))
    grad[:, 0] = digamma(r + x) - digamma(r) + np.log(alpha) - w1 * log_at - w2 * log_atx
    grad[:, 1] = r / alpha - (r + x) * (w1 / (alpha + T) + w2 / (alpha + tx))
    grad[:, 2] = psi_ab - psi_abx + w2 / a
    grad[:, 3] = psi_ab - digamma(b) + digamma(b + x) - psi_abx - w2 / (b + xs - 1.0)
    return ll, grad


def log_alive_odds(params: FloatArray, x: FloatArray, tx: FloatArray, T: FloatArray) -> FloatArray:
    """log of P(dead)/P(alive): a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x), -inf when x=0."""
    r, alpha, a, b = params
    repeat = x > 0
    xs = np.where(repeat, x, 1.0)
    odds = np.log(a) - np.log(b + xs - 1.0) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
    return np.where(repeat, odds, -np.inf)


def _ridge(a: float) -> float:
    # (a+b+x-1)/(a-1) * [1 - ...] has a removable singularity at a = 1; step just off it
    return a if abs(a - 1.0) > 1e-7 else 1.0 + np.copysign(1e-7, a - 1.0)


def future_factor(params: FloatArray, x: FloatArray, T: FloatArray, t: FloatArray) -> FloatArray:
    """(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)].

    Eq. 10 without its denominator, z = t/(alpha+T+t). Euler's transformation
    2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the product into
    (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): the second upper parameter is a-1 whatever x
    is, so the series stays small where the textbook form overflows for heavy buyers.
    """
    r, alpha, a, b = params
    a = _ridge(float(a))
    z = t / (alpha + T + t)
    c = a + b + x - 1.0
    hyp = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    # the original product is positive; a non-positive value means 2F1 failed: NaN, flagged later
    log_hyp = np.log(np.where(hyp > 0, hyp, np.nan))
    return np.asarray(c / (a - 1.0) * -np.expm1((a - 1.0) * np.log1p(-z) + log_hyp), np.float64)


# months -> model time units, as lifetimes' customer_lifetime_value counts them
PERIODS_PER_MONTH: dict[str, float] = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24.0}


class Groups(NamedTuple):
    """Customers grouped by (x, T): distinct pairs, and which pair each customer has."""

    x: FloatArray
    T: FloatArray
    where: npt.NDArray[np.intp]


def group_histories(x: FloatArray, T: FloatArray) -> Groups:
    """The hypergeometric term depends on x and T only (not on recency), and real shops have
    few distinct pairs (whole purchase counts, ages in whole days): 20k pairs per million
    customers in the benchmark. Computing it once per pair is what makes scoring fast.
    """
    t_values, t_codes = np.unique(T, return_inverse=True)
    key = x.astype(np.int64) * np.int64(len(t_values)) + t_codes
    top = int(key.max()) + 1 if len(key) else 0
    if top <= 4 * len(key) + 1024:  # dense key range: an O(n) relabelling instead of a sort
        present = np.zeros(top, dtype=bool)
        present[key] = True
        keys = np.flatnonzero(present)
        label = np.cumsum(present) - 1
        where = label[key]
    else:
        keys, where = np.unique(key, return_inverse=True)
    n_t = np.int64(len(t_values))
    return Groups((keys // n_t).astype(np.float64), t_values[keys % n_t], where)


def grouped_log_alive_odds(
    params: FloatArray, x: FloatArray, tx: FloatArray, groups: Groups
) -> FloatArray:
    """log_alive_odds with the (x, T) part computed once per group: one log per customer."""
    r, alpha, a, b = params
    ux = groups.x
    per_group = (
        np.log(a) - np.log(b + np.maximum(ux, 1.0) - 1.0) + (r + ux) * np.log(alpha + groups.T)
    )
    odds = per_group[groups.where] - (r + x) * np.log(alpha + tx)
    return np.where(x > 0, odds, -np.inf)


def expected_purchases(
    params: FloatArray,
    x: FloatArray,
    tx: FloatArray,
    T: FloatArray,
    t: FloatArray,
    groups: Groups | None = None,
    alive: FloatArray | None = None,
) -> FloatArray:
    """Eq. 10 for many customers, sharing the 2F1 work between equal (x, T) histories.

    `groups` and `alive` (P(alive)) may be passed in when the caller has them already.
    """
    if t.min() != t.max():  # a horizon per customer: nothing to share
        alive = expit(-log_alive_odds(params, x, tx, T)) if alive is None else alive
        return np.asarray(future_factor(params, x, T, t) * alive, dtype=np.float64)
    groups = groups or group_histories(x, T)
    if alive is None:
        alive = expit(-grouped_log_alive_odds(params, x, tx, groups))
    factor = future_factor(params, groups.x, groups.T, np.full(len(groups.x), t[0]))
    return np.asarray(factor[groups.where] * alive, dtype=np.float64)


def discounted_purchases(
    params: FloatArray,
    x: FloatArray,
    tx: FloatArray,
    T: FloatArray,
    *,
    months: int,
    discount_rate: float,
    freq: str,
    groups: Groups | None = None,
    alive: FloatArray | None = None,
) -> FloatArray:
    """sum_k (E[Y(k m)] - E[Y((k-1) m)]) / (1+d)^k over k = 1..months, m = periods per month.

    The purchases expected in each month, discounted to today: CLV divided by the spend per
    purchase. P(alive) factors out of every term of eq. 10, so the monthly sums are done per
    (x, T) pair and scaled by each customer's P(alive) at the end.
    """
    per_month = PERIODS_PER_MONTH[freq]
    groups = groups or group_histories(x, T)
    if alive is None:
        alive = expit(-grouped_log_alive_odds(params, x, tx, groups))
    steps = np.arange(0, months + 1, dtype=np.float64)
    cumulative = future_factor(
        params, groups.x[:, None], groups.T[:, None], steps[None, :] * per_month
    )
    monthly = np.diff(cumulative, axis=1)
    discount = (1.0 + discount_rate) ** -steps[1:]
    return np.asarray((monthly @ discount)[groups.where] * alive, dtype=np.float64)


class BetaGeoFitter(Estimator):
    """BG/NBD estimator: fit(frequency, recency, T) then predict per customer.

    frequency = repeat purchases (purchase days after the first), recency = time from the first
    to the last purchase, T = time from the first purchase to the end of the period, all in
    the same unit (weeks in the paper). Hyperparameters: `penalizer` adds
    penalizer * sum(params**2) to the mean negative log-likelihood (as lifetimes does),
    `tol` and `max_iter` steer L-BFGS-B. Learned: params_ {r, alpha, a, b}, log_likelihood_
    (unpenalised, summed over customers), converged_, message_, n_iter_, n_customers_.
    """

    MODEL = "BetaGeoFitter"
    LABEL = "BG/NBD"
    PARAM_NAMES = PARAM_NAMES

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Maximum likelihood estimates; `converged_`/`message_` say whether they can be used.

        `weights` counts customers sharing a history; by default identical histories are
        grouped automatically.
        """
        self._check_hyperparameters()
        x, tx, t = checked_rfm(frequency, recency, T, action="fit the BG/NBD model")
        if weights is None:
            (x, tx, t), w = compress(x, tx, t)
        else:
            w = as_array("weights", weights)
            if len(w) != len(x) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValidationFailed("weights must be one non-negative count per customer")
        self.n_customers_ = round(float(w.sum()))
        if not np.any((x > 0) & (w > 0)):
            self._fail("no customer made a repeat purchase, so purchase rates cannot be estimated")
            return self
        result = maximise(
            lambda p: row_log_likelihood(p, x, tx, t),
            w,
            PARAM_NAMES,
            penalizer=self.penalizer,
            tol=self.tol,
            max_iter=int(self.max_iter),
        )
        self._learn(result)
        return self

    def log_likelihood(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """Per-customer log-likelihood under the fitted parameters."""
        params = self._param_array()
        x, tx, t = checked_rfm(frequency, recency, T, action="evaluate the BG/NBD likelihood")
        return row_log_likelihood(params, x, tx, t)[0]

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(alive | x, t_x, T) = 1 / (1 + d(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
        params = self._param_array()
        x, tx, t = checked_rfm(frequency, recency, T, action="compute P(alive)")
        return np.asarray(expit(-log_alive_odds(params, x, tx, t)), dtype=np.float64)

    def churn_risk(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """1 - P(alive): the probability the customer has already dropped out."""
        params = self._param_array()
        x, tx, t = checked_rfm(frequency, recency, T, action="compute churn risk")
        return np.asarray(expit(log_alive_odds(params, x, tx, t)), dtype=np.float64)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Eq. 10: E[Y(t) | x, t_x, T], repeat purchases in the next t time units."""
        params = self._param_array()
        x, tx, age = checked_rfm(frequency, recency, T, action="predict purchases")
        return expected_purchases(params, x, tx, age, broadcast_time("t", t, len(x)))

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> FloatArray:
        """Eq. 9: E[X(t)] for a new customer, the history-free prior expectation."""
        params = self._param_array()
        horizon = as_array("t", t)
        horizon = broadcast_time("t", horizon, len(horizon))
        zeros = np.zeros(len(horizon))
        return future_factor(params, zeros, zeros, horizon)

    def predict(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Alias of conditional_expected_number_of_purchases_up_to_time (lifetimes' name)."""
        return self.conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)
