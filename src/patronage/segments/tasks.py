"""Jobs of the segments capability.

- `segments.refresh_customers`: queued after a commit that stored events, orders or traits
  of some customers; re-evaluates only them (idempotent: it writes the difference).
- `segments.time_based`: every 15 minutes, full rebuild of the segments whose answer changes
  with time alone ("not bought in 90 days").
- `segments.nightly`: every segment at 04:00 UTC, after the analytics refresh (03:00) has
  rewritten features and scores.
"""

from __future__ import annotations

from huey import crontab

from patronage import jobs
from patronage.db import transaction
from patronage.segments import service

NIGHTLY_HOUR = 4


@jobs.task(name="segments.refresh_customers")
def refresh_customers(customer_ids: list[int], topics: list[str] | None = None) -> int:
    with transaction() as session:
        return service.refresh_customers(
            session, customer_ids, set(topics) if topics is not None else None
        )


@jobs.periodic_task(crontab(minute="*/15"), name="segments.time_based")
def time_based() -> int:
    with transaction() as session:
        return len(service.evaluate_time_based(session))


@jobs.periodic_task(crontab(minute="0", hour=str(NIGHTLY_HOUR)), name="segments.nightly")
def nightly() -> int:
    with transaction() as session:
        return len(service.evaluate(session))


@jobs.task(name="segments.evaluate_all")
def evaluate_all() -> int:
    """Every segment now (after the built-ins were created; console and API button)."""
    with transaction() as session:
        return len(service.evaluate(session))
