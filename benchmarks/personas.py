"""Personas on 1M customers, and next-category prediction with its holdout evaluation.

    .venv/bin/python benchmarks/demo_generate.py --customers 20000 --db sqlite \\
        --data-dir /tmp/seg-personas-20k                 # once, then: patronage analytics refresh
    .venv/bin/python benchmarks/personas.py [--customers 1000000] [--seed 7] \\
        [--store-db sqlite:////tmp/seg-personas-20k/bench.db --store-dir /tmp/seg-personas-20k]

Part 1 (`synthetic`): a fresh, migrated SQLite store in a temporary directory receives
`--customers` customers (birth year, city) and one analytics feature row each, written with
`kit.bulkwrite` from NumPy (generating a 1M-customer shop with orders and events and running
the analytics refresh over it takes far longer than what is measured here). The features
come from a mixture of six customer types with different ages, cities, tenure, recency,
order counts, basket sizes, browsing, returns, discounts and support contacts. Then exactly
what the nightly job `segments.personas` runs is timed: read the features through DuckDB,
standardise, MiniBatchKMeans for k = 3..8 (fitted on a 100k sample, silhouette on a 5k
sample), full-data refinement, description in words, Hungarian matching to the previous
personas, and the write of the personas and the 1M per-customer assignments. A second
refresh over features perturbed by ~5 % ("the next night") measures label stability: the
share of customers whose persona id did not change. The synthetic store has no orders, so
the category-share features are absent there; `model_with_categories` times the model alone
on the same matrix with six category-share columns added (20 features).

Part 2 (`store`, with `--store-db`): a real demo store (demo_generate.py, then
`patronage analytics refresh`). Timed inside one transaction that is rolled back at the
end: personas (twice: ids kept), next-category prediction for every buyer, and the holdout
evaluation — hit rate @1/3/5 of the model and of the most-popular baseline, in the same
run (the last 90 days of orders are the holdout).

The load average is printed with the figures: the machine is shared, a high load makes
every figure pessimistic. Prints progress on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SECONDS = 60.0
NOW = datetime(2026, 7, 1, tzinfo=UTC)

# type: share, age mean, metropolitan p, tenure, recency, orders (Poisson), aov (log mean),
# sessions_30d, product_views_30d, abandoned carts, return rate, discount rate, support
TYPES = [
    (0.25, 30, 0.8, 400, 40, 8.0, 9.0, 6, 30, 1.0, 0.05, 0.1, 0.2),
    (0.20, 62, 0.3, 1500, 200, 2.0, 10.5, 1, 5, 0.1, 0.02, 0.05, 0.1),
    (0.20, 45, 0.5, 900, 500, 1.0, 9.5, 0, 1, 0.0, 0.10, 0.3, 0.0),
    (0.15, 38, 0.6, 700, 20, 20.0, 9.2, 12, 80, 3.0, 0.15, 0.4, 1.5),
    (0.10, 25, 0.9, 60, 15, 1.5, 8.5, 8, 60, 4.0, 0.30, 0.2, 0.5),
    (0.10, 50, 0.2, 2500, 90, 5.0, 11.0, 2, 10, 0.2, 0.01, 0.0, 3.0),
]
CITIES = [f"Metro {i}" for i in range(10)] + [f"Town {i}" for i in range(200)]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def synthetic(n: int, seed: int, jitter: float = 0.0) -> dict[str, np.ndarray]:
    """Columns of customers and their features from the mixture of TYPES."""
    rng = np.random.default_rng(seed)
    shares = np.array([t[0] for t in TYPES])
    kind = np.random.default_rng(seed).choice(len(TYPES), size=n, p=shares / shares.sum())
    p = np.array([t[1:] for t in TYPES], dtype=np.float64)[kind]
    scale = 1.0 + jitter * rng.standard_normal((n, p.shape[1]))  # the "next night"
    p = p * scale
    orders = rng.poisson(np.maximum(p[:, 4], 0.05))
    aov = np.where(orders > 0, np.exp(rng.normal(p[:, 5], 0.4)), np.nan)
    metro = rng.random(n) < np.clip(p[:, 1], 0, 1)
    city_index = np.where(metro, rng.integers(0, 10, n), rng.integers(10, len(CITIES), n))
    recency = np.where(orders > 0, rng.exponential(np.maximum(p[:, 3], 1)), np.nan)
    return {
        "birth_year": (NOW.year - np.clip(rng.normal(p[:, 0], 6), 18, 95)).astype(np.int64),
        "city_index": city_index,
        "orders": orders.astype(np.int64),
        "total_spend_minor": np.nan_to_num(orders * aov).astype(np.int64),
        "aov_minor": aov,
        "tenure_days": rng.exponential(np.maximum(p[:, 2], 1)).astype(np.int64),
        "recency_days": recency,
        "distinct_categories": np.minimum(orders, rng.integers(1, 7, n)).astype(np.int64),
        "sessions_30d": rng.poisson(np.maximum(p[:, 6], 0.05)).astype(np.int64),
        "product_views_30d": rng.poisson(np.maximum(p[:, 7], 0.05)).astype(np.int64),
        "abandoned_carts": rng.poisson(np.maximum(p[:, 8], 0.01)).astype(np.int64),
        "return_rate": np.where(orders > 0, np.clip(rng.normal(p[:, 9], 0.05), 0, 1), np.nan),
        "discount_rate": np.where(orders > 0, np.clip(rng.normal(p[:, 10], 0.1), 0, 1), np.nan),
        "support_contacts": rng.poisson(np.maximum(p[:, 11], 0.01)).astype(np.int64),
        "kind": kind,
    }


def use_database(url: str, data_dir: Path) -> None:
    from patronage import config, db

    os.environ["PATRONAGE_DATA_DIR"] = str(data_dir)
    os.environ["PATRONAGE_DATABASE_URL"] = url
    os.environ.setdefault("PATRONAGE_ENV", "development")
    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()


def write_store(n: int, data: dict[str, np.ndarray]) -> None:
    from sqlalchemy import delete

    from patronage import db
    from patronage.analytics.models import CustomerFeatures
    from patronage.customers.models import Customer
    from patronage.kit import bulkwrite

    ids = np.arange(1, n + 1, dtype=np.int64)
    moment = np.full(n, np.datetime64(NOW.replace(tzinfo=None), "us"))
    with db.transaction() as s:
        s.execute(delete(CustomerFeatures))
        if s.query(Customer).count() == 0:
            bulkwrite.write_columns(
                s,
                Customer.__table__,  # type: ignore[arg-type]
                {
                    "id": ids,
                    "birth_year": data["birth_year"],
                    "city": [CITIES[i] for i in data["city_index"]],
                    "country": ["DE"] * n,
                    "key_version": np.ones(n, dtype=np.int64),
                    "traits": ["{}"] * n,
                    "is_anonymous": np.zeros(n, dtype=bool),
                    "created_at": moment,
                    "updated_at": moment,
                },
            )
        zeros = np.zeros(n, dtype=np.int64)
        columns: dict[str, Any] = {
            "customer_id": ids,
            "computed_at": moment,
            "purchase_days": data["orders"],
            "sessions_7d": zeros,
            "sessions_90d": data["sessions_30d"],
            "product_views_7d": zeros,
            "product_views_90d": data["product_views_30d"],
            "cart_adds": data["abandoned_carts"],
            "recommendation_clicks": zeros,
            "reviews": zeros,
        }
        for name in (
            "orders",
            "total_spend_minor",
            "tenure_days",
            "distinct_categories",
            "sessions_30d",
            "product_views_30d",
            "abandoned_carts",
            "support_contacts",
        ):
            columns[name] = data[name]
        for name in ("aov_minor", "recency_days"):
            v = data[name]
            columns[name] = [None if np.isnan(x) else int(x) for x in v]
        for name in ("return_rate", "discount_rate"):
            v = data[name]
            columns[name] = [None if np.isnan(x) else float(x) for x in v]
        bulkwrite.write_columns(s, CustomerFeatures.__table__, columns)  # type: ignore[arg-type]


def refresh(n: int) -> dict[str, Any]:
    from sqlalchemy import select

    from patronage import db
    from patronage.segments import insights, personas
    from patronage.segments.models import PersonaMember

    result: dict[str, Any] = {"load_before": load()}
    with db.transaction() as s:
        before = dict(s.execute(select(PersonaMember.customer_id, PersonaMember.persona_id)).all())
        started = time.perf_counter()
        frame = insights.persona_frame(s, NOW)
        read = time.perf_counter()
        model = personas.PersonaModel()
        out = insights.fit_personas(s, frame, model, NOW)
        done = time.perf_counter()
        after = dict(s.execute(select(PersonaMember.customer_id, PersonaMember.persona_id)).all())
    committed = time.perf_counter()
    kept = sum(1 for c, p in after.items() if before.get(c) == p)
    result.update(
        customers=out.customers,
        read_seconds=round(read - started, 2),
        fit_describe_match_write_seconds=round(done - read, 2),
        seconds=round(done - started, 2),
        commit_seconds=round(committed - done, 2),
        k=out.k,
        silhouettes={str(x.k): x.silhouette for x in out.silhouettes},
        personas=[
            {"id": p.id, "name": p.name, "size": p.size, "description": p.description}
            for p in out.personas
        ],
        same_persona_share=round(kept / max(len(after), 1), 4) if before else None,
        load_after=load(),
        met=done - started <= TARGET_SECONDS,
    )
    return result


def model_with_categories(n: int, seed: int) -> dict[str, Any]:
    """The model alone on 20 features: the 14 of part 1 plus six category shares."""
    from patronage.segments import insights, personas

    data = synthetic(n, seed)
    rng = np.random.default_rng(seed + 1)
    names = [f for f, _, _ in insights.PERSONA_FEATURES]
    raw = np.column_stack(
        [
            NOW.year - data["birth_year"],
            (data["city_index"] < 10).astype(float),
            *(data[f].astype(float) for f in names[2:]),
        ]
    )
    alpha = np.eye(6)[data["kind"]] * 8 + 0.5
    shares = np.vstack([rng.dirichlet(a) for a in alpha[:1000]])  # pattern, tiled: fast
    shares = shares[rng.integers(0, 1000, n)]
    cats = [f"category:{i}" for i in range(1, 7)]
    frame = insights.PersonaFrame(
        np.arange(1, n + 1),
        np.column_stack([raw, shares]),
        names + cats,
        {c: f"category {i}" for i, c in enumerate(cats, 1)},
        [lg for _, _, lg in insights.PERSONA_FEATURES] + [False] * 6,
        data["total_spend_minor"].astype(float),
        np.full(n, np.nan),
    )
    started = time.perf_counter()
    x = frame.matrix()
    model = personas.PersonaModel().fit(x, frame.names)
    fitted = time.perf_counter()
    z = model.z_centers()
    words = [personas.describe(z[i], frame.names, frame.labels).text for i in range(model.k_)]
    return {
        "customers": n,
        "features": len(frame.names),
        "seconds": round(time.perf_counter() - started, 2),
        "fit_seconds": round(fitted - started, 2),
        "k": model.k_,
        "silhouettes": {str(k): v for k, v in model.silhouettes_.items()},
        "descriptions": words,
        "load": load(),
    }


def part_synthetic(n: int, seed: int) -> dict[str, Any]:
    from patronage import migrate
    from patronage.db import get_engine

    with tempfile.TemporaryDirectory(prefix="bench-personas-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        use_database(url, Path(tmp))
        migrate.upgrade(get_engine())
        say(f"writing {n:,} synthetic customers and feature rows")
        started = time.perf_counter()
        write_store(n, synthetic(n, seed))
        setup = round(time.perf_counter() - started, 1)
        say(f"  {setup} s; first refresh")
        first = refresh(n)
        say(json.dumps(first))
        write_store(n, synthetic(n, seed, jitter=0.05))
        say("second refresh (features perturbed by ~5 %)")
        second = refresh(n)
        say(json.dumps(second))
        from patronage import db

        db.dispose_engines()
    say("model alone with category shares")
    alone = model_with_categories(n, seed)
    return {
        "setup_seconds": setup,
        "first": first,
        "second": second,
        "model_with_categories": alone,
    }


def part_store(url: str, data_dir: Path) -> dict[str, Any]:
    from patronage import db
    from patronage.segments import service

    use_database(url, data_dir)
    session = db.new_session()
    out: dict[str, Any] = {"db": url, "load_before": load()}
    try:
        for name in ("personas_first", "personas_second"):
            t = time.perf_counter()
            p = service.refresh_personas(session, NOW)
            out[name] = {
                "seconds": round(time.perf_counter() - t, 2),
                "customers": p.customers,
                "k": p.k,
                "silhouettes": {str(s.k): s.silhouette for s in p.silhouettes},
                "personas": [
                    {
                        "id": x.id,
                        "name": x.name,
                        "size": x.size,
                        "description": x.description,
                        "mean_spend_minor": x.mean_spend_minor,
                        "mean_clv_minor": x.mean_clv_minor,
                    }
                    for x in p.personas
                ],
            }
            say(json.dumps(out[name]))
        t = time.perf_counter()
        run = service.refresh_next_categories(session, NOW)
        out["next_category_predict"] = {
            "seconds": round(time.perf_counter() - t, 2),
            **run.model_dump(mode="json", exclude={"computed_at"}),
        }
        t = time.perf_counter()
        e = service.evaluate_next_category(session, holdout_days=90, now=NOW)
        out["next_category_evaluate"] = {
            "seconds": round(time.perf_counter() - t, 2),
            **e.model_dump(mode="json", exclude={"computed_at"}),
        }
        say(json.dumps(out["next_category_evaluate"]))
    finally:
        session.rollback()
        session.close()
        db.dispose_engines()
    out["load_after"] = load()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store-db", help="a demo store with an analytics refresh done")
    parser.add_argument("--store-dir", help="its data directory (keys)")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "benchmark": "personas",
        "cpus": os.cpu_count(),
        "target_seconds": TARGET_SECONDS,
    }
    if not args.skip_synthetic:
        result["synthetic"] = part_synthetic(args.customers, args.seed)
    if args.store_db:
        result["store"] = part_store(args.store_db, Path(args.store_dir or "."))
    result["peak_rss_mib"] = peak_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
