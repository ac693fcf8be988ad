"""Jobs of the recommend capability: the nightly rebuild and an on-demand one.

A rebuild is idempotent in effect: it writes a new build and flips the pointer, so a retried
or doubled run only replaces the tables with equal ones.
"""

from __future__ import annotations

from huey import crontab

from patronage import jobs
from patronage.recommend import service

NIGHTLY_HOUR = 3  # UTC, after the analytics snapshot


@jobs.periodic_task(crontab(minute="30", hour=str(NIGHTLY_HOUR)), name="recommend.nightly_build")
def nightly_build() -> None:
    """Every night at 03:30 UTC."""
    service.build()


@jobs.task(name="recommend.build")
def build() -> None:
    """A rebuild now, on demand (console button, API)."""
    service.build()
