"""BG/NBD against the published CDNOW results and lifetimes 0.11.3, plus its failure modes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.special import hyp2f1

from patronage.analytics.clv import BetaGeoFitter, ModelNotReady, dumps, loads
from patronage.analytics.clv.bgnbd import future_factor, row_log_likelihood
from patronage.errors import ValidationFailed
from tests.data.cdnow import cdnow


@pytest.fixture(scope="module")
def summary() -> dict[str, np.ndarray]:
    return cdnow.load_summary()


@pytest.fixture(scope="module")
def bgf(summary: dict[str, np.ndarray]) -> BetaGeoFitter:
    return BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])


def test_cdnow_parameters_equal_the_published_ones(bgf: BetaGeoFitter) -> None:
    # Fader, Hardie & Lee (2005), section 4: r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4
    assert bgf.converged_ is True
    assert bgf.message_ == "converged"
    assert {k: round(v, 3) for k, v in bgf.params_.items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }
    assert round(bgf.log_likelihood_, 1) == -9582.4
    assert bgf.n_customers_ == 2357
    assert 0 < bgf.n_iter_ < 100


def test_paper_conditional_expectation_example(bgf: BetaGeoFitter) -> None:
    # the paper's worked example: x=2, t_x=30.43, T=38.86 expects 1.226 purchases in 39 weeks
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86)
    assert round(float(expected[0]), 3) == 1.226


def test_probability_alive_matches_lifetimes(bgf: BetaGeoFitter, summary: dict) -> None:
    alive = bgf.conditional_probability_alive(
        summary["frequency"][:5], summary["recency"][:5], summary["T"][:5]
    )
    # lifetimes 0.11.3 on the same file: [0.72660914, 0.21222739, 1, 1, 1]
    np.testing.assert_allclose(alive, [0.72660914, 0.21222739, 1.0, 1.0, 1.0], atol=2e-6)
    risk = bgf.churn_risk(summary["frequency"][:5], summary["recency"][:5], summary["T"][:5])
    np.testing.assert_allclose(risk, 1.0 - alive, atol=1e-15)
    assert risk[2:].tolist() == [0.0, 0.0, 0.0]  # no repeat purchase: never seen to drop out


def test_next_week_predictions_match_lifetimes_documentation(
    bgf: BetaGeoFitter, summary: dict
) -> None:
    # lifetimes' quickstart: the five customers with the most purchases predicted next week
    predicted = bgf.predict(1, summary["frequency"], summary["recency"], summary["T"])
    top = np.argsort(predicted)[-5:]
    assert summary["ID"][top].astype(int).tolist() == [509, 841, 1981, 157, 1516]
    # printed to 6 decimals there; lifetimes' optimiser stops a hair away from ours
    np.testing.assert_allclose(
        predicted[top], [0.424877, 0.474738, 0.486526, 0.662396, 0.710623], atol=1.5e-6
    )


def test_unconditional_expectation(bgf: BetaGeoFitter) -> None:
    # eq. 9; lifetimes 0.11.3 gives 1.1950162 for t=39 with its own (near-identical) fit
    assert round(float(bgf.expected_number_of_purchases_up_to_time(39)[0]), 4) == 1.1950
    assert bgf.expected_number_of_purchases_up_to_time([0.0]).tolist() == [0.0]
    values = bgf.expected_number_of_purchases_up_to_time([1.0, 10.0, 52.0, 520.0])
    assert np.all(np.diff(values) > 0)


def test_analytic_gradient_matches_finite_differences(summary: dict) -> None:
    x, tx, t = summary["frequency"], summary["recency"], summary["T"]
    params = np.array([0.3, 5.0, 0.7, 2.0])
    _, grad = row_log_likelihood(params, x, tx, t)
    for j in range(4):
        step = np.zeros(4)
        step[j] = 1e-6 * params[j]
        up = row_log_likelihood(params + step, x, tx, t)[0].sum()
        down = row_log_likelihood(params - step, x, tx, t)[0].sum()
        numeric = (up - down) / (2 * step[j])
        assert grad[:, j].sum() == pytest.approx(numeric, rel=1e-6)


def test_euler_transformed_expectation_equals_the_textbook_form() -> None:
    params = np.array([0.243, 4.414, 0.793, 2.426])
    r, alpha, a, b = params
    x = np.array([0.0, 1.0, 2.0, 7.0, 15.0])
    T = np.array([38.86, 30.0, 38.86, 20.0, 35.0])
    t = np.array([39.0, 5.0, 39.0, 52.0, 1.0])
    z = t / (alpha + T + t)
    textbook = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
    )
    np.testing.assert_allclose(future_factor(params, x, T, t), textbook, rtol=1e-12)


def test_heavy_buyers_do_not_overflow(bgf: BetaGeoFitter) -> None:
    # the textbook 2F1(r+x, b+x; ...) is inf from x ~ 1000 (52 weeks ahead); the transformed
    # form stays finite
    x = np.array([500.0, 2000.0, 5000.0])
    with np.errstate(all="raise"):
        expected = bgf.predict(52, x, [39.0] * 3, [39.0] * 3)
        alive = bgf.conditional_probability_alive(x, [30.0] * 3, [39.0] * 3)
    # bought this week: alive, and expected to keep buying at the rate shown
    assert np.all(np.isfinite(expected))
    assert np.all(np.diff(expected) > 0)
    assert np.round(expected, 1).tolist() == [427.6, 1710.5, 4276.4]
    # silent for 9 weeks after buying 13+ times a week: certainly gone, and no overflow
    assert np.all(alive < 1e-47)


def test_weights_give_the_same_fit(summary: dict) -> None:
    table = np.column_stack([summary["frequency"], summary["recency"], summary["T"]])
    unique, counts = np.unique(table, axis=0, return_counts=True)
    weighted = BetaGeoFitter().fit(unique[:, 0], unique[:, 1], unique[:, 2], weights=counts)
    assert weighted.n_customers_ == 2357
    assert {k: round(v, 3) for k, v in weighted.params_.items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }


def test_penalizer_shrinks_parameters(summary: dict) -> None:
    plain = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    shrunk = BetaGeoFitter(penalizer=0.1).fit(
        summary["frequency"], summary["recency"], summary["T"]
    )
    assert shrunk.converged_
    assert shrunk.params_["alpha"] < plain.params_["alpha"]
    assert shrunk.log_likelihood_ < plain.log_likelihood_


def test_json_round_trip_predicts_identically(bgf: BetaGeoFitter, summary: dict) -> None:
    text = dumps(bgf)
    assert "pickle" not in text
    restored = loads(text)
    assert isinstance(restored, BetaGeoFitter)
    assert restored.params_ == bgf.params_
    assert restored.log_likelihood_ == bgf.log_likelihood_
    assert restored.get_params() == bgf.get_params()
    args = (summary["frequency"], summary["recency"], summary["T"])
    assert np.array_equal(restored.predict(39, *args), bgf.predict(39, *args))
    assert dumps(restored) == text


def test_unfitted_model_is_saved_and_refuses_to_predict() -> None:
    model = loads(dumps(BetaGeoFitter(penalizer=0.5)))
    assert isinstance(model, BetaGeoFitter)
    assert model.penalizer == 0.5
    with pytest.raises(ModelNotReady, match="not fitted"):
        model.conditional_probability_alive([1], [2], [3])


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([], [], [], "no customers given"),
        ([1, 2], [5, 6], [4, 10], "1 customers: recency is greater than T"),
        ([-1], [0], [5], "frequency is negative"),
        ([1.5], [2], [5], "not a whole number"),
        ([1], [float("nan")], [5], "missing or not a finite number"),
        ([2], [0], [5], "repeat purchases recorded but recency is 0"),
        ([0], [3], [5], "no repeat purchases but recency is not 0"),
        ([1, 2], [1], [3, 4], "differ in length"),
        ([[1, 2]], [[1, 2]], [[3, 4]], "one-dimensional"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    frequency: list, recency: list, T: list, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        BetaGeoFitter().fit(frequency, recency, T)


def test_no_repeat_purchases_is_a_flag_not_nan() -> None:
    model = BetaGeoFitter().fit([0, 0, 0], [0, 0, 0], [10, 20, 30])
    assert model.converged_ is False
    assert model.message_ == (
        "no customer made a repeat purchase, so purchase rates cannot be estimated"
    )
    assert model.params_ == {}
    with pytest.raises(ModelNotReady, match="did not converge: no customer made a repeat"):
        model.predict(10, [0], [0], [10])
    assert '"log_likelihood": null' in dumps(model)


def test_three_customer_shop_is_reported_not_crashed() -> None:
    # three steady buyers and no sign of anyone dropping out: the optimiser drifts to r ~ 1e8,
    # a ~ 3e-8 and stops "successfully"; the flat curvature there exposes it
    model = BetaGeoFitter().fit([5, 6, 4], [30, 31, 29], [31, 31, 30])
    assert model.converged_ is False
    # which parameters come out flat depends on the last bits of the BLAS in use
    flat = re.fullmatch(
        r"the data cannot identify ([a-z, ]+): the likelihood is flat along them"
        r" \(too few customers, or too few repeat purchases or drop-outs\)",
        model.message_,
    )
    assert flat is not None, model.message_
    names = flat.group(1).split(", ")
    assert len(names) >= 2 and set(names) <= {"r", "alpha", "a", "b"}
    with pytest.raises(ModelNotReady, match="did not converge: the data cannot identify"):
        model.conditional_probability_alive([5], [30], [31])


def test_iteration_limit_is_reported(summary: dict) -> None:
    model = BetaGeoFitter(max_iter=2).fit(summary["frequency"], summary["recency"], summary["T"])
    assert model.converged_ is False
    assert model.message_ == "no convergence within max_iter=2 iterations"


def test_bad_hyperparameters_and_saved_data() -> None:
    with pytest.raises(ValidationFailed, match="penalizer"):
        BetaGeoFitter(penalizer=-1).fit([1], [1], [2])
    with pytest.raises(ValidationFailed, match="not a saved BetaGeoFitter"):
        BetaGeoFitter.from_dict({"model": "GammaGammaFitter"})
    with pytest.raises(ValidationFailed, match="unsupported version 9"):
        BetaGeoFitter.from_dict({"model": "BetaGeoFitter", "version": 9})
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        loads("{")
    with pytest.raises(ValidationFailed, match="unknown saved model"):
        loads('{"model": "os.system"}')
