"""Gamma-Gamma spend model and CLV against Fader & Hardie's note and lifetimes 0.11.3."""

from __future__ import annotations

import numpy as np
import pytest

from patronage.analytics.clv import BetaGeoFitter, GammaGammaFitter, ModelNotReady, dumps, loads
from patronage.analytics.clv.gamma_gamma import row_log_likelihood
from patronage.errors import ValidationFailed
from tests.data.cdnow import cdnow


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return cdnow.load_summary_with_transactions()


@pytest.fixture(scope="module")
def ggf(data: dict[str, np.ndarray]) -> GammaGammaFitter:
    return GammaGammaFitter().fit(data["x"], data["zbar"])


@pytest.fixture(scope="module")
def bgf(data: dict[str, np.ndarray]) -> BetaGeoFitter:
    return BetaGeoFitter().fit(data["x"], data["t_x"], data["T"])


def test_fit_on_the_shipped_summary(ggf: GammaGammaFitter) -> None:
    # The note's p=6.25, q=3.74, gamma=15.44 come from exact mean spends; this file rounds zbar
    # to cents, which moves gamma to 15.4477 (lifetimes 0.11.3: 6.248803, 3.744588, 15.447748).
    # test_clv_cdnow_summary.py reproduces 15.44 from the unrounded spends.
    assert ggf.converged_ is True
    assert {k: round(v, 2) for k, v in ggf.params_.items()} == {
        "p": 6.25,
        "q": 3.74,
        "gamma": 15.45,
    }
    np.testing.assert_allclose(
        list(ggf.params_.values()), [6.248803, 3.744588, 15.447748], rtol=1e-5
    )
    # 946 repeat customers fitted; the 1,411 without a repeat purchase are left out and counted
    assert ggf.n_customers_ == 946
    assert ggf.n_excluded_ == {
        "no_repeat_purchases": 1411,
        "not_finite": 0,
        "non_positive_monetary_value": 0,
    }


def test_expected_average_spend_matches_lifetimes_documentation(
    ggf: GammaGammaFitter, data: dict
) -> None:
    spend = ggf.conditional_expected_average_profit(data["x"], data["zbar"])
    # lifetimes' quickstart on this file, printed to 6 decimals
    np.testing.assert_allclose(
        spend[:10],
        [
            *(24.658619, 18.911489, 35.170981, 35.170981, 35.170981),
            *(71.462843, 18.911489, 35.170981, 27.282408, 35.170981),
        ],
        atol=1e-4,
    )
    assert round(float(spend.mean()), 4) == 35.2530  # lifetimes: 35.2529588256
    assert round(float(data["zbar"][data["x"] > 0].mean()), 6) == 35.078552
    # no repeat purchase: the population mean p gamma / (q - 1)
    assert ggf.population_mean_ == pytest.approx(float(spend[2]), abs=1e-12)
    assert round(ggf.population_mean_ or 0.0, 2) == 35.17


def test_analytic_gradient_matches_finite_differences(data: dict) -> None:
    repeat = data["x"] > 0
    x, m = data["x"][repeat], data["zbar"][repeat]
    params = np.array([5.0, 3.0, 12.0])
    _, grad = row_log_likelihood(params, x, m)
    for j in range(3):
        step = np.zeros(3)
        step[j] = 1e-6 * params[j]
        numeric = (
            row_log_likelihood(params + step, x, m)[0].sum()
            - row_log_likelihood(params - step, x, m)[0].sum()
        ) / (2 * step[j])
        assert grad[:, j].sum() == pytest.approx(numeric, rel=1e-6)


def test_clv_matches_lifetimes(ggf: GammaGammaFitter, bgf: BetaGeoFitter, data: dict) -> None:
    clv = ggf.customer_lifetime_value(
        bgf, data["x"][:5], data["t_x"][:5], data["T"][:5], data["zbar"][:5], time=12
    )
    # lifetimes 0.11.3, customer_lifetime_value(bgf, ..., time=12, discount_rate=0.01, freq="W")
    np.testing.assert_allclose(clv, [36.278496, 4.637466, 8.344093, 8.344093, 8.344093], rtol=2e-5)


