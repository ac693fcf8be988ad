"""CLV models: fit time and parameters on CDNOW next to lifetimes 0.11.3, then scoring speed.

    .venv/bin/python benchmarks/clv_fit.py [--runs 21] [--customers 10000000]
        [--reference-python PATH]   (or PATRONAGE_LIFETIMES_PYTHON)

Part 1 fits BG/NBD (cdnow_customers_summary.csv) and Gamma-Gamma (repeat customers of
cdnow_customers_summary_with_transactions.csv) N times and reports the median fit times and the
parameters, and does the same with lifetimes 0.11.3 in the same run. lifetimes is not a
dependency of patronage: it runs as a subprocess with the Python of a throwaway venv:

    python3 -m venv /tmp/lifetimes-venv
    /tmp/lifetimes-venv/bin/pip install lifetimes==0.11.3 "pandas<2" "numpy<1.25" \
        "scipy<1.12" autograd

Without it the reference is reported as missing (and said so on stderr); nothing else changes.
Part 2 scores synthetic customers (CDNOW-like histories, ages in whole days) chunk by chunk and
reports customers per second for P(alive), expected purchases, CLV and the whole scoring call.
Prints one JSON line; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from patronage.analytics.clv import BetaGeoFitter, GammaGammaFitter, score_customers

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "cdnow"
SUMMARY = DATA / "cdnow_customers_summary.csv"
WITH_SPEND = DATA / "cdnow_customers_summary_with_transactions.csv"
DEFAULT_REFERENCE = Path("/tmp/lifetimes-venv/bin/python")  # noqa: S108 (a documented default)

REFERENCE_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import lifetimes
from lifetimes import BetaGeoFitter, GammaGammaFitter
runs, summary, with_spend = int(sys.argv[1]), sys.argv[2], sys.argv[3]
d = pd.read_csv(summary)
w = pd.read_csv(with_spend)
r = w[w["x"] > 0]
bg, gg = [], []
for _ in range(runs):
    t = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(d["frequency"], d["recency"], d["T"])
    bg.append(time.perf_counter() - t)
    t = time.perf_counter()
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(r["x"], r["zbar"])
    gg.append(time.perf_counter() - t)
print(json.dumps({
    "version": lifetimes.__version__,
    "bgnbd_fit_s": bg,
    "gamma_gamma_fit_s": gg,
    "bgnbd_params": {k: float(v) for k, v in bgf.params_.items()},
    "gamma_gamma_params": {("gamma" if k == "v" else k): float(v) for k, v in ggf.params_.items()},
}))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_csv(path: Path) -> dict[str, np.ndarray]:
    table = np.genfromtxt(path, delimiter=",", names=True)
    names = table.dtype.names or ()
    return {name: np.asarray(table[name], dtype=np.float64) for name in names}


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def fit_ours(runs: int) -> dict[str, Any]:
    d, w = read_csv(SUMMARY), read_csv(WITH_SPEND)
    bg_times, gg_times = [], []
    for _ in range(runs):
        start = time.perf_counter()
        bgf = BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"])
        bg_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        ggf = GammaGammaFitter().fit(w["x"], w["zbar"])
        gg_times.append(time.perf_counter() - start)
    if not (bgf.converged_ and ggf.converged_):
        raise SystemExit(f"fit did not converge: {bgf.message_} / {ggf.message_}")
    return {
        "bgnbd_fit_ms": median_ms(bg_times),
        "gamma_gamma_fit_ms": median_ms(gg_times),
        "total_fit_ms": median_ms([a + b for a, b in zip(bg_times, gg_times, strict=True)]),
        "bgnbd_params": bgf.params_,
        "bgnbd_log_likelihood": round(bgf.log_likelihood_, 4),
        "gamma_gamma_params": ggf.params_,
        "gamma_gamma_excluded": ggf.n_excluded_,
        "models": (bgf, ggf),
    }


def fit_reference(python: Path | None, runs: int, single_thread: bool) -> dict[str, Any]:
    if python is None or not python.exists():
        where = python or "(none given)"
        log(
            f"REFERENCE MISSING: no lifetimes 0.11.3 Python at {where}. Create it with\n"
            "  python3 -m venv /tmp/lifetimes-venv && /tmp/lifetimes-venv/bin/pip install"
            ' lifetimes==0.11.3 "pandas<2" "numpy<1.25" "scipy<1.12" autograd\n'
            "and pass --reference-python or PATRONAGE_LIFETIMES_PYTHON."
        )
        return {"available": False, "reason": f"no lifetimes Python at {where}"}
    env = dict(os.environ)
    if single_thread:
        env["OPENBLAS_NUM_THREADS"] = "1"
    done = subprocess.run(
        [str(python), "-c", REFERENCE_SCRIPT, str(runs), str(SUMMARY), str(WITH_SPEND)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        log(f"REFERENCE FAILED (exit {done.returncode}):\n{done.stderr[-2000:]}")
        return {"available": False, "reason": f"lifetimes run failed (exit {done.returncode})"}
    data = json.loads(done.stdout.strip().splitlines()[-1])
    bg, gg = data["bgnbd_fit_s"], data["gamma_gamma_fit_s"]
    return {
        "available": True,
        "lifetimes_version": data["version"],
        "openblas_threads": "1"
        if single_thread
        else os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "bgnbd_fit_ms": median_ms(bg),
        "gamma_gamma_fit_ms": median_ms(gg),
        "total_fit_ms": median_ms([a + b for a, b in zip(bg, gg, strict=True)]),
        "bgnbd_params": data["bgnbd_params"],
        "gamma_gamma_params": data["gamma_gamma_params"],
    }


def compare(ours: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    if not reference.get("available"):
        return {}
    diffs, same = {}, True
    for model in ("bgnbd_params", "gamma_gamma_params"):
        for name, value in ours[model].items():
            theirs = reference[model][name]
            diffs[name] = abs(value - theirs)
            same &= round(value, 3) == round(theirs, 3)
    return {
        "speedup": round(reference["total_fit_ms"] / ours["total_fit_ms"], 1),
        "params_equal_to_3_decimals": same,
        "max_abs_param_diff": float(f"{max(diffs.values()):.3g}"),
    }


def synthetic_chunk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """CDNOW-like histories: ages in whole days up to two years, gamma-poisson purchase counts."""
    age_days = rng.integers(0, 731, n)
    rate = rng.gamma(0.25, 1 / 4.4, n)  # weekly purchase rate, CDNOW-like heterogeneity
    frequency = np.minimum(rng.poisson(rate * age_days / 7 * 0.6), np.maximum(age_days, 0))
    last_day = np.where(frequency > 0, rng.integers(0, 1 << 30, n) % np.maximum(age_days, 1) + 1, 0)
    recency = np.minimum(last_day, age_days) / 7
    spend = np.where(frequency > 0, rng.gamma(6.25, 35.0 / 6.25, n), 0.0)
    return frequency.astype(np.float64), recency, age_days / 7, spend


def score(
    models: tuple[BetaGeoFitter, GammaGammaFitter], customers: int, chunk: int
) -> dict[str, Any]:
    bgf, ggf = models
    rng = np.random.default_rng(20050101)
    timings = {"p_alive": 0.0, "expected_purchases": 0.0, "clv": 0.0, "score_customers": 0.0}
    checksum = 0.0
    done = 0
    while done < customers:
        n = min(chunk, customers - done)
        x, tx, T, m = synthetic_chunk(rng, n)
        start = time.perf_counter()
        alive = bgf.conditional_probability_alive(x, tx, T)
        timings["p_alive"] += time.perf_counter() - start
        start = time.perf_counter()
        purchases = bgf.conditional_expected_number_of_purchases_up_to_time(52, x, tx, T)
        timings["expected_purchases"] += time.perf_counter() - start
        start = time.perf_counter()
        clv = ggf.customer_lifetime_value(bgf, x, tx, T, m, time=12, discount_rate=0.01, freq="W")
        timings["clv"] += time.perf_counter() - start
        start = time.perf_counter()
        scores = score_customers(bgf, ggf, x, tx, T, m, horizon=52, clv_months=12, chunk_size=n)
        timings["score_customers"] += time.perf_counter() - start
        if scores.counts():
            raise SystemExit(f"synthetic customers could not be scored: {scores.counts()}")
        checksum += float(alive.sum() + purchases.sum() + clv.sum())
        done += n
        log(f"scored {done:,}/{customers:,} customers")
    return {
        "customers": customers,
        "chunk_size": chunk,
        "customers_per_s": {k: round(customers / v) for k, v in timings.items()},
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "checksum": round(checksum, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--chunk-size", type=int, default=1_000_000)
    parser.add_argument(
        "--reference-python",
        type=Path,
        default=Path(os.environ["PATRONAGE_LIFETIMES_PYTHON"])
        if os.environ.get("PATRONAGE_LIFETIMES_PYTHON")
        else DEFAULT_REFERENCE,
    )
    args = parser.parse_args()

    log(f"fitting on CDNOW, {args.runs} runs (patronage)")
    ours = fit_ours(args.runs)
    log(f"fitting on CDNOW, {args.runs} runs (lifetimes 0.11.3, {args.reference_python})")
    reference = fit_reference(args.reference_python, args.runs, single_thread=False)
    reference_1t = (
        fit_reference(args.reference_python, args.runs, single_thread=True)
        if reference.get("available")
        else reference
    )
    models = ours.pop("models")
    log(f"scoring {args.customers:,} synthetic customers in chunks of {args.chunk_size:,}")
    scoring = score(models, args.customers, args.chunk_size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "benchmark": "clv_fit",
        "cdnow_fit": {
            "runs": args.runs,
            "patronage": ours,
            "lifetimes": reference,
            "lifetimes_single_thread_blas": reference_1t,
            **compare(ours, reference),
            "speedup_vs_single_thread_lifetimes": compare(ours, reference_1t).get("speedup"),
            "published": {
                "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "ll": -9582.4},
                "gamma_gamma": {"p": 6.25, "q": 3.74, "gamma": 15.44},
            },
        },
        "scoring": scoring,
        "peak_rss_mb": round(peak, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
