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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from patronage.analytics import engine, features, patterns, rfm, scores
from patronage.analytics import repository as repo
from patronage.analytics.models import AnalyticsRefresh
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


def compute(store: engine.Store, now: datetime, progress: Progress | None = None) -> Computed:
    """Features, RFM, patterns and the CLV transactions on `store`'s engine (nothing written).

    The counted orders (features.counted_orders) are computed once, for all of them.
    """
    step = progress or (lambda _: None)
    now = now.astimezone(UTC)
    now_us = features.to_us(now)
    step("features")
    with store.materialized(features.counted_orders(store.tables, now_us)) as counted:
        tables = {**store.tables, features.COUNTED: counted}
        with store.materialized(features.feature_table(tables, now_us)) as raw:
            columns = features.finish_table(store.arrow(raw.order_by("customer_id")), now)
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
        tx = store.arrow(features.transactions(tables, now_us))
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


def run(
    session: Session,
    now: datetime | None = None,
    *,
    discount_rate: float = 0.01,
    margin: float = 1.0,
    progress: Progress | None = None,
    engine_name: str | None = None,
) -> AnalyticsRefresh:
    now = (now or utcnow()).astimezone(UTC)
    started = time.perf_counter()
    step = progress or (lambda _: None)

    step("read store")
    with engine.open_store(session, engine_name) as store:
        computed = compute(store, now, step)
    step("scores")
    ids = computed.feature_columns.columns["customer_id"]
    run_scores = scores.compute(
        computed.transactions, now, ids, discount_rate=discount_rate, margin=margin
    )
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
    rfm_columns = {name: [row[i] for row in rfm_rows] for i, name in enumerate(rfm_names)}
    repo.replace_all(
        session,
        now,
        computed.feature_columns.for_store(),
        rfm_columns,
        {
            "customer_id": run_scores.customer_ids,
            **run_scores.columns,
            "problems": _json_lists(run_scores.columns["problems"]),
        },
    )
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
