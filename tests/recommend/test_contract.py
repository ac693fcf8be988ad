"""The estimator contract, one suite for every model (DESIGN.md): hyperparameters in
__init__, fit returns self, learned attributes end in _, random_state reproduces, save/load
without pickle gives the same answers."""

from __future__ import annotations

import inspect
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from patronage.errors import Conflict, ValidationFailed
from patronage.recommend.algorithms.als import ALS
from patronage.recommend.algorithms.base import Recommender
from patronage.recommend.algorithms.item_to_item import ItemToItem
from patronage.recommend.algorithms.popular import MostPopular


def data() -> sp.csr_matrix:
    rng = np.random.default_rng(4)
    X = sp.random(120, 30, density=0.15, random_state=rng, format="csr", dtype=np.float32)
    X.data = np.ceil(X.data * 3)
    return X


MODELS = [
    lambda: ItemToItem(random_state=0),
    lambda: ItemToItem(similarity="smith_linden", n_neighbours=5, random_state=0),
    lambda: ItemToItem(similarity="cosine", min_co_buyers=1, random_state=0),
    lambda: MostPopular(random_state=0),
    lambda: ALS(factors=8, iterations=5, random_state=3),
    lambda: ALS(factors=4, iterations=3, weighting="none", random_state=3),
]


@pytest.fixture(params=range(len(MODELS)), ids=lambda i: f"model{i}")
def make(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return MODELS[request.param]


def test_hyperparameters_are_init_arguments_stored_as_is(make) -> None:  # type: ignore[no-untyped-def]
    model: Recommender = make()
    params = model.get_params()
    names = [p for p in inspect.signature(type(model).__init__).parameters if p != "self"]
    assert list(params) == names
    assert "random_state" in params
    assert not any(name.endswith("_") for name in params)
    assert repr(model).startswith(type(model).__name__ + "(")


def test_fit_returns_self_and_learns_underscored_attributes(make) -> None:  # type: ignore[no-untyped-def]
    model: Recommender = make()
    assert not model.is_fitted
    with pytest.raises(Conflict):
        model.recommend(data()[:2], 3)
    with pytest.raises(Conflict):
        model.save("unused.npz")
    before = set(vars(model))
    assert model.fit(data()) is model
    learned = set(vars(model)) - before
    assert learned and all(name.endswith("_") for name in learned)
    assert set(model._learned) <= learned


def test_random_state_reproduces(make) -> None:  # type: ignore[no-untyped-def]
    X = data()
    a, _ = make().fit(X).recommend(X[:20], 5)
    b, _ = make().fit(X).recommend(X[:20], 5)
    assert np.array_equal(a, b)


def test_save_and_load_without_pickle_give_the_same_lists(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    X = data()
    model = make().fit(X)
    path = model.save(tmp_path / "model.npz")
    with zipfile.ZipFile(path) as archive:
        assert "__meta__.npy" in archive.namelist()
    with np.load(path, allow_pickle=False) as arrays:  # would raise on object arrays
        assert all(arrays[name].dtype != object for name in arrays.files)
    loaded = type(model).load(path)
    assert loaded.get_params() == model.get_params()
    ids, scores = model.recommend(X[:25], 6)
    ids2, scores2 = loaded.recommend(X[:25], 6)
    assert np.array_equal(ids, ids2)
    assert np.array_equal(scores, scores2)


def test_load_refuses_another_models_file(tmp_path: Path) -> None:
    path = MostPopular().fit(data()).save(tmp_path / "popular.npz")
    with pytest.raises(ValidationFailed):
        ItemToItem.load(path)


def test_results_do_not_depend_on_threads_or_blocks() -> None:
    X = data()
    base = ItemToItem(similarity="smith_linden", min_co_buyers=1).fit(X).neighbours_
    other = ItemToItem(
        similarity="smith_linden", min_co_buyers=1, num_threads=2, block_items=7
    ).fit(X)
    assert np.array_equal(base.indptr, other.neighbours_.indptr)
    assert np.array_equal(base.indices, other.neighbours_.indices)
    assert np.allclose(base.data, other.neighbours_.data, rtol=1e-6)
