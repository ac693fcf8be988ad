"""Similar-items build on a matrix shaped like the 1M-customer demo, next to implicit's item-kNN.

    .venv/bin/python benchmarks/recommend_build.py [--customers 1000000] [--products 20000]
        [--lines 10000000] [--seed 0] [--threads 2] [--similarity smith_linden ...]
        [--database-url URL]

The matrix is synthetic (`patronage.recommend.synthetic`: Zipf popularity over categories
and products, heavy-tailed customers, fixed seed) or, with --database-url, the order lines
of a demo database (orders x order_items, cancelled orders left out). patronage builds its
top-50 similar-items table for each --similarity (default: all three); in the same run
implicit builds its CosineRecommender and BM25Recommender (K=50) on the same matrix.
Each build reports wall and CPU seconds; the target is <= 30 s wall for the similar-items
build. The load average is reported too: the machine is shared, and wall time under load
is not the build's own. Prints one JSON line; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from patronage.recommend.algorithms.item_to_item import ItemToItem
from patronage.recommend.interactions import build_interactions
from patronage.recommend.synthetic import synthetic_purchases

TARGET_SECONDS = 30.0
SIMILARITIES = ("smith_linden", "cosine", "conditional")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)


def from_database(url: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    query = text(
        "SELECT o.customer_id, oi.product_id, oi.quantity "
        "FROM order_items oi JOIN orders o ON o.id = oi.order_id WHERE o.cancelled_at IS NULL"
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    engine.dispose()
    if not rows:
        raise SystemExit("the database has no order lines")
    users, items, quantities = zip(*rows, strict=True)
    return np.asarray(users), np.asarray(items), np.asarray(quantities)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--categories", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--neighbours", type=int, default=50)
    parser.add_argument("--similarity", nargs="+", choices=SIMILARITIES, default=SIMILARITIES)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    if args.database_url:
        say(f"reading order lines from {args.database_url.split('@')[-1]}")
        (users, items, quantities), data_s, _ = timed(lambda: from_database(args.database_url))
        source = "database"
    else:
        say(f"generating {args.lines:,} lines, {args.customers:,} customers, seed {args.seed}")
        p, data_s, _ = timed(
            lambda: synthetic_purchases(
                n_customers=args.customers,
                n_products=args.products,
                n_lines=args.lines,
                n_categories=args.categories,
                seed=args.seed,
            )
        )
        users, items, quantities = p.users, p.items, p.quantities
        source = "synthetic"
    say(f"data ready in {data_s} s; building the customer x product matrix")
    inter, matrix_s, _ = timed(lambda u=users, i=items, q=quantities: build_interactions(u, i, q))
    X: sp.csr_matrix = inter.matrix
    say(f"matrix {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz:,} pairs in {matrix_s} s")

    builds: dict[str, Any] = {}
    with threadpool_limits(args.threads, "blas"):
        for similarity in args.similarity:
            say(f"patronage ItemToItem({similarity}) ...")
            model = ItemToItem(
                similarity=similarity, n_neighbours=args.neighbours, num_threads=args.threads
            )
            _, wall, cpu = timed(lambda m=model: m.fit(X))
            builds[similarity] = {
                "wall_s": wall,
                "cpu_s": cpu,
                "table_pairs": int(model.neighbours_.nnz),
                "items_with_neighbours": int(np.count_nonzero(np.diff(model.neighbours_.indptr))),
            }
            say(f"  {wall} s wall, {cpu} s CPU")
            del model

    reference: dict[str, Any] = {}
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in (("cosine", CosineRecommender), ("bm25", BM25Recommender)):
            say(f"implicit {cls.__name__}(K={args.neighbours}) ...")
            ref = cls(K=args.neighbours, num_threads=args.threads)
            _, wall, cpu = timed(lambda r=ref: r.fit(X, show_progress=False))
            reference[name] = {"wall_s": wall, "cpu_s": cpu}
            say(f"  {wall} s wall, {cpu} s CPU")
            del ref

    primary = builds.get("smith_linden") or next(iter(builds.values()))
    print(
        json.dumps(
            {
                "benchmark": "recommend_build",
                "source": source,
                "customers": int(X.shape[0]),
                "products": int(X.shape[1]),
                "order_lines": int(args.lines) if source == "synthetic" else None,
                "customer_product_pairs": int(X.nnz),
                "threads": args.threads,
                "neighbours": args.neighbours,
                "data_s": data_s,
                "matrix_s": matrix_s,
                "patronage": builds,
                "implicit": reference,
                "target_s": TARGET_SECONDS,
                "meets_target": bool(primary["wall_s"] <= TARGET_SECONDS),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
