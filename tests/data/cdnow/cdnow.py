"""Readers for the vendored CDNOW files, and the 1/10 sample drawn exactly as published.

How the shipped 2,357-customer summary was drawn from the 23,570 customers (Hardie's "Notes on
the CDNOW master data set", reproduced here and checked row by row in
tests/analytics/test_clv_cdnow_summary.py):

1. day 1 = 1997-01-01; a customer's trial day is their first purchase day, their trial week
   (trial day - 1) // 7 + 1 (weeks 1..12: the first quarter of 1997);
2. repeat spend = total spend in days 1..273 (39 weeks, to 1997-09-30) minus the spend on the
   trial day, both summed in file order in double precision. The float sums matter: equal
   amounts in cents (e.g. 11.77 bought once, or 75.11 - 63.34) differ in the last bits and
   that order decides which of the tied customers is drawn (integer cents do not reproduce
   the sample; the float sums do, for all 2,357);
3. sort all customers by trial week (ascending), repeat spend (descending), customer id
   (ascending; a stable sort of the id-ordered file), and take every 10th from the 10th;
4. number the drawn customers 1..2,357 by trial day, then customer id: the ID column.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
MASTER = HERE / "CDNOW_master.txt"
SUMMARY = HERE / "cdnow_customers_summary.csv"
WITH_TRANSACTIONS = HERE / "cdnow_customers_summary_with_transactions.csv"

DAY_ZERO = np.datetime64("1996-12-31", "D")
CALIBRATION_END = np.datetime64("1997-09-30", "D")  # day 273: 39 weeks
OBSERVATION_END = np.datetime64("1998-06-30", "D")  # day 546: 78 weeks

Columns = dict[str, npt.NDArray[np.float64]]


def _read_csv(path: Path) -> Columns:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return {name: np.array([float(r[i]) for r in body]) for i, name in enumerate(header)}


def load_summary() -> Columns:
    """ID, frequency, recency, T (weeks) of the 2,357 sampled customers."""
    return _read_csv(SUMMARY)


def load_summary_with_transactions() -> Columns:
    """ID, x, t_x, T, zbar: the same customers with their mean repeat spend (dollars)."""
    return _read_csv(WITH_TRANSACTIONS)


class Master:
    """All 69,659 transactions of the 23,570 customers, in file order."""

    def __init__(self, path: Path = MASTER) -> None:
        table = np.loadtxt(path, skiprows=1, dtype=np.str_)
        self.customer_ids = table[:, 0].astype(np.int64)
        self.dates = np.array(
            [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in table[:, 1]], dtype="datetime64[D]"
        )
        self.cds = table[:, 2].astype(np.int64)
        self.dollars = table[:, 3].astype(np.float64)
        self.days = (self.dates - DAY_ZERO).astype(np.int64)

    def __len__(self) -> int:
        return len(self.customer_ids)

    def sample_ids(self) -> npt.NDArray[np.int64]:
        """Master ids of the published 1/10 sample, in the order of the shipped summary."""
        ids, code = np.unique(self.customer_ids, return_inverse=True)
        trial = np.full(len(ids), np.iinfo(np.int64).max)
        np.minimum.at(trial, code, self.days)
        week = (trial - 1) // 7 + 1
        calibration = self.days <= CALIBRATION_END.astype(np.int64) - DAY_ZERO.astype(np.int64)
        on_trial_day = self.days == trial[code]
        # np.bincount adds each bin's weights in input order: the file order of the original
        total = np.bincount(code, weights=np.where(calibration, self.dollars, 0.0))
        trial_spend = np.bincount(code, weights=np.where(on_trial_day, self.dollars, 0.0))
        repeat_spend = total - trial_spend
        order = np.lexsort((ids, -repeat_spend, week))
        drawn = order[9::10]
        return ids[drawn[np.lexsort((ids[drawn], trial[drawn]))]]

    def transactions_of(
        self, customer_ids: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.datetime64], npt.NDArray[np.float64]]:
        keep = np.isin(self.customer_ids, customer_ids)
        return self.customer_ids[keep], self.dates[keep], self.dollars[keep]
