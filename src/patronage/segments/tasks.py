"""Jobs of the segments capability.

- `segments.refresh_customers`: queued after a commit that stored events, orders or traits
  of some customers; re-evaluates only them (idempotent: it writes the difference).
- `segments.time_based`: every 15 minutes, full rebuild of the segments whose answer changes
  with time alone ("not bought in 90 days").
- `segments.nightly`: every segment at 04:00 UTC, after the analytics refresh (03:00) has
  rewritten features and scores.
- `segments.personas`: 04:20 UTC, the personas re-clustered from the fresh features (ids and
  names kept by matching the previous centroids).
- `segments.next_category`: 04:40 UTC, every buyer's next categories, and the holdout
  evaluation against the most-popular baseline.
"""

from __future__ import annotations

from huey import crontab

from patronage import jobs
from patronage.db import transaction
from patronage.errors import ValidationFailed
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


@jobs.periodic_task(crontab(minute="20", hour=str(NIGHTLY_HOUR)), name="segments.personas")
def personas() -> int:
    """The number of personas; 0 when no customer has analytics features yet."""
    try:
        with transaction() as session:
            return service.refresh_personas(session).k or 0
    except ValidationFailed:
        return 0


@jobs.periodic_task(crontab(minute="40", hour=str(NIGHTLY_HOUR)), name="segments.next_category")
def next_category() -> int:
    with transaction() as session:
        run = service.refresh_next_categories(session)
        service.evaluate_next_category(session)
        return run.customers
