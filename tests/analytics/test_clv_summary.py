"""Transaction log -> (frequency, recency, T, monetary value), edge cases by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from patronage.analytics.clv import summarize_transactions
from patronage.errors import ValidationFailed

LOG = [
    # customer, date, amount
    ("a", "2024-01-01", 10.0),
    ("a", "2024-01-01", 5.0),  # same day as the first purchase: still the first purchase
    ("a", "2024-01-08", 20.0),
    ("a", "2024-01-08", 4.0),  # same day: one repeat purchase of 24
    ("a", "2024-01-29", 30.0),
    ("a", "2024-02-12", 50.0),  # after the calibration end: holdout
    ("b", "2024-01-15", 7.0),  # one purchase only
    ("c", "2024-02-05", 9.0),  # first purchase after the calibration end: not in the cohort
    ("d", "2024-01-22", 12.0),
    ("d", "2024-01-29", -12.0),  # a refund larger than nothing: repeat spend is negative
    ("e", "2024-01-03", 3.0),
    ("e", "2024-09-01", 99.0),  # after the observation end (a future order): ignored
]


def summarize(**kwargs: object) -> object:
    ids, dates, amounts = zip(*LOG, strict=True)
    return summarize_transactions(ids, list(dates), amounts, **kwargs)  # type: ignore[arg-type]


def test_summary_by_hand() -> None:
    s = summarize(calibration_end="2024-01-29", observation_end="2024-02-26")
    assert s.customer_ids.tolist() == ["a", "b", "d", "e"]
    assert s.first_purchase.astype(str).tolist() == [
        "2024-01-01",
        "2024-01-15",
        "2024-01-22",
        "2024-01-03",
    ]
    assert s.frequency.tolist() == [2.0, 0.0, 1.0, 0.0]
    assert s.recency.tolist() == [4.0, 0.0, 1.0, 0.0]  # weeks from first to last purchase
    assert s.T.tolist() == [4.0, 2.0, 1.0, 26 / 7]
    assert s.monetary_value.tolist() == [27.0, 0.0, -12.0, 0.0]  # (24 + 30) / 2
    assert s.frequency_holdout is not None and s.frequency_holdout.tolist() == [1.0, 0, 0, 0]
    assert s.monetary_value_holdout is not None
    assert s.monetary_value_holdout.tolist() == [50.0, 0.0, 0.0, 0.0]
    assert s.duration_holdout == 4.0
    assert s.n_customers_after_calibration == 1
    assert s.n_transactions_after_observation == 1


def test_days_as_the_unit_and_no_holdout() -> None:
    s = summarize(calibration_end=date(2024, 1, 29), time_unit="D")
    assert s.T.tolist() == [28.0, 14.0, 7.0, 26.0]
    assert s.recency.tolist() == [28.0, 0.0, 7.0, 0.0]
    assert s.frequency_holdout is None and s.duration_holdout is None
    # with no observation end, anything after the calibration end is outside the window
    assert s.n_transactions_after_observation == 3


def test_aware_datetimes_are_taken_in_utc() -> None:
    plus_ten = timezone(timedelta(hours=10))
    s = summarize_transactions(
        ["x", "x", "x"],
        [
            datetime(2024, 3, 1, 23, 30, tzinfo=UTC),
            datetime(2024, 3, 2, 8, 0, tzinfo=plus_ten),  # 2024-03-01 22:00 UTC: same day
            datetime(2024, 3, 8, 12, 0, tzinfo=UTC),
        ],
        [1.0, 2.0, 3.0],
        calibration_end=datetime(2024, 3, 15, 1, 0, tzinfo=plus_ten),  # 2024-03-14 UTC
        time_unit="D",
    )
    assert s.frequency.tolist() == [1.0]
    assert s.recency.tolist() == [7.0]
    assert s.T.tolist() == [13.0]


def test_numpy_dates_and_integer_amounts() -> None:
    s = summarize_transactions(
        np.array([7, 7, 9]),
        np.array(["2024-01-01", "2024-01-15", "2024-01-02"], dtype="datetime64[D]"),
        np.array([1250, 990, 500]),  # minor units stay minor units
        calibration_end=np.datetime64("2024-01-29"),
    )
    assert s.customer_ids.tolist() == [7, 9]
    assert s.monetary_value.tolist() == [990.0, 0.0]


def test_empty_log_gives_an_empty_summary() -> None:
    s = summarize_transactions([], [], [], calibration_end="2024-01-01")
    assert len(s) == 0


@pytest.mark.parametrize(
    ("ids", "dates", "amounts", "kwargs", "message"),
    [
        (["a"], ["2024-01-01"], [1.0, 2.0], {}, "differ in length"),
        (["a"], ["not a date"], [1.0], {}, "dates must be dates"),
        (["a"], [None], [1.0], {}, "1 transactions have no date"),
        (["a"], ["2024-01-01"], [float("inf")], {}, "1 amounts are not finite"),
        (["a"], ["2024-01-01"], [1.0], {"time_unit": "Y"}, "time_unit must be one of D, W"),
        (["a"], ["2024-01-01"], [1.0], {"observation_end": "2023-01-01"}, "before calibration"),
        (["a"], ["2024-01-01"], [1.0], {"calibration_end": "soon"}, "calibration_end is not"),
    ],
)
def test_bad_logs_are_refused(
    ids: list, dates: list, amounts: list, kwargs: dict, message: str
) -> None:
    arguments = {"calibration_end": "2024-02-01", **kwargs}
    with pytest.raises(ValidationFailed, match=message):
        summarize_transactions(ids, dates, amounts, **arguments)
