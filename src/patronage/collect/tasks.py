"""Jobs of the collect capability: large imports run by a worker; the processor of the
tracking API's landed messages runs in every worker too.

A retried job re-runs the whole import in one transaction; imports upsert by external id,
so a second run after a crash changes nothing that the first one committed.
"""

from __future__ import annotations

from patronage import jobs
from patronage.collect import imports


@jobs.task(name="collect.import_run", retries=0)
def import_run(run_id: int, action: str) -> None:
    """Validate or import a recorded upload (see collect.imports.process)."""
    imports.process(run_id, action)


@jobs.on_worker_start
def ingest_processor() -> None:
    """Landed tracking messages are processed by workers too (whatever the server's mode)."""
    from patronage.collect import processor

    processor.ensure_running()
