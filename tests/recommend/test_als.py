"""ALS through implicit, folded in with NumPy for histories it never saw."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from patronage.errors import ValidationFailed
from patronage.recommend.algorithms.als import ALS


def blocks() -> sp.csr_matrix:
    # two groups of customers buying from two groups of items
    rows, cols = [], []
    for u in range(40):
        group = u % 2
        for i in range(5):
            if (u + i) % 3:
                rows.append(u)
                cols.append(group * 5 + i)
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(40, 10))


def test_learns_the_groups_and_folds_in_new_histories() -> None:
    X = blocks()
    model = ALS(factors=4, iterations=10, regularization=0.1, random_state=0).fit(X)
    assert model.user_factors_.shape == (40, 4)
    assert model.item_factors_.shape == (10, 4)
    # a new customer who bought items 0 and 1 gets the rest of group 0 first
    ids, _ = model.recommend(sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 1])), shape=(1, 10)), 3)
    assert set(ids[0].tolist()) == {2, 3, 4}
    # folding a training row in gives its fitted factors back, nearly
    folded = model.fold_in(X[:4])
    assert np.allclose(folded, model.user_factors_[:4], atol=0.05)
    by_row, _ = model.recommend(X[:6], 3, users=np.arange(6))
    by_fold, _ = model.recommend(X[:6], 3)
    # nearly equal factors: the same three items, near-ties may swap places
    assert np.array_equal(np.sort(by_row, axis=1), np.sort(by_fold, axis=1))
    # an empty history has zero factors: every score is 0, ties to the lower item
    ids, scores = model.recommend(sp.csr_matrix((1, 10)), 2)
    assert ids.tolist() == [[0, 1]] and scores.tolist() == [[0.0, 0.0]]
    assert model.explain(np.array([0, 1]), np.array([2, 7, -1]))[2] == -1


def test_bad_input() -> None:
    with pytest.raises(ValidationFailed):
        ALS(weighting="tfidf").fit(blocks())  # type: ignore[arg-type]
    model = ALS(factors=2, iterations=2).fit(blocks())
    with pytest.raises(ValidationFailed):
        model.recommend(blocks()[:2], 3, users=np.array([0]))
