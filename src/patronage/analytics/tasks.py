"""Jobs of the analytics capability: the nightly statistics snapshot and an on-demand one.

Both are idempotent (a snapshot is keyed by its UTC day and replaces the day's earlier one),
so a retry, a re-enqueued interrupted task or a catch-up run never adds a row.
"""

from __future__ import annotations

import logging

from huey import crontab

from patronage import jobs
from patronage.analytics import service
from patronage.db import transaction

log = logging.getLogger("patronage.analytics")


def _nightly_missed() -> bool:
    with transaction() as session:
        return service.nightly_missed(session)


def _snapshot() -> None:
    with transaction() as session:
        kpis = service.take_snapshot(session)
    log.info("statistics snapshot taken in %d ms", kpis.duration_ms)


@jobs.periodic_task(
    crontab(minute="0", hour=str(service.NIGHTLY_HOUR)),
    name="analytics.nightly_snapshot",
    catch_up=_nightly_missed,
)
def nightly_snapshot() -> None:
    """Every night at 02:00 UTC (and when a worker starts after a missed night)."""
    _snapshot()


@jobs.task(name="analytics.snapshot")
def snapshot() -> None:
    """A snapshot now, on demand."""
    _snapshot()


@jobs.periodic_task(
    crontab(minute="0", hour=str(service.ANALYTICS_HOUR)),
    name="analytics.nightly_refresh",
)
def nightly_refresh() -> None:
    """Every night at 03:00 UTC: features, RFM, CLV / churn scores for every customer.

    No catch-up on worker start (unlike the snapshot): a refresh is heavy, and a missed night
    is visible (`analytics show` gives its time); `service.analytics_refresh_missed` tells.
    """
    _refresh()


def _refresh() -> None:
    with transaction() as session:
        result = service.refresh_customer_analytics(session)
    log.info(
        "analytics refresh: %d customers, %d buyers in %d ms",
        result.customers,
        result.buyers,
        result.duration_ms,
    )


@jobs.task(name="analytics.refresh")
def refresh_now() -> None:
    """An analytics refresh now, on demand (the Analytics page's "Refresh now")."""
    _refresh()
