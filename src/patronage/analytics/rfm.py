"""RFM: quintile scores and the eleven named segments (docs/analytics.md).

Scored over buyers (customers with at least one counted order), from the features table:
recency = recency_days (fewer days scores higher), frequency = orders, monetary =
total_spend_minor. A score is 1 + floor(5 · (rank - 1) / n) with rank the SQL `rank()` (ties
share the lowest rank), so equal values always get equal scores and every score is 1..5.
Written as an Ibis expression over the features (integer arithmetic only): every engine agrees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis
import numpy as np
import numpy.typing as npt

from patronage.analytics.engine import Store

IntArray = npt.NDArray[np.int64]
# a rule reads ints or arrays of them alike (& and | rather than and / or)
Rule = Callable[[Any, Any, Any], Any]

# first match wins; the last rule catches everything left, so every (r, f, m) has a segment
SEGMENTS: tuple[tuple[str, str, Rule], ...] = (
    ("Champions", "r >= 4 and f >= 4 and m >= 4", lambda r, f, m: (r >= 4) & (f >= 4) & (m >= 4)),
    ("Loyal", "r >= 3 and f >= 4", lambda r, f, m: (r >= 3) & (f >= 4)),
    ("Potential Loyalist", "r >= 4 and f in 2..3", lambda r, f, m: (r >= 4) & (f >= 2) & (f <= 3)),
    ("New", "r = 5 and f = 1", lambda r, f, m: (r == 5) & (f == 1)),
    ("Promising", "r = 4 and f = 1", lambda r, f, m: (r == 4) & (f == 1)),
    ("Need Attention", "r = 3 and f in 2..3", lambda r, f, m: (r == 3) & (f >= 2) & (f <= 3)),
    ("About to Sleep", "r = 3 and f = 1", lambda r, f, m: (r == 3) & (f == 1)),
    ("Can't Lose Them", "r <= 2 and f = 5", lambda r, f, m: (r <= 2) & (f == 5)),
    ("At Risk", "r <= 2 and f in 3..4", lambda r, f, m: (r <= 2) & (f >= 3) & (f <= 4)),
    ("Hibernating", "r = 2 and f <= 2", lambda r, f, m: (r == 2) & (f <= 2)),
    ("Lost", "anything else (r = 1 and f <= 2)", lambda r, f, m: True),
)
SEGMENT_NAMES = tuple(name for name, _, _ in SEGMENTS)


def segment_of(r: int, f: int, m: int) -> str:
    for name, _, rule in SEGMENTS:
        if rule(r, f, m):
            return name
    raise AssertionError("the last rule matches everything")  # pragma: no cover


def _score(t: ibis.Table, value: ibis.Column, *, descending: bool = False) -> ibis.Column:
    rank = ibis.rank().over(order_by=ibis.desc(value) if descending else value)  # 0-based
    return 1 + (5 * rank) // t.count().over()


def rfm_table(features: ibis.Table) -> ibis.Table:
    """customer_id, r, f, m per buyer of a table with recency_days, orders, total_spend_minor."""
    buyers = features.filter(features.orders > 0)
    return buyers.select(
        "customer_id",
        r=_score(buyers, buyers.recency_days, descending=True),
        f=_score(buyers, buyers.orders),
        m=_score(buyers, buyers.total_spend_minor),
    ).order_by("customer_id")


def segments(r: IntArray, f: IntArray, m: IntArray) -> list[str]:
    """`segment_of` element-wise: the same rules, first match wins."""
    names = [name for name, _, _ in SEGMENTS]
    conditions = [rule(r, f, m) for _, _, rule in SEGMENTS[:-1]]
    return np.select(conditions, names[:-1], default=names[-1]).tolist()  # type: ignore[no-any-return]


def compute(store: Store, features: ibis.Table) -> list[tuple[int, int, int, int, str]]:
    """(customer_id, r, f, m, segment) per buyer."""
    table = store.arrow(rfm_table(features))
    ids, r, f, m = (
        table.column(c).to_numpy().astype(np.int64) for c in ("customer_id", "r", "f", "m")
    )
    return list(
        zip(ids.tolist(), r.tolist(), f.tolist(), m.tolist(), segments(r, f, m), strict=True)
    )
