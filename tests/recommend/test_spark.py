"""The similar-items build on Spark local[2] gives the NumPy build's table on the demo shop.

Same item pairs, same ranks, scores equal to 1e-9 (against the NumPy build's float64 scores,
before the table rounds them to float32). The demo shop is small (1,500 customers) so the
JVM start dominates; one Spark session serves every case of the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sqlalchemy import select

from patronage import db
from patronage.demo import service as demo
from patronage.demo.generator import Plan
from patronage.errors import ValidationFailed
from patronage.recommend import repository as repo
from patronage.recommend import service, spark
from patronage.recommend.algorithms.item_to_item import build_table, pair_scores
from patronage.recommend.interactions import binarize, build_interactions
from patronage.recommend.models import SimilarItem

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

SHOP = Plan(customers=1500, seed=11)


@pytest.fixture(scope="module")
def session_of_spark() -> Iterator[Any]:
    yield spark.session()


@pytest.fixture
def bought(database: str) -> sp.csr_matrix:
    demo.run(SHOP)
    with db.transaction() as session:
        lines = repo.order_lines(session)
        ids = np.array([p.id for p in repo.all_products(session)], dtype=np.int64)
    matrix = build_interactions(
        lines.customer, lines.product, lines.quantity, item_ids=ids, weight="binary"
    ).matrix
    assert matrix.nnz > 5000  # a real shop, not a toy
    return binarize(matrix)


def numpy_rows(
    B: sp.csr_matrix, similarity: Any, k: int, alpha: float
) -> dict[tuple[int, int], tuple[int, float]]:
    """(item, neighbour) -> (rank, float64 score) of the NumPy build."""
    table = build_table(B, similarity=similarity, k=k, min_co_buyers=2, alpha=alpha)
    co, scores = pair_scores(B, similarity=similarity, min_co_buyers=2, alpha=alpha)
    exact = {
        (int(r), int(c)): float(s)
        for r, c, s in zip(
            np.repeat(np.arange(co.shape[0]), np.diff(co.indptr)), co.indices, scores, strict=True
        )
    }
    out = {}
    for x in range(table.shape[0]):
        lo, hi = table.indptr[x], table.indptr[x + 1]
        cols, vals = table.indices[lo:hi], table.data[lo:hi]
        for rank, j in enumerate(np.lexsort((cols, -vals))):
            out[(x, int(cols[j]))] = (rank, exact[(x, int(cols[j]))])
    return out


@pytest.mark.parametrize(
    ("similarity", "k", "alpha"),
    [("cosine", 20, 0.0), ("conditional", 50, 0.3), ("smith_linden", 20, 0.0)],
)
def test_spark_and_numpy_build_the_same_table(
    bought: sp.csr_matrix, session_of_spark: Any, similarity: str, k: int, alpha: float
) -> None:
    expected = numpy_rows(bought, similarity, k, alpha)
    x, y, rank, score = spark.scored_pairs(
        bought, similarity=similarity, k=k, min_co_buyers=2, alpha=alpha, spark=session_of_spark
    )
    got = {
        (int(a), int(b)): (int(r), float(s)) for a, b, r, s in zip(x, y, rank, score, strict=True)
    }
    assert len(expected) > 1000
    assert got.keys() == expected.keys()
    assert {p: r for p, (r, _) in got.items()} == {p: r for p, (r, _) in expected.items()}
    worst = max(abs(got[p][1] - expected[p][1]) for p in expected)
    assert worst <= 1e-9


def test_the_build_on_spark_serves_the_same_rows(
    bought: sp.csr_matrix, session_of_spark: Any
) -> None:
    def also_bought() -> list[tuple[int, int, int, float]]:
        with db.transaction() as session:
            rows = session.execute(
                select(
                    SimilarItem.product_id,
                    SimilarItem.rank,
                    SimilarItem.neighbour_id,
                    SimilarItem.score,
                )
                .where(
                    SimilarItem.build_id == repo.current_key(session)[0],  # type: ignore[index]
                    SimilarItem.kind == "also_bought",
                )
                .order_by(SimilarItem.product_id, SimilarItem.rank)
            )
            return [(int(a), int(b), int(c), float(d)) for a, b, c, d in rows]

    first = service.build(engine="duckdb")
    in_process = also_bought()
    second = service.build(engine="spark")
    on_spark = also_bought()
    assert second.id == first.id + 1 and second.detail and second.detail.endswith("(spark)")
    assert len(in_process) > 1000
    assert [r[:3] for r in on_spark] == [r[:3] for r in in_process]
    assert max(abs(a[3] - b[3]) for a, b in zip(on_spark, in_process, strict=True)) <= 1e-6


def test_an_unknown_engine_is_refused(database: str) -> None:
    with pytest.raises(ValidationFailed, match="unknown engine 'hadoop'"):
        service.build(engine="hadoop")