def test_clv_is_the_sum_of_discounted_monthly_purchases(
    ggf: GammaGammaFitter, bgf: BetaGeoFitter, data: dict
) -> None:
    x, tx, T, m = data["x"], data["t_x"], data["T"], data["zbar"]
    for freq, per_month in (("W", 4.345), ("D", 30.0)):
        scale = 7.0 if freq == "D" else 1.0
        bg = bgf if freq == "W" else BetaGeoFitter().fit(x, tx * 7, T * 7)
        clv = ggf.customer_lifetime_value(
            bg, x, tx * scale, T * scale, m, time=6, discount_rate=0.02, freq=freq, margin=0.3
        )
        spend = ggf.conditional_expected_average_profit(x, m)
        expected = np.zeros(len(x))
        for k in range(1, 7):
            step = bg.predict(k * per_month, x, tx * scale, T * scale) - bg.predict(
                (k - 1) * per_month, x, tx * scale, T * scale
            )
            expected += 0.3 * spend * step / 1.02**k
        np.testing.assert_allclose(clv, expected, rtol=1e-10, atol=1e-12)


def test_json_round_trip(ggf: GammaGammaFitter, data: dict) -> None:
    restored = loads(dumps(ggf))
    assert isinstance(restored, GammaGammaFitter)
    assert restored.params_ == ggf.params_
    assert restored.n_excluded_ == ggf.n_excluded_
    assert np.array_equal(
        restored.conditional_expected_average_profit(data["x"], data["zbar"]),
        ggf.conditional_expected_average_profit(data["x"], data["zbar"]),
    )


def test_bad_spend_is_excluded_and_counted(data: dict, ggf: GammaGammaFitter) -> None:
    # refunds can leave a mean repeat spend at or below zero; a missing value can come in too
    x = np.r_[data["x"], [0, 2, 3, 2]]
    m = np.r_[data["zbar"], [0.0, -5.0, 0.0, float("nan")]]
    model = GammaGammaFitter().fit(x, m)
    assert model.n_excluded_ == {
        "no_repeat_purchases": 1412,
        "not_finite": 1,
        "non_positive_monetary_value": 2,
    }
    assert model.n_customers_ == 946
    assert model.params_ == pytest.approx(ggf.params_, rel=1e-9)
    with pytest.raises(ValidationFailed, match="2 customers with repeat purchases have a zero"):
        model.conditional_expected_average_profit([1, 2, 0], [0.0, -1.0, 0.0])


def test_too_few_spenders_is_a_flag() -> None:
    model = GammaGammaFitter().fit([0, 0, 2], [0.0, 0.0, 25.0])
    assert model.converged_ is False
    assert model.message_ == (
        "1 customer(s) with a repeat purchase and a positive spend;"
        " at least 2 are needed to estimate spend heterogeneity"
    )
    with pytest.raises(ModelNotReady, match="Gamma-Gamma fit did not converge: 1 customer"):
        model.conditional_expected_average_profit([2], [25.0])


@pytest.mark.parametrize(
    ("frequency", "spend", "message"),
    [
        ([], [], "no customers given"),
        ([1, -1], [3.0, 4.0], "whole numbers"),
        ([1.5], [3.0], "whole numbers"),
        ([1, 2], [3.0], "differ in length"),
    ],
)
def test_bad_input(frequency: list, spend: list, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        GammaGammaFitter().fit(frequency, spend)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time": 0}, "whole number of months"),
        ({"time": 1.5}, "whole number of months"),
        ({"discount_rate": -1.0}, "monthly rate"),
        ({"freq": "Y"}, "freq must be one of W, M, D, H"),
        ({"margin": -0.1}, "margin"),
    ],
)
def test_bad_clv_terms(
    ggf: GammaGammaFitter, bgf: BetaGeoFitter, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        ggf.customer_lifetime_value(bgf, [1], [2.0], [3.0], [10.0], **kwargs)
