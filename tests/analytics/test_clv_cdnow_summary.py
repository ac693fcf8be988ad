"""The CDNOW cohort rebuilt from the raw transactions, and the calibration / holdout check."""

from __future__ import annotations

import numpy as np
import pytest

from patronage.analytics.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    calibration_holdout,
    summarize_transactions,
)
from tests.data.cdnow import cdnow


@pytest.fixture(scope="module")
def master() -> cdnow.Master:
    return cdnow.Master()


@pytest.fixture(scope="module")
def sample(master: cdnow.Master) -> np.ndarray:
    return master.sample_ids()


@pytest.fixture(scope="module")
def rebuilt(master: cdnow.Master, sample: np.ndarray) -> dict[str, np.ndarray]:
    """Our summary of the sampled customers, in the shipped order (ID 1..2,357)."""
    ids, dates, dollars = master.transactions_of(sample)
    summary = summarize_transactions(
        ids,
        dates,
        dollars,
        calibration_end=cdnow.CALIBRATION_END,
        observation_end=cdnow.OBSERVATION_END,
    )
    position = np.searchsorted(summary.customer_ids, sample)
    assert np.array_equal(summary.customer_ids[position], sample)
    assert summary.frequency_holdout is not None
    return {
        "frequency": summary.frequency[position],
        "recency": summary.recency[position],
        "T": summary.T[position],
        "monetary": summary.monetary_value[position],
        "holdout": summary.frequency_holdout[position],
    }


def test_master_file(master: cdnow.Master) -> None:
    assert len(master) == 69_659
    assert len(np.unique(master.customer_ids)) == 23_570
    assert str(master.dates.min()) == "1997-01-01"
    assert str(master.dates.max()) == "1998-06-30"


def test_the_sample_is_the_published_one(sample: np.ndarray) -> None:
    assert len(sample) == 2_357
    assert len(np.unique(sample)) == 2_357
    # the master ids of the first sampled customers, as in Hardie's CDNOW_sample file
    assert sample[:12].tolist() == [4, 21, 50, 71, 86, 111, 112, 113, 114, 131, 133, 151]


def test_summary_equals_the_shipped_summary_for_every_customer(rebuilt: dict) -> None:
    shipped = cdnow.load_summary()
    assert np.array_equal(shipped["ID"], np.arange(1, 2_358))
    assert np.array_equal(rebuilt["frequency"], shipped["frequency"])
    # the shipped file prints weeks to 2 decimals: equal once rounded the same way
    assert np.array_equal(np.round(rebuilt["recency"], 2), shipped["recency"])
    assert np.array_equal(np.round(rebuilt["T"], 2), shipped["T"])
    assert np.max(np.abs(rebuilt["recency"] - shipped["recency"])) <= 0.005
    assert np.max(np.abs(rebuilt["T"] - shipped["T"])) <= 0.005


def test_mean_repeat_spend_equals_the_shipped_zbar(rebuilt: dict) -> None:
    shipped = cdnow.load_summary_with_transactions()
    assert np.array_equal(rebuilt["frequency"], shipped["x"])
    assert np.array_equal(np.round(rebuilt["T"], 2), shipped["T"])
    # zbar is rounded half-up to cents (e.g. 44.69 / 2 = 22.345 -> 22.35)
    cents = np.floor(rebuilt["monetary"] * 100 + 0.5 + 1e-9) / 100
    assert np.array_equal(np.round(cents, 2), shipped["zbar"])


def test_models_on_the_rebuilt_summary_give_the_published_parameters(rebuilt: dict) -> None:
    bgf = BetaGeoFitter().fit(rebuilt["frequency"], rebuilt["recency"], rebuilt["T"])
    assert {k: round(v, 3) for k, v in bgf.params_.items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }
    assert round(bgf.log_likelihood_, 1) == -9582.4
    # Fader & Hardie's Gamma-Gamma note: p=6.25, q=3.74, gamma=15.44, from exact mean spends
    ggf = GammaGammaFitter().fit(rebuilt["frequency"], rebuilt["monetary"])
    assert ggf.converged_
    assert {k: round(v, 2) for k, v in ggf.params_.items()} == {
        "p": 6.25,
        "q": 3.74,
        "gamma": 15.44,
    }
    assert round(ggf.population_mean_ or 0.0, 2) == 35.17


def test_calibration_holdout_on_cdnow(master: cdnow.Master, sample: np.ndarray) -> None:
    ids, dates, dollars = master.transactions_of(sample)
    report = calibration_holdout(
        ids,
        dates,
        dollars,
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
    )
    assert report.converged
    assert report.customers == 2_357
    assert report.holdout_length == 39.0
    assert {k: round(v, 3) for k, v in report.params.items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }
    assert [b.label for b in report.buckets] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert [b.customers for b in report.buckets] == [1411, 439, 214, 100, 62, 38, 29, 64]
    assert [b.actual for b in report.buckets] == [334, 306, 298, 156, 157, 112, 112, 407]
    assert [round(b.predicted or 0.0, 1) for b in report.buckets] == [
        317.6,
        229.7,
        223.4,
        152.0,
        134.2,
        100.8,
        101.6,
        394.1,
    ]
    # weeks 40-78: 1,882 repeat purchases happened; BG/NBD expected 1,653.4 (-12.1%), under-
    # predicting the 1-2 purchase buckets as the paper's conditional-expectation chart shows
    assert report.total_actual == 1_882
    assert round(report.total_predicted or 0.0, 1) == 1653.4
    assert report.customers_after_calibration == 0
    assert report.transactions_after_observation == 0
    as_dict = report.to_dict()
    assert as_dict["calibration_end"] == "1997-09-30"
    assert as_dict["buckets"][7] == {
        "label": "7+",
        "customers": 64,
        "actual": 407,
        "predicted": pytest.approx(394.056, abs=1e-3),
        "actual_mean": pytest.approx(6.359375),
        "predicted_mean": pytest.approx(6.15713, abs=1e-5),
    }
