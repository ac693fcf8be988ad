"""Personas: the estimator contract with known answers, words, stable labels (no database)."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from patronage.errors import Conflict, ValidationFailed
from patronage.segments import personas
from patronage.segments.personas import PersonaModel

NAMES = ["age", "metropolitan", "orders", "aov_minor", "category:1"]
CENTRES = np.array(
    [
        [25.0, 1.0, 12.0, 20.0, 0.9],  # young metropolitan, often, electronics
        [65.0, 0.0, 1.0, 80.0, 0.0],  # older remote, rarely, large baskets
        [45.0, 0.5, 5.0, 50.0, 0.3],
    ]
)


def blobs(n_per: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(3), n_per)
    noise = rng.normal(scale=[2.0, 0.05, 0.8, 3.0, 0.03], size=(len(truth), len(NAMES)))
    return CENTRES[truth] + noise, truth


def test_hyperparameters_in_init_and_learned_attributes_underscored() -> None:
    model = PersonaModel(k_min=2, k_max=5, random_state=3)
    names = [p for p in inspect.signature(PersonaModel.__init__).parameters if p != "self"]
    assert list(model.get_params()) == names
    assert model.get_params()["random_state"] == 3
    assert repr(model).startswith("PersonaModel(k_min=2, k_max=5")
    assert not model.is_fitted
    with pytest.raises(Conflict):
        model.predict(np.zeros((2, 5)))
    with pytest.raises(Conflict):
        model.to_dict()
    X, _ = blobs()
    assert model.fit(X, NAMES) is model
    learned = [a for a in vars(model) if a.endswith("_") and not a.startswith("_")]
    assert sorted(learned) == sorted(
        [
            "mean_",
            "scale_",
            "silhouette_",
            "k_",
            "silhouettes_",
            "feature_names_in_",
            "n_features_in_",
            "cluster_centers_",
            "labels_",
        ]
    )


def test_known_answer_three_blobs_are_found_and_k_is_three() -> None:
    X, truth = blobs()
    model = PersonaModel(k_min=2, k_max=6, random_state=0).fit(X, NAMES)
    assert model.k_ == 3
    assert sorted(model.silhouettes_) == [2, 3, 4, 5, 6]
    assert model.silhouette_ == max(model.silhouettes_.values())
    # every true blob is exactly one cluster
    pairs = {(int(t), int(label)) for t, label in zip(truth, model.labels_, strict=True)}
    assert len(pairs) == 3 and len({label for _, label in pairs}) == 3
    # centres come back in the input's units
    order = np.argsort(model.cluster_centers_[:, 0])
    np.testing.assert_allclose(model.cluster_centers_[order], CENTRES[[0, 2, 1]], atol=0.5)


def test_random_state_reproduces_and_json_round_trip_predicts_the_same() -> None:
    X, _ = blobs(seed=5)
    a = PersonaModel(k_min=2, k_max=4, random_state=7).fit(X, NAMES)
    b = PersonaModel(k_min=2, k_max=4, random_state=7).fit(X, NAMES)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    text = json.dumps(a.to_dict())  # JSON: no pickle anywhere
    c = PersonaModel.from_dict(json.loads(text))
    np.testing.assert_array_equal(c.predict(X), a.labels_)
    assert (c.k_, c.feature_names_in_, c.get_params()) == (a.k_, NAMES, a.get_params())
    with pytest.raises(ValidationFailed):
        PersonaModel.from_dict({"format": "pickle"})


@pytest.mark.parametrize(
    ("params", "X", "problem"),
    [
        ({"k_min": 1}, np.zeros((10, 2)), "k must satisfy"),
        ({"k_min": 5, "k_max": 3}, np.zeros((10, 2)), "k must satisfy"),
        ({"silhouette_sample": 10}, np.zeros((10, 2)), "samples must hold"),
        ({}, np.zeros((10,)), "2-d matrix"),
        ({}, np.array([[1.0, np.nan], [2.0, 3.0]]), "finite"),
        ({}, np.zeros((3, 2)), "too few"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    params: dict[str, int], X: np.ndarray, problem: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        PersonaModel(**params).fit(X)
    assert problem in str(exc.value.detail)


def test_a_small_shop_clamps_k_to_the_customers() -> None:
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    model = PersonaModel(k_min=2, k_max=8).fit(X)
    assert (model.k_, sorted(model.silhouettes_)) == (2, [2, 3])
    assert model.labels_[0] == model.labels_[1] != model.labels_[2] == model.labels_[3]


def test_words_from_z_scores() -> None:
    labels = {"category:1": "electronics"}
    d = personas.describe(np.array([-1.2, 0.9, 0.8, -0.6, 2.0]), NAMES, labels)
    assert d.text == "young metropolitan customers who buy electronics often in small baskets"
    assert d.name == "Young metropolitan electronics buyers"
    assert [t["feature"] for t in d.traits] == [
        "category:1",
        "age",
        "metropolitan",
        "orders",
        "aov_minor",
    ]
    assert d.traits[0] == {"feature": "category:1", "z": 2.0, "phrase": "electronics"}
    # under the threshold: nothing to say
    flat = personas.describe(np.array([0.1, -0.2, 0.0, 0.1, 0.05]), NAMES, labels)
    assert (flat.name, flat.text, flat.traits) == (
        "Average customers",
        "customers close to the average",
        [],
    )
    # only verbs
    v = personas.describe(np.array([3.0, -0.9]), ["return_rate", "sessions_30d"])
    assert v.text == "customers who return a lot and rarely visit"
    assert v.name == "Customers who return a lot"
    # a cluster without orders: its order-based features are not described
    nothing = personas.describe(
        np.array([-1.0, 0.5, -2.0, -1.5, -0.9]), NAMES, labels, never_bought=True
    )
    assert nothing.name == "Young customers who have not ordered yet"
    assert nothing.text == "young metropolitan customers who have not ordered yet"
    assert [t["feature"] for t in nothing.traits] == ["age", "metropolitan"]
    assert personas.unique_names(["A", "A", "B"], {"B"}) == ["A", "A (2)", "B (2)"]
    longer = ["A who x", "A who y", ""]
    assert personas.unique_names(["A", "A", "B"], {"B"}, longer) == ["A who x", "A who y", "B (2)"]


def test_matching_keeps_previous_ids_and_refuses_far_ones() -> None:
    scale = np.ones(2)
    names = ["x", "y"]
    previous = {7: {"x": 0.0, "y": 0.0}, 9: {"x": 10.0, "y": 10.0}, 4: {"x": -20.0, "y": 0.0}}
    centres = np.array([[10.2, 9.9], [50.0, 50.0], [0.1, -0.1]])
    assert personas.match(centres, names, previous, scale) == {0: 9, 2: 7}
    # features the previous run did not have are left out of the distance
    assert personas.match(centres[:, :1], ["x"], {1: {"y": 0.0}}, scale[:1]) == {}
    assert personas.match(centres, names, {}, scale) == {}


def test_customers_that_do_not_differ_still_give_an_answer() -> None:
    model = PersonaModel(k_min=2, k_max=3).fit(np.ones((12, 4)))
    assert model.silhouettes_ == {2: -1.0, 3: -1.0}
    assert model.k_ == 2 and set(model.labels_.tolist()) <= {0, 1}
