"""Scoring a whole shop: bad rows get a reason and no number, the rest are still computed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patronage.analytics.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    calibration_holdout,
    score_customers,
)
from patronage.errors import ValidationFailed
from tests.data.cdnow import cdnow


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return cdnow.load_summary_with_transactions()


@pytest.fixture(scope="module")
def models(data: dict) -> tuple[BetaGeoFitter, GammaGammaFitter]:
    return (
        BetaGeoFitter().fit(data["x"], data["t_x"], data["T"]),
        GammaGammaFitter().fit(data["x"], data["zbar"]),
    )


def test_scores_equal_the_model_methods(models: tuple, data: dict) -> None:
    bgf, ggf = models
    x, tx, T, m = data["x"], data["t_x"], data["T"], data["zbar"]
    scores = score_customers(bgf, ggf, x, tx, T, m, horizon=39, clv_months=12, chunk_size=500)
    assert scores.counts() == {}
    # the same formulas, grouped differently: equal to the last bits of a double
    np.testing.assert_allclose(
        scores.p_alive, bgf.conditional_probability_alive(x, tx, T), rtol=1e-13
    )
    np.testing.assert_allclose(scores.churn_risk, bgf.churn_risk(x, tx, T), rtol=1e-12)
    np.testing.assert_allclose(scores.expected_purchases, bgf.predict(39, x, tx, T), rtol=1e-13)
    np.testing.assert_array_equal(
        scores.expected_spend, ggf.conditional_expected_average_profit(x, m)
    )
    np.testing.assert_allclose(
        scores.clv, ggf.customer_lifetime_value(bgf, x, tx, T, m, time=12), rtol=1e-13
    )
    # the paper's example customer (ID 1): x=2, t_x=30.43, T=38.86
    first = next(scores.to_records())
    assert round(first["p_alive"], 4) == 0.7266
    assert round(first["churn_risk"], 4) == 0.2734
    assert round(first["expected_purchases"], 3) == 1.226
    assert round(first["expected_spend"], 2) == 24.66
    assert round(first["clv"], 2) == 36.28
    assert first["problems"] == []


def test_chunking_does_not_change_results(models: tuple, data: dict) -> None:
    bgf, ggf = models
    args = (data["x"], data["t_x"], data["T"], data["zbar"])
    whole = score_customers(bgf, ggf, *args, horizon=10)
    pieces = score_customers(bgf, ggf, *args, horizon=10, chunk_size=7)
    for name in ("p_alive", "churn_risk", "expected_purchases", "expected_spend", "clv"):
        np.testing.assert_allclose(getattr(pieces, name), getattr(whole, name), rtol=1e-13)


def test_bad_rows_get_reasons_and_the_rest_is_computed(models: tuple) -> None:
    bgf, ggf = models
    frequency = [2, 1, 0, 3, -1, 2, 1, 2, 1.5]
    recency = [30.43, 1.71, 0.0, 20.0, 0.0, 40.0, 5.0, float("nan"), 3.0]
    T = [38.86, 38.86, 38.86, 30.0, 10.0, 39.0, 10.0, 20.0, 5.0]
    spend = [22.35, 11.77, 0.0, 0.0, 5.0, 10.0, -4.0, 10.0, 10.0]
    scores = score_customers(bgf, ggf, frequency, recency, T, spend, horizon=39)
    assert scores.counts() == {
        "not_finite": 1,
        "negative_frequency": 1,
        "fractional_frequency": 1,
        "recency_after_T": 1,
        "non_positive_monetary_value": 2,
    }
    rows = list(scores.to_records())
    # rows 0-2 are fine: x=0 gets the population mean spend
    assert all(rows[i]["problems"] == [] for i in range(3))
    assert rows[2]["p_alive"] == 1.0 and round(rows[2]["expected_spend"], 2) == 35.17
    # a zero or negative mean spend (refunds): purchases still scored, spend and CLV are not
    for i in (3, 6):
        assert rows[i]["problems"] == ["non_positive_monetary_value"]
        assert rows[i]["p_alive"] is not None and rows[i]["expected_purchases"] is not None
        assert rows[i]["expected_spend"] is None and rows[i]["clv"] is None
    assert rows[4]["problems"] == ["negative_frequency"]
    assert rows[5]["problems"] == ["recency_after_T"]
    assert rows[7]["problems"] == ["not_finite"]
    assert rows[8]["problems"] == ["fractional_frequency"]
    for i in (4, 5, 7, 8):
        assert all(rows[i][k] is None for k in ("p_alive", "churn_risk", "clv"))
    assert scores.reasons(5) == [
        "recency is greater than T (last purchase after the end of the period)"
    ]
    # nothing shown is NaN: every number is a real number, the rest are None
    for row in rows:
        for key, value in row.items():
            assert key == "problems" or value is None or math.isfinite(value)


def test_an_unfitted_spend_model_still_gives_purchases(models: tuple, data: dict) -> None:
    bgf, _ = models
    failed = GammaGammaFitter().fit([0, 0, 1], [0.0, 0.0, 3.0])
    scores = score_customers(
        bgf, failed, data["x"][:3], data["t_x"][:3], data["T"][:3], data["zbar"][:3], horizon=5
    )
    assert scores.counts() == {"spend_model_not_ready": 3}
    assert np.all(np.isfinite(scores.p_alive))
    assert np.all(np.isnan(scores.clv)) and np.all(np.isnan(scores.expected_spend))
    no_spend = score_customers(bgf, None, [1], [2.0], [3.0], horizon=5)
    assert no_spend.counts() == {"spend_model_not_ready": 1}
    without_values = score_customers(bgf, models[1], [1], [2.0], [3.0], horizon=5)
    assert without_values.counts() == {"no_spend_given": 1}


def test_a_shop_of_three_customers(models: tuple) -> None:
    bgf = BetaGeoFitter().fit([5, 6, 4], [30, 31, 29], [31, 31, 30])
    ggf = GammaGammaFitter().fit([5, 6, 4], [20.0, 25.0, 30.0])
    assert not bgf.converged_
    scores = score_customers(
        bgf, ggf, [5, 6, 4], [30, 31, 29], [31, 31, 30], [20.0, 25.0, 30.0], horizon=4
    )
    assert scores.counts()["purchase_model_not_ready"] == 3
    assert all(row["clv"] is None and row["p_alive"] is None for row in scores.to_records())
    assert "purchase model is not fitted or did not converge" in scores.reasons(0)[0]


def test_bad_terms(models: tuple) -> None:
    bgf, ggf = models
    with pytest.raises(ValidationFailed, match="horizon"):
        score_customers(bgf, ggf, [1], [1.0], [2.0], [3.0], horizon=-1)
    with pytest.raises(ValidationFailed, match="differ in length"):
        score_customers(bgf, ggf, [1, 2], [1.0], [2.0], [3.0], horizon=1)


def test_holdout_report_when_the_model_cannot_be_fitted() -> None:
    # nobody came back in the calibration period: actuals are reported, predictions are not
    report = calibration_holdout(
        ["a", "b", "c", "a"],
        ["2024-01-01", "2024-01-05", "2024-01-09", "2024-03-01"],
        [10.0, 12.0, 9.0, 15.0],
        calibration_end="2024-01-31",
        observation_end="2024-03-31",
    )
    assert report.converged is False
    assert report.message.startswith("no customer made a repeat purchase")
    assert report.total_actual == 1
    assert report.total_predicted is None
    assert report.buckets[0].customers == 3 and report.buckets[0].actual == 1
    assert report.buckets[0].predicted is None and report.buckets[1].actual_mean is None
    with pytest.raises(ValidationFailed, match="no customer made a first purchase"):
        calibration_holdout(
            ["a"], ["2024-05-01"], [1.0], calibration_end="2024-01-31", observation_end="2024-06-01"
        )
    with pytest.raises(ValidationFailed, match="observation_end must be after"):
        calibration_holdout(
            ["a"], ["2024-01-01"], [1.0], calibration_end="2024-01-31", observation_end="2024-01-31"
        )
