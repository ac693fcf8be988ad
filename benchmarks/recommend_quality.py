"""Recommendation quality: NDCG@10 and recall@10 of each patronage model next to the baselines.

    .venv/bin/python benchmarks/recommend_quality.py [--seed 0] [--customers 50000]
        [--products 5000] [--lines 500000] [--test-days 30] [--skip-synthetic]

Two data sets, every model and baseline fitted in the same run (patronage.recommend.evaluation):
- groceries (../shared/data/groceries/groceries.csv, real baskets, one basket = one buyer):
  leave one item out of every basket with two or more items;
- a synthetic demo-like shop (patronage.recommend.synthetic, fixed seed): temporal split,
  the last --test-days days are the test set.
Baselines: most popular, implicit's ALS and its BM25 item-kNN. Reports, per data set, NDCG@10
and recall@10 per model, the winner of each, and whether the shipped default is at least as
good as the best baseline on NDCG@10. Prints one JSON line; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from patronage.recommend.evaluation import DEFAULT_MODEL, Report, evaluate
from patronage.recommend.interactions import leave_one_out_split, read_baskets, temporal_split
from patronage.recommend.synthetic import synthetic_purchases

REPO = Path(__file__).resolve().parent.parent
GROCERIES = (REPO / ".." / "shared" / "data" / "groceries" / "groceries.csv").resolve()


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def summary(report: Report, seconds: float) -> dict[str, Any]:
    best_baseline = max(report.baselines, key=lambda b: report.metrics[b]["ndcg@10"])
    return {
        "protocol": report.protocol,
        "users": report.users,
        "items": report.items,
        "ndcg@10": {m: round(v["ndcg@10"], 6) for m, v in report.metrics.items()},
        "recall@10": {m: round(v["recall@10"], 6) for m, v in report.metrics.items()},
        "baselines": list(report.baselines),
        "winner_ndcg@10": report.winners()["ndcg@10"],
        "winner_recall@10": report.winners()["recall@10"],
        "best_baseline_ndcg@10": best_baseline,
        "default": DEFAULT_MODEL,
        "default_at_least_best_baseline": report.beats_baselines(DEFAULT_MODEL, "ndcg@10"),
        "fit_seconds": report.fit_seconds,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--categories", type=int, default=100)
    parser.add_argument("--test-days", type=float, default=30)
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "recommend_quality", "seed": args.seed, "ks": [10]}

    if GROCERIES.is_file():
        say("groceries: leave one item out per basket")
        started = time.perf_counter()
        split = leave_one_out_split(read_baskets(GROCERIES), random_state=args.seed)
        report = evaluate(split, ks=(10,), random_state=args.seed, progress=lambda m: say(f"  {m}"))
        result["groceries"] = summary(report, time.perf_counter() - started)
    else:
        say(f"groceries data set not found at {GROCERIES}: skipped")
        result["groceries"] = None

    if not args.skip_synthetic:
        say(f"synthetic: {args.customers:,} customers, {args.lines:,} lines, seed {args.seed}")
        started = time.perf_counter()
        p = synthetic_purchases(
            n_customers=args.customers,
            n_products=args.products,
            n_lines=args.lines,
            n_categories=args.categories,
            seed=args.seed,
        )
        split = temporal_split(p.users, p.items, p.times, p.quantities, test_days=args.test_days)
        report = evaluate(split, ks=(10,), random_state=args.seed, progress=lambda m: say(f"  {m}"))
        result["synthetic"] = summary(report, time.perf_counter() - started)
        result["synthetic"]["shape"] = {
            "customers": args.customers,
            "products": args.products,
            "lines": args.lines,
            "test_days": args.test_days,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
