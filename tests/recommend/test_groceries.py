"""Real baskets: the groceries data set (9,835 baskets, 169 items), one basket = one buyer.

Protocol: leave one item out of every basket with two or more items (seed 0), train on the
rest, recommend 20 items per basket without the items still in it. Values were computed
once and are pinned; ALS goes through BLAS kernels that may round differently on another
CPU, so its figures are pinned to 1e-3.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from patronage.recommend.algorithms.baselines import ImplicitModel
from patronage.recommend.algorithms.item_to_item import ItemToItem
from patronage.recommend.algorithms.popular import MostPopular
from patronage.recommend.evaluation import (
    DEFAULT_MODEL,
    IMPLICIT_BM25,
    Report,
    evaluate,
)
from patronage.recommend.interactions import Split, leave_one_out_split, read_baskets
from tests.conftest import unavailable

REPO = Path(__file__).resolve().parents[2]
GROCERIES = (REPO / ".." / "shared" / "data" / "groceries" / "groceries.csv").resolve()


@pytest.fixture(scope="module")
def split() -> Split:
    if not GROCERIES.is_file():
        unavailable(f"groceries data set not found at {GROCERIES} (shared/data beside the repo)")
    inter = read_baskets(GROCERIES)
    assert inter.matrix.shape == (9835, 169)
    assert inter.matrix.nnz == 43367
    return leave_one_out_split(inter, random_state=0)


def test_split(split: Split) -> None:
    assert split.eval_users.size == 7676
    assert split.test.nnz == 7676
    assert split.train.matrix.nnz == 43367 - 7676


def test_default_model_beats_the_baselines_on_ndcg_at_10(split: Split) -> None:
    report = evaluate(
        split,
        {DEFAULT_MODEL: ItemToItem()},
        baselines={
            "most-popular": MostPopular(),
            "implicit-bm25": ImplicitModel("bm25", options=IMPLICIT_BM25),
        },
        ks=(10,),
    )
    ndcg = {name: values["ndcg@10"] for name, values in report.metrics.items()}
    assert ndcg == {
        DEFAULT_MODEL: pytest.approx(0.21853024176432223, abs=1e-12),
        "most-popular": pytest.approx(0.20882526725933953, abs=1e-12),
        "implicit-bm25": pytest.approx(0.20599150264116695, abs=1e-12),
    }
    assert report.beats_baselines(DEFAULT_MODEL, "ndcg@10")
    assert report.winners()["ndcg@10"] == DEFAULT_MODEL
    # recall@10 = baskets whose held-out item is in the top 10 / 7,676
    assert report.metrics[DEFAULT_MODEL]["recall@10"] * 7676 == pytest.approx(3053)


@pytest.mark.slow
def test_full_report(split: Split) -> None:
    report = evaluate(split)
    expected = {
        # model: (ndcg@10, recall@10)
        "item-to-item": (0.21853024176432223, 0.3977331943720688),
        "item-to-item/cosine": (0.211454215020474, 0.3841844710786868),
        "item-to-item/smith-linden": (0.15273098092375628, 0.27253778009379886),
        "most-popular": (0.20882526725933953, 0.38144867118290776),
        "implicit-bm25": (0.20599150264116695, 0.37714955706096925),
    }
    for name, (ndcg, recall) in expected.items():
        assert report.metrics[name]["ndcg@10"] == pytest.approx(ndcg, abs=1e-12), name
        assert report.metrics[name]["recall@10"] == pytest.approx(recall, abs=1e-12), name
    assert report.metrics["als"]["ndcg@10"] == pytest.approx(0.08196439157231591, abs=1e-3)
    assert report.metrics["implicit-als"]["ndcg@10"] == pytest.approx(0.0590831390835749, abs=1e-3)
    assert report.best("ndcg@10") == DEFAULT_MODEL
    assert report.beats_baselines()
    winners = report.winners()
    assert winners["ndcg@10"] == DEFAULT_MODEL
    assert winners["coverage@10"] == "item-to-item/smith-linden"
    assert winners["recall@20"] == "implicit-bm25"
    _renders(report)


def _renders(report: Report) -> None:
    console = Console(record=True, width=200)
    console.print(report.table(ks=(10,)))
    text = console.export_text()
    assert "implicit-bm25 (baseline)" in text and "ndcg@10" in text
    as_dict = report.to_dict()
    assert as_dict["users"] == 7676 and as_dict["items"] == 169
    assert as_dict["winners"]["ndcg@10"] == DEFAULT_MODEL
