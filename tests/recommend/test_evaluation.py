"""The evaluation run: every model fitted on one split, a report that names the winners."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from patronage.errors import ValidationFailed
from patronage.recommend.algorithms.item_to_item import ItemToItem
from patronage.recommend.algorithms.popular import MostPopular
from patronage.recommend.evaluation import Report, evaluate
from patronage.recommend.interactions import Interactions, Split, temporal_split
from patronage.recommend.synthetic import synthetic_purchases


def small_split() -> Split:
    p = synthetic_purchases(
        n_customers=400, n_products=60, n_lines=4000, n_categories=6, days=120, seed=5
    )
    return temporal_split(p.users, p.items, p.times, p.quantities, test_days=20)


def test_synthetic_data_is_seeded_and_shaped() -> None:
    a = synthetic_purchases(n_customers=300, n_products=50, n_lines=2000, n_categories=5, seed=1)
    b = synthetic_purchases(n_customers=300, n_products=50, n_lines=2000, n_categories=5, seed=1)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.times, b.times)
    assert a.users.size == 2000
    assert a.items.min() >= 0 and a.items.max() < 50
    assert a.n_items == 50 and a.prices_minor.min() > 0
    assert np.all(np.diff(a.users) >= 0)
    # every line of an order shares the order's customer and time
    for order in np.unique(a.orders)[:50]:
        lines = a.orders == order
        assert np.unique(a.users[lines]).size == 1 and np.unique(a.times[lines]).size == 1
    with pytest.raises(ValidationFailed):
        synthetic_purchases(n_customers=0)


def test_evaluate_reports_every_model_and_the_winners() -> None:
    split = small_split()
    report = evaluate(
        split,
        {"item-to-item": ItemToItem(), "popular-again": MostPopular()},
        baselines={"most-popular": MostPopular()},
        ks=(5, 10),
    )
    assert list(report.metrics) == ["item-to-item", "popular-again", "most-popular"]
    assert set(report.metrics["item-to-item"]) == {
        f"{m}@{k}"
        for m in ("precision", "recall", "ndcg", "hit_rate", "map", "coverage")
        for k in (5, 10)
    }
    # identical models tie; the tie goes to the one listed first
    assert report.metrics["popular-again"] == report.metrics["most-popular"]
    assert report.winners()["coverage@5"] in ("item-to-item", "popular-again")
    assert report.best("ndcg@10", baselines=True) in report.metrics
    assert report.users == split.eval_users.size
    for values in report.metrics.values():
        assert all(0.0 <= v <= 1.0 for v in values.values())


def test_report_logic_on_fixed_numbers() -> None:
    report = Report(
        protocol="p",
        users=1,
        items=1,
        metrics={"a": {"ndcg@10": 0.2}, "b": {"ndcg@10": 0.3}, "base": {"ndcg@10": 0.25}},
        fit_seconds={},
        baselines=("base",),
    )
    assert report.winners() == {"ndcg@10": "b"}
    assert report.best() == "b"
    assert not report.beats_baselines("a")
    assert report.beats_baselines("b")


def test_bad_evaluations() -> None:
    empty = Split(
        train=Interactions(sp.csr_matrix(np.ones((2, 2))), np.arange(2), np.arange(2)),
        test=sp.csr_matrix((2, 2)),
        protocol="none",
    )
    with pytest.raises(ValidationFailed):
        evaluate(empty, {"m": MostPopular()}, baselines={})
    with pytest.raises(ValidationFailed):
        evaluate(small_split(), {"m": MostPopular()}, baselines={}, ks=(0,))
