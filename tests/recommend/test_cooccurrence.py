"""Bought together, cross-sell, upsell and trending on hand-checked data."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import scipy.sparse as sp

from patronage.errors import ValidationFailed
from patronage.recommend.algorithms.cooccurrence import cross_sell, frequently_bought_together
from patronage.recommend.algorithms.popular import trending, trending_by_category
from patronage.recommend.algorithms.upsell import price_bands, upsell

A, B, C, D = range(4)


def rows_matrix(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [x for items in rows for x in items]
    return sp.csr_matrix((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(rows), n_items))


def entries(m: sp.csr_matrix) -> dict[tuple[int, int], float]:
    coo = m.tocoo()
    return {(int(r), int(c)): float(v) for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)}


# 6 baskets: A in 4, B in 4, C in 2, D in 2; AB 3, AC 1, AD 1, BD 1, CD 1
BASKETS = [[A, B], [A, B], [A, C], [B], [C, D], [A, B, D]]


def test_bought_together_confidence_lift_and_filters() -> None:
    fbt = frequently_bought_together(rows_matrix(BASKETS, 4), min_baskets=1)
    # lift AB = 3·6/(4·4) = 1.125, CD = 1·6/(2·2) = 1.5; AC, AD, BD have lift 0.75 < 1
    assert entries(fbt.confidence) == pytest.approx(
        {(A, B): 0.75, (B, A): 0.75, (C, D): 0.5, (D, C): 0.5}
    )
    assert entries(fbt.lift) == pytest.approx(
        {(A, B): 1.125, (B, A): 1.125, (C, D): 1.5, (D, C): 1.5}
    )
    assert entries(fbt.baskets) == {(A, B): 3, (B, A): 3, (C, D): 1, (D, C): 1}
    assert entries(fbt.table) == entries(fbt.confidence)
    by_lift = frequently_bought_together(rows_matrix(BASKETS, 4), min_baskets=1, rank_by="lift")
    assert entries(by_lift.table) == entries(by_lift.lift)
    strict = frequently_bought_together(rows_matrix(BASKETS, 4))  # min_baskets=2
    assert entries(strict.confidence) == pytest.approx({(A, B): 0.75, (B, A): 0.75})
    everything = frequently_bought_together(rows_matrix(BASKETS, 4), min_baskets=1, min_lift=0)
    assert len(entries(everything.table)) == 10
    one = frequently_bought_together(
        rows_matrix(BASKETS, 4), min_baskets=1, min_lift=0, n_neighbours=1
    )
    # A's best: B (confidence 3/4); C's: A and D tie at 1/2, the lower item wins
    assert entries(one.table)[(A, B)] == 0.75
    assert (C, A) in entries(one.table)
    with pytest.raises(ValidationFailed):
        frequently_bought_together(rows_matrix(BASKETS, 4), rank_by="support")  # type: ignore[arg-type]


def test_cross_sell_follows_the_order_of_purchases_across_categories() -> None:
    categories = np.array([0, 1, 1, -1])
    events = [
        ("u1", 0, 1), ("u1", 1, 5),  # 0 then 1
        ("u2", 0, 2), ("u2", 1, 3), ("u2", 0, 10),  # 0 then 1, and 1 then 0 again
        ("u3", 0, 4), ("u3", 2, 4),  # same moment: no order
        ("u4", 1, 1), ("u4", 2, 2),  # same category
        ("u5", 0, 1), ("u5", 3, 2),  # no category
    ]  # fmt: skip
    users, items, times = (list(x) for x in zip(*events, strict=True))
    table = cross_sell(users, items, times, categories, n_items=4, min_co_buyers=1)
    # buyers: item 0 four, item 1 three
    assert entries(table) == pytest.approx({(0, 1): 2 / math.sqrt(12), (1, 0): 1 / math.sqrt(12)})
    strict = cross_sell(users, items, times, categories, n_items=4, min_co_buyers=2)
    assert entries(strict) == pytest.approx({(0, 1): 2 / math.sqrt(12)})
    assert cross_sell([], [], [], categories, n_items=4).nnz == 0
    with pytest.raises(ValidationFailed):
        cross_sell(users, items, times, categories[:2], n_items=4)
    with pytest.raises(ValidationFailed):
        cross_sell(["u"], [7], [1], categories, n_items=4)


def test_cross_sell_blocks_of_customers_give_the_same_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import patronage.recommend.algorithms.cooccurrence as co

    rng = np.random.default_rng(0)
    users = rng.integers(0, 50, 600)
    items = rng.integers(0, 20, 600)
    times = rng.integers(0, 1000, 600)
    cats = np.arange(20) % 4
    whole = cross_sell(users, items, times, cats, n_items=20, min_co_buyers=1, n_neighbours=20)
    monkeypatch.setattr(co, "PAIRS_PER_BLOCK", 30)
    blocked = cross_sell(users, items, times, cats, n_items=20, min_co_buyers=1, n_neighbours=20)
    assert entries(whole) == pytest.approx(entries(blocked))
    # brute force: customers who first bought a before their last purchase of b
    first: dict[tuple[int, int], int] = {}
    last: dict[tuple[int, int], int] = {}
    for u, i, t in zip(users.tolist(), items.tolist(), times.tolist(), strict=True):
        first[u, i] = min(first.get((u, i), t), t)
        last[u, i] = max(last.get((u, i), t), t)
    counts: dict[tuple[int, int], int] = {}
    for (u, a), fa in first.items():
        for (v, b), lb in last.items():
            if u == v and a != b and fa < lb and cats[a] != cats[b]:
                counts[a, b] = counts.get((a, b), 0) + 1
    buyers = np.bincount([i for (_, i) in first], minlength=20)
    expect = {k: n / math.sqrt(buyers[k[0]] * buyers[k[1]]) for k, n in counts.items()}
    assert entries(whole) == pytest.approx(expect)


def test_price_bands_within_categories() -> None:
    bands = price_bands([100, 100, 300, 50, 70, -1], [0, 0, 0, 1, 1, 1], n_bands=3)
    # category 0: ranks 0, 0, 2 of 3; category 1: ranks 0, 1 of 2 priced items
    assert bands.tolist() == [0, 0, 2, 0, 1, -1]
    assert price_bands([5], [-1]).tolist() == [-1]


def test_upsell_prefers_similar_dearer_items_of_the_same_category() -> None:
    categories = np.array([0, 0, 0, 0, 0, 1])
    prices = np.array([100, 200, 300, 400, 500, 50])
    X = rows_matrix([[0, 2], [0, 2], [0, 1], [3], [4], [4]], 6)
    table = upsell(X, categories, prices, n_bands=5, max_band_step=2)
    row0 = entries(table[0])
    # bands are 0..4; from item 0 (band 0): items 1 and 2; 2 shares more buyers
    assert row0 == pytest.approx({(0, 2): 1.0, (0, 1): 0.95})
    anywhere = upsell(X, categories, prices, n_bands=5, max_band_step=None)
    ids = anywhere[0].indices[np.argsort(-anywhere[0].data)].tolist()
    assert ids == [2, 1, 4, 3]  # then by buyers: item 4 has two, item 3 one
    assert anywhere[4].nnz == 0  # the dearest has nothing to upsell to
    assert anywhere[5].nnz == 0  # alone in its category


def test_trending_counts_the_window_and_breaks_ties_by_history() -> None:
    now = datetime(2025, 6, 30, tzinfo=UTC)
    day = timedelta(days=1)
    lines = [
        (0, now - 20 * day, "a"), (0, now - 19 * day, "b"), (0, now - 18 * day, "c"),
        (1, now - 2 * day, "a"), (1, now - 1 * day, "a"), (1, now - 1 * day, "b"),
        (2, now - 3 * day, "c"), (2, now - 30 * day, "d"),
        (0, now - 1 * day, "e"),
    ]  # fmt: skip
    items, times, users = (list(x) for x in zip(*lines, strict=True))
    t = trending(items, times, n_items=4, days=7, now=now)
    # last 7 days: item 1 three lines, items 0 and 2 one each (0 more popular overall)
    assert t.items.tolist() == [1, 0, 2]
    assert t.counts.tolist() == [3.0, 1.0, 1.0]
    distinct = trending(items, times, n_items=4, days=7, now=now, users=users)
    assert distinct.counts.tolist() == [2.0, 1.0, 1.0]
    assert trending(items, times, n_items=4, days=7, now=now, n=1).items.tolist() == [1]
    per = trending_by_category(items, times, [5, 5, 6, -1], n_items=4, days=7, now=now)
    assert {k: v.items.tolist() for k, v in per.items()} == {5: [1, 0], 6: [2]}
    assert trending([], [], n_items=4).items.tolist() == []
    with pytest.raises(ValidationFailed):
        trending(items, times, n_items=2)
    with pytest.raises(ValidationFailed):
        trending(items, times, n_items=4, days=0)
