"""Every ranking metric on tiny lists computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from patronage.errors import ValidationFailed
from patronage.recommend.evaluation import hit_matrix, ranking_metrics


def relevant(rows: list[list[int]], n_items: int = 10) -> sp.csr_matrix:
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [item for items in rows for item in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_hit_matrix_marks_relevant_positions_and_ignores_padding() -> None:
    recs = np.array([[3, 1, -1], [0, 2, 5]])
    hits = hit_matrix(recs, relevant([[1, 4], [5]]))
    assert hits.tolist() == [[False, True, False], [False, False, True]]


def test_single_user_two_relevant_one_hit_at_rank_two() -> None:
    # list [7, 3, 9], relevant {3, 4}: one hit, at rank 2
    m = ranking_metrics(np.array([[7, 3, 9]]), relevant([[3, 4]]), 3)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["hit_rate"] == 1.0
    # DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    dcg = 1 / math.log2(3)
    assert m["ndcg"] == pytest.approx(dcg / (1 + dcg))
    # AP@3 = (P@2 * 1) / min(3, 2) = (1/2) / 2
    assert m["map"] == pytest.approx(0.25)
    assert m["coverage"] == pytest.approx(3 / 10)


def test_perfect_list_scores_one() -> None:
    m = ranking_metrics(np.array([[2, 5, 1]]), relevant([[2, 5]]), 2)
    assert m == {
        "precision": 1.0,
        "recall": 1.0,
        "ndcg": 1.0,
        "hit_rate": 1.0,
        "map": 1.0,
        "coverage": 0.2,
    }


def test_means_over_users_and_cutoff() -> None:
    recs = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    rel = relevant([[4], [5, 9]])
    # at k = 3: user 0 has no hit (4 is at rank 4), user 1 hits 5 at rank 1
    m3 = ranking_metrics(recs, rel, 3)
    assert m3["precision"] == pytest.approx((0 + 1 / 3) / 2)
    assert m3["recall"] == pytest.approx((0 + 1 / 2) / 2)
    assert m3["hit_rate"] == pytest.approx(0.5)
    assert m3["ndcg"] == pytest.approx((0 + 1 / (1 + 1 / math.log2(3))) / 2)
    assert m3["map"] == pytest.approx((0 + 1 / 2) / 2)
    assert m3["coverage"] == pytest.approx(6 / 10)
    # at k = 4 user 0 hits at rank 4: DCG = 1/log2(5), IDCG = 1
    m4 = ranking_metrics(recs, rel, 4)
    assert m4["ndcg"] == pytest.approx((1 / math.log2(5) + 1 / (1 + 1 / math.log2(3))) / 2)
    assert m4["map"] == pytest.approx((1 / 4 + 1 / 2) / 2)
    assert m4["recall"] == pytest.approx((1 + 1 / 2) / 2)


def test_short_lists_are_padded_as_misses() -> None:
    m = ranking_metrics(np.array([[4]]), relevant([[4]]), 5)
    assert m["precision"] == pytest.approx(1 / 5)
    assert m["ndcg"] == 1.0
    assert m["map"] == 1.0


def test_two_hits_map_and_ndcg() -> None:
    # list [a, x, b] with a, b relevant (of 3 relevant): AP@3 = (1/1 + 2/3) / 3
    m = ranking_metrics(np.array([[0, 9, 1]]), relevant([[0, 1, 2]]), 3)
    assert m["map"] == pytest.approx((1 + 2 / 3) / 3)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"] == pytest.approx((1 + 1 / math.log2(4)) / idcg)
    assert m["recall"] == pytest.approx(2 / 3)


def test_rows_without_relevant_items_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        ranking_metrics(np.array([[1]]), relevant([[]]), 1)
    with pytest.raises(ValidationFailed):
        ranking_metrics(np.array([[1]]), relevant([[1]]), 0)
