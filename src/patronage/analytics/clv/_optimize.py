"""Maximum likelihood in log-parameter space with L-BFGS-B and an analytic gradient.

Both models have strictly positive parameters, so optimising their logarithms removes the
constraints; the bounds below only keep a runaway parameter (data that cannot identify it)
from overflowing, and reaching one is reported as non-convergence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from patronage.analytics.clv._blas import single_threaded_blas
from patronage.analytics.clv._checks import FloatArray

LOG_BOUND = 23.0  # e^23 ~ 1e10: far beyond any sensible rate, spend or shape parameter
MAX_LOG_SE = 5.0  # beyond this a "fitted" log-parameter is undetermined by the data

# (per-row log-likelihood, per-row gradient w.r.t. natural parameters) for given parameters
RowLikelihood = Callable[[FloatArray], tuple[FloatArray, FloatArray]]


@dataclass(frozen=True)
class FitResult:
    params: FloatArray
    log_likelihood: float
    converged: bool
    message: str
    n_iter: int


def maximise(
    row_likelihood: RowLikelihood,
    weights: FloatArray,
    names: tuple[str, ...],
    *,
    penalizer: float,
    tol: float,
    max_iter: int,
    start: FloatArray | None = None,
) -> FitResult:
    total = float(weights.sum())

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(theta)
        ll, grad = row_likelihood(params)
        # mean negative log-likelihood keeps the scale independent of the number of customers
        # plain reductions, not BLAS: a threaded BLAS call on a few thousand rows costs more in
        # thread wake-ups than in arithmetic (20x slower fits on a busy 2-core machine)
        value = -float(np.sum(weights * ll)) / total + penalizer * float(np.sum(params * params))
        gradient = -np.sum(weights[:, None] * grad, axis=0) / total * params
        gradient += 2.0 * penalizer * params * params
        if not np.isfinite(value):
            return float("inf"), np.zeros_like(theta)
        return value, gradient

    theta0 = np.zeros(len(names)) if start is None else np.log(start)
    with single_threaded_blas():
        result = minimize(
            objective,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(names),
            options={"maxiter": max_iter, "ftol": tol, "gtol": tol * 10.0, "maxcor": 20},
        )
    theta = np.asarray(result.x, dtype=np.float64)
    params = np.exp(theta)
    value, gradient = objective(theta)
    finite = bool(np.isfinite(value) and np.all(np.isfinite(params)))
    # a line search that cannot improve on a stationary point is a converged fit, not a failure
    stationary = finite and float(np.max(np.abs(gradient))) < 1e-5
    at_bound = [n for n, t in zip(names, theta, strict=True) if abs(t) >= LOG_BOUND - 1e-6]
    flat = _flat_directions(objective, theta, names, total) if finite and not at_bound else []
    converged = finite and (bool(result.success) or stationary) and not at_bound and not flat
    if converged:
        message = "converged"
    elif flat:
        message = (
            f"the data cannot identify {', '.join(flat)}: the likelihood is flat along"
            " them (too few customers, or too few repeat purchases or drop-outs)"
        )
    elif at_bound:
        where = ", ".join(
            f"{n} -> {'0' if t < 0 else 'infinity'}"
            for n, t in zip(names, theta, strict=True)
            if n in at_bound
        )
        message = (
            f"parameters ran off to their limits ({where}): the data cannot identify them"
            " (too few customers, or too few repeat purchases or drop-outs)"
        )
    elif not finite:
        message = "the likelihood became infinite or undefined during the fit"
    elif result.nit >= max_iter:
        message = f"no convergence within max_iter={max_iter} iterations"
    else:
        message = f"optimiser stopped without converging: {result.message}"
    log_likelihood = float(np.sum(weights * row_likelihood(params)[0])) if finite else float("nan")
    return FitResult(
        params=params,
        log_likelihood=log_likelihood,
        converged=converged,
        message=message,
        n_iter=int(result.nit),
    )


def _flat_directions(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    theta: FloatArray,
    names: tuple[str, ...],
    n: float,
) -> list[str]:
    """Parameters the data leave undetermined, from the curvature at the optimum.

    Degenerate data (a handful of customers, nobody dropping out) let the optimiser drift
    towards a boundary where the likelihood barely changes, and it stops there "successfully"
    with absurd values (r = 1e8, a = 3e-8). The Hessian of the mean negative log-likelihood in
    log-parameters exposes that: its inverse over n approximates the variance of each log
    parameter, and a standard error above 5 (a factor e^5 ~ 150 either way) or a curvature
    that is not positive means the estimate carries no information.
    """
    k = len(theta)
    step = 1e-4
    hessian = np.empty((k, k))
    for j in range(k):
        shift = np.zeros(k)
        shift[j] = step
        hessian[:, j] = (objective(theta + shift)[1] - objective(theta - shift)[1]) / (2 * step)
    hessian = (hessian + hessian.T) / 2
    values, vectors = np.linalg.eigh(hessian)
    if not np.all(np.isfinite(values)):
        return list(names)
    weak = values * n < 1.0 / MAX_LOG_SE**2
    # name the parameters that dominate the weakly curved directions
    return sorted(
        {names[int(np.argmax(np.abs(vectors[:, i])))] for i in np.flatnonzero(weak)},
        key=names.index,
    )


def compress(*columns: FloatArray) -> tuple[tuple[FloatArray, ...], FloatArray]:
    """Identical customer histories, once each, with their counts as weights."""
    table = np.column_stack(columns)
    unique, counts = np.unique(table, axis=0, return_counts=True)
    return tuple(unique[:, i].copy() for i in range(unique.shape[1])), counts.astype(np.float64)
