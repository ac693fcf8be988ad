"""The analytics refresh: features, RFM, patterns, CLV / churn scores, in one transaction.

Everything is computed first (the Ibis expressions on the configured engine, analytics/engine.py,
then NumPy / SciPy for the CLV models); only
then are the derived tables swapped — old rows deleted and new rows inserted in the caller's
transaction — so readers see either the previous refresh or this one, never a mix.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from patronage.analytics import engine, features, patterns, rfm, scores
from patronage.analytics import repository as repo
from patronage.analytics.models import AnalyticsRefresh
from patronage.config import get_settings
from patronage.kit.clock import utcnow

Progress = Callable[[str], None]

STEPS = ("read store", "features", "rfm", "patterns", "scores", "write")


@dataclass
class Computed:
    """Features, RFM and purchase patterns, as one engine computed them."""

    engine: str
    feature_columns: features.FeatureColumns
    rfm: list[tuple[int, int, int, int, str]]  # customer_id, r, f, m, segment
    future_orders: int
    patterns: dict[str, Any]  # patterns.compute
    transactions: pa.Table  # features.transactions: what the CLV models are fitted on

    @property
    def features(self) -> list[dict[str, Any]]:
        """One dict per customer (features.FEATURE_COLUMNS), as `features.finish` gives."""
        return self.feature_columns.rows()


FeaturesDone = Callable[[features.FeatureColumns, pa.Table], None]


def compute(
    store: engine.Store,
    now: datetime,
    progress: Progress | None = None,
    on_features: FeaturesDone | None = None,
) -> Computed:
    """Features, RFM, patterns and the CLV transactions on `store`'s engine (nothing written).

    The counted orders (features.counted_orders) are computed once, for all of them.
    `on_features(feature columns, transactions)` is called as soon as both are known, before
    RFM and patterns (the refresh starts its scoring and writing then).
    """
    step = progress or (lambda _: None)
    now = now.astimezone(UTC)
    now_us = features.to_us(now)
    step("features")
    with store.materialized(features.counted_orders(store.tables, now_us)) as counted:
        tables = {**store.tables, features.COUNTED: counted}
        with store.materialized(features.feature_table(tables, now_us)) as raw:
            columns = features.finish_table(store.arrow(raw.order_by("customer_id")), now)
            tx = store.arrow(features.transactions(tables, now_us))
            if on_features is not None:
                on_features(columns, tx)
            future = int(store.scalar(features.future_orders(tables, now_us)))
            step("rfm")
            rfm_rows = rfm.compute(store, features.rfm_basis(raw, now_us))
        step("patterns")
        spend = [
            s
            for s, n in zip(
                columns.columns["total_spend_minor"], columns.columns["orders"], strict=True
            )
            if n
        ]
        found = patterns.compute(store, now_us, spend, tables)
    return Computed(store.engine, columns, rfm_rows, future, found, tx)


def _json_lists(lists: list[list[str]]) -> list[str]:
    """Lists of codes as JSON texts (as the bulk writer would spell them), each distinct
    list spelled once."""
    encode = json.JSONEncoder(separators=(",", ":")).encode
    spelled: dict[tuple[str, ...], str] = {}
    out = []
    for codes in lists:
        key = tuple(codes)
        text = spelled.get(key)
        if text is None:
            text = spelled[key] = encode(codes)
        out.append(text)
    return out


def _score_and_write(
    session: Session,
    now: datetime,
    columns: features.FeatureColumns,
    tx: pa.Table,
    discount_rate: float,
    margin: float,
) -> scores.ScoreRun:
    """Write the features, score every customer, write the scores (the session's work)."""
    repo.replace_table(session, "features", now, columns.for_store())
    ids = columns.columns["customer_id"]
    run_scores = scores.compute(tx, now, ids, discount_rate=discount_rate, margin=margin)
    repo.replace_table(
        session,
        "scores",
        now,
        {
            "customer_id": run_scores.customer_ids,
            **run_scores.columns,
            "problems": _json_lists(run_scores.columns["problems"]),
        },
    )
    return run_scores


def run(
    session: Session,
    now: datetime | None = None,
    *,
    discount_rate: float = 0.01,
    margin: float = 1.0,
    progress: Progress | None = None,
    engine_name: str | None = None,
) -> AnalyticsRefresh:
    """The whole refresh in the session's transaction.

    Once the features and the CLV transactions are known, a thread writes the features,
    scores every customer (NumPy) and writes the scores while the engine computes RFM and
    patterns: the engine works in its own threads without Python's lock, the writing and
    scoring are mostly Python, so the two overlap. Not with `database`, whose engine is the
    session's own connection: there it is done in turn. (Steps as reported: "scores" is the
    wait for that thread, "write" the RFM table and the refresh record.)
    """
    now = (now or utcnow()).astimezone(UTC)
    started = time.perf_counter()
    step = progress or (lambda _: None)
    name = engine_name or get_settings().analytics_engine
    jobs: list[Future[scores.ScoreRun]] = []

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics-write") as pool:

        def on_features(columns: features.FeatureColumns, tx: pa.Table) -> None:
            job = partial(_score_and_write, session, now, columns, tx, discount_rate, margin)
            if name == "database":
                done: Future[scores.ScoreRun] = Future()
                done.set_result(job())
                jobs.append(done)
            else:
                jobs.append(pool.submit(job))

        step("read store")
        with engine.open_store(session, name) as store:
            computed = compute(store, now, step, on_features)
        step("scores")
        run_scores = jobs[0].result()  # leaving the pool waits for the thread in any case
    rfm_rows = computed.rfm
    future = computed.future_orders

    step("write")
    before = repo.segments_by_customer(session)
    moves: Counter[tuple[str, str]] = Counter()
    if before:
        for cid, _, _, _, new in rfm_rows:
            old = before.get(cid)
            if old is not None and old != new:
                moves[(old, new)] += 1
    rfm_names = ("customer_id", "r", "f", "m", "segment")
    rfm_columns = {col: [row[i] for row in rfm_rows] for i, col in enumerate(rfm_names)}
    repo.replace_table(session, "rfm", now, rfm_columns)
    problems = run_scores.problem_counts()
    details = {
        "model": run_scores.model,
        "future_orders_ignored": future,
        "not_scored": dict(sorted(problems.items())),
        "moves": [{"from": a, "to": b, "customers": n} for (a, b), n in sorted(moves.items())],
        "engine": computed.engine,
        # read through service.purchase_patterns; left out of RefreshRead
        "patterns": computed.patterns,
    }
    return repo.add_refresh(
        session,
        AnalyticsRefresh(
            computed_at=now,
            duration_ms=round((time.perf_counter() - started) * 1000),
            customers=len(computed.feature_columns),
            buyers=len(rfm_rows),
            segment_moves=sum(moves.values()),
            details=details,
        ),
    )
