"""The analytics refresh: features, RFM, CLV / churn scores, rebuilt in one transaction.

Everything is computed first (DuckDB over Arrow copies of the store, then NumPy / SciPy); only
then are the derived tables swapped — old rows deleted and new rows inserted in the caller's
transaction — so readers see either the previous refresh or this one, never a mix.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from patronage.analytics import engine, features, rfm, scores
from patronage.analytics import repository as repo
from patronage.analytics.models import AnalyticsRefresh
from patronage.kit.clock import utcnow

Progress = Callable[[str], None]

STEPS = ("read store", "features", "rfm", "scores", "write")


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def run(
    session: Session,
    now: datetime | None = None,
    *,
    discount_rate: float = 0.01,
    margin: float = 1.0,
    progress: Progress | None = None,
) -> AnalyticsRefresh:
    now = (now or utcnow()).astimezone(UTC)
    started = time.perf_counter()
    step = progress or (lambda _: None)

    step("read store")
    con = engine.load_store(session)
    try:
        step("features")
        con.execute(
            f"CREATE TABLE features AS {features.FEATURES_SQL}",
            {"now": features.utc_naive(now)},
        )
        cols = features.FEATURE_COLUMNS
        feature_rows = [
            {"computed_at": now, **{c: _aware(v) for c, v in zip(cols, row, strict=True)}}
            for row in con.execute("SELECT * FROM features ORDER BY customer_id").fetchall()
        ]
        future = int(
            con.execute(features.FUTURE_ORDERS_SQL, {"now": features.utc_naive(now)}).fetchone()[0]  # type: ignore[index]
        )
        step("rfm")
        rfm_rows = rfm.compute(con)
        step("scores")
        ids = [int(r["customer_id"]) for r in feature_rows]
        run_scores = scores.compute(con, now, ids, discount_rate=discount_rate, margin=margin)
    finally:
        con.close()

    step("write")
    before = repo.segments_by_customer(session)
    moves: Counter[tuple[str, str]] = Counter()
    for cid, _, _, _, segment in rfm_rows:
        old = before.get(cid)
        if old is not None and old != segment:
            moves[(old, segment)] += 1
    repo.replace_all(
        session,
        feature_rows,
        [
            {"customer_id": cid, "computed_at": now, "r": r, "f": f, "m": m, "segment": seg}
            for cid, r, f, m, seg in rfm_rows
        ],
        [
            {"customer_id": cid, "computed_at": now, **row}
            for cid, row in sorted(run_scores.rows.items())
        ],
    )
    problems = Counter(p for row in run_scores.rows.values() for p in row["problems"])
    details = {
        "model": run_scores.model,
        "future_orders_ignored": future,
        "not_scored": dict(sorted(problems.items())),
        "moves": [{"from": a, "to": b, "customers": n} for (a, b), n in sorted(moves.items())],
        "engine": "duckdb",
    }
    return repo.add_refresh(
        session,
        AnalyticsRefresh(
            computed_at=now,
            duration_ms=round((time.perf_counter() - started) * 1000),
            customers=len(feature_rows),
            buyers=len(rfm_rows),
            segment_moves=sum(moves.values()),
            details=details,
        ),
    )
