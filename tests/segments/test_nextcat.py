"""Next category: transition / co-purchase statistics, predictions and the holdout, with
answers worked out by hand (no database)."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from patronage.errors import Conflict, ValidationFailed
from patronage.segments.nextcat import Lines, NextCategoryModel, histories, holdout

# customer, placed, order, category (4 categories)
ROWS = [
    (1, 10, 1, 0),
    (1, 20, 2, 0),
    (1, 20, 2, 1),
    (2, 10, 3, 0),
    (2, 30, 4, 1),
    (2, 40, 5, 2),
    (3, 10, 6, 0),
    (3, 15, 7, 3),
]


def lines(rows: list[tuple[int, int, int, int]] = ROWS, n: int = 4) -> Lines:
    a = np.array(rows, dtype=np.int64)
    return Lines(a[:, 0], a[:, 1], a[:, 2], a[:, 3], n)


def test_contract_params_fit_returns_self_json_round_trip() -> None:
    model = NextCategoryModel(random_state=2)
    names = [p for p in inspect.signature(NextCategoryModel.__init__).parameters if p != "self"]
    assert list(model.get_params()) == names and "random_state" in names
    with pytest.raises(Conflict):
        model.predict(histories(lines()))
    assert model.fit(lines()) is model
    again = NextCategoryModel.from_dict(json.loads(json.dumps(model.to_dict())))
    h = histories(lines())
    for a, b in zip(model.predict(h, 3), again.predict(h, 3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_statistics_by_hand() -> None:
    m = NextCategoryModel().fit(lines())
    # orders holding 0 and followed by another: 1, 3, 6; their next orders bring new 1, 1, 3
    np.testing.assert_allclose(m.transition_[0], [0, 2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(m.transition_[1], [0, 0, 1, 0])  # order 4 -> order 5 brings 2
    # customers who bought 0: 1, 2, 3; of them bought 1: 1, 2; 2: customer 2; 3: customer 3
    np.testing.assert_allclose(m.copurchase_[0], [0, 2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(m.copurchase_[1], [1, 0, 1 / 2, 0])
    np.testing.assert_allclose(m.popularity_, [1, 2 / 3, 1 / 3, 1 / 3])
    assert (m.n_customers_, m.n_transitions_) == (3, 4)


def test_predictions_exclude_bought_and_pad() -> None:
    h = histories(lines())
    np.testing.assert_array_equal(h.customers, [1, 2, 3])
    np.testing.assert_array_equal(h.bought.toarray(), [[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 1]])
    np.testing.assert_array_equal(h.last.toarray(), [[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    ids, scores = NextCategoryModel().fit(lines()).predict(h, 3)
    np.testing.assert_array_equal(ids, [[2, 3, -1], [3, -1, -1], [1, 2, -1]])
    # customer 1: last order {0, 1}; category 2 = 1.0 * (0 + 1) / 2 + 0.5 * (1/3 + 1/2) / 2
    # + 0.1 * 1/3
    assert scores[0, 0] == pytest.approx(0.5 + 0.5 * (1 / 3 + 1 / 2) / 2 + 0.1 / 3)
    assert np.isneginf(scores[0, 2])
    baseline_ids, _ = NextCategoryModel(0, 0, 1).fit(lines()).predict(h, 1)
    np.testing.assert_array_equal(baseline_ids, [[2], [3], [1]])  # ties: the lower index


def test_holdout_against_the_baseline_in_one_run() -> None:
    result = holdout(lines(), 18, [1, 3])
    # train: before 18; customers 1 and 2 buy new categories after it (1; 1 and 2), 3 does not
    assert (result.customers, result.train_lines) == (2, 4)
    # trained on orders 1, 3, 6, 7: only 0 -> 3 is a transition; both customers get 3 first
    assert result.hit_rate == {1: 0.0, 3: 1.0}
    assert result.recall == {1: 0.0, 3: 1.0}
    assert result.baseline_hit_rate == {1: 0.0, 3: 1.0}
    empty = holdout(lines(), 0, [1])
    assert (empty.customers, empty.hit_rate) == (0, {1: 0.0})


def test_bad_input() -> None:
    with pytest.raises(ValidationFailed):
        NextCategoryModel(0, 0, 0).fit(lines())
    with pytest.raises(ValidationFailed):
        NextCategoryModel(-1).fit(lines())
    with pytest.raises(ValidationFailed):
        lines([(1, 1, 1, 9)])
    with pytest.raises(ValidationFailed):
        Lines(np.zeros(2, np.int64), np.zeros(1, np.int64), np.zeros(2, np.int64),
              np.zeros(2, np.int64), 1)  # fmt: skip
    with pytest.raises(ValidationFailed):
        NextCategoryModel().fit(lines()).predict(histories(lines()), 0)
    with pytest.raises(ValidationFailed):
        holdout(lines(), 18, [0])
