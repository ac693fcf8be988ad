"""Jobs of the auth capability: forget expired sessions and stale login failures, hourly."""

from __future__ import annotations

import logging

from huey import crontab

from patronage import jobs
from patronage.auth import service
from patronage.db import transaction

log = logging.getLogger("patronage.auth")


@jobs.periodic_task(crontab(minute="17"), name="auth.prune")
def prune() -> None:
    """Idempotent: deleting what is already gone deletes nothing."""
    with transaction() as session:
        removed = service.prune(session)
    log.info("pruned %d expired sessions", removed)
