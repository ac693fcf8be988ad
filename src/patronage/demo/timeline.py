"""The demo shop's calendar: a fixed end date, three years of history, seasonality.

Times are int64 seconds since the Unix epoch (UTC) while generating, and NumPy
``datetime64[s]`` when written. Nothing depends on today's date: the same seed gives the
same shop whenever and wherever it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

DAY = 86_400
HOUR = 3_600
HISTORY_DAYS = 3 * 365
DEFAULT_UNTIL = date(2026, 6, 30)

# relative demand by calendar month (Jan..Dec) and weekday (Mon..Sun)
MONTH_DEMAND = np.array([0.85, 0.82, 0.92, 0.95, 1.0, 0.9, 0.88, 0.88, 0.98, 1.05, 1.3, 1.65])
WEEKDAY_DEMAND = np.array([0.95, 0.9, 0.9, 0.95, 1.0, 1.22, 1.28])
# preferred hours of day (centre, share): morning, lunch, evening, late evening
HOUR_PEAKS = ((8.0, 0.14), (12.5, 0.2), (20.0, 0.5), (22.5, 0.16))


@dataclass(frozen=True)
class Timeline:
    start: int  # first second of the shop's history
    end: int  # first second after it ("now" of the demo)
    demand: np.ndarray  # relative demand per day, mean 1
    cumulative: np.ndarray  # demand integrated over days: operational time, len days + 1

    @property
    def days(self) -> int:
        return len(self.demand)

    def to_operational(self, seconds: np.ndarray) -> np.ndarray:
        """Calendar seconds -> operational days (demand-weighted time)."""
        day = (seconds - self.start) / DAY
        return np.asarray(np.interp(day, np.arange(self.days + 1), self.cumulative))

    def to_day(self, operational: np.ndarray) -> np.ndarray:
        """Operational days -> index of the calendar day (busy days take more purchases)."""
        index = np.searchsorted(self.cumulative, operational, side="right") - 1
        return np.clip(index, 0, self.days - 1)


def timeline(until: date = DEFAULT_UNTIL) -> Timeline:
    end = int(datetime(until.year, until.month, until.day, tzinfo=UTC).timestamp()) + DAY
    start = end - HISTORY_DAYS * DAY
    days = np.arange(HISTORY_DAYS)
    calendar = np.datetime64(datetime.fromtimestamp(start, UTC).date(), "D") + days
    months = calendar.astype("datetime64[M]").astype(np.int64) % 12
    day_of_month = (calendar - calendar.astype("datetime64[M]")).astype(np.int64) + 1
    weekday = (calendar.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    demand = MONTH_DEMAND[months] * WEEKDAY_DEMAND[weekday]
    # Black Friday week and the last shopping days before Christmas; quiet between the years
    demand = np.where((months == 10) & (day_of_month >= 22), demand * 1.6, demand)
    demand = np.where((months == 11) & (day_of_month >= 24), demand * 0.55, demand)
    demand = demand / demand.mean()
    cumulative = np.concatenate([[0.0], np.cumsum(demand)])
    return Timeline(start, end, demand, cumulative)


def as_datetime64(seconds: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """Epoch seconds -> datetime64[s]; `missing` marks NULLs (NaT)."""
    out = seconds.astype("datetime64[s]")
    if missing is not None:
        out = np.where(missing, np.datetime64("NaT", "s"), out)
    return out


def weekday_of(seconds: np.ndarray) -> np.ndarray:
    """0 = Monday .. 6 = Sunday (UTC)."""
    return (seconds // DAY + 3) % 7


def to_datetime(seconds: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(seconds))
