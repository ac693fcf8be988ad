"""The background processor of the tracking API: drains the landing table continuously.

One daemon thread per process (every server worker, `patronage worker`), started on first
use; the lock inside `service.process_pending` lets one of them work at a time per database.
A killed process loses nothing: its transaction rolls back and the messages stay landed.
A micro-batch that fails is retried message by message; a message that fails on its own is
set aside (`event_landing.failed`) so that it never blocks the ones behind it.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from patronage import db
from patronage.collect import service

log = logging.getLogger("patronage.collect.processor")

IDLE_POLL = 0.05  # seconds between looks at an empty landing table
# Acknowledging comes first. While the API is landing messages (the newest landing id moved,
# in any process), the processor works in smaller micro-batches and rests YIELD times as long
# as each took: it shares the CPU and its process's interpreter lock with the requests. When
# the API is quiet it drains the backlog at full speed (PROCESS_BATCH messages a transaction).
YIELD = 1.0
BUSY_BATCH = 1000
_started: dict[int, threading.Thread] = {}  # pid -> thread (a forked child starts its own)
_guard = threading.Lock()


def ensure_running() -> None:
    pid = os.getpid()
    thread = _started.get(pid)
    if thread is not None and thread.is_alive():
        return
    with _guard:
        thread = _started.get(pid)
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=_run, name="patronage-ingest", daemon=True)
            thread.start()
            _started[pid] = thread


def _run() -> None:
    newest = None
    while True:
        started = time.monotonic()
        try:
            with db.transaction() as session:
                latest = service.newest_landing(session)
            busy, newest = latest != newest, latest
            processed = drain_once(BUSY_BATCH if busy else service.PROCESS_BATCH, wait=False)
        except Exception as exc:  # the database is away: try again later, never die
            log.warning("ingest processor: %s; retrying in 1 s", type(exc).__name__)
            time.sleep(1.0)
            continue
        if processed == 0:
            time.sleep(IDLE_POLL)
        elif busy:
            time.sleep((time.monotonic() - started) * YIELD)


def drain_once(limit: int = service.PROCESS_BATCH, *, wait: bool = True) -> int:
    """One micro-batch in its own transaction; returns the messages taken (0: none, or
    another processor holds the lock)."""
    try:
        with db.transaction() as session:
            return service.process_pending(session, limit, wait=wait).messages
    except Exception as exc:
        if limit == 1:
            raise
        # messages never carry into logs (personal data): the error's type only
        log.warning(
            "ingest processor: a micro-batch failed (%s); retrying it message by message",
            type(exc).__name__,
        )
    taken = 0
    for _ in range(limit):
        try:
            done = drain_once(1, wait=True)
        except Exception as exc:
            with db.transaction() as session:
                service.set_aside_oldest(session, f"processing failed: {type(exc).__name__}")
            log.warning("ingest processor: a message set aside (%s)", type(exc).__name__)
            done = 1
        if done == 0:
            break
        taken += done
    return taken


def drain(limit: int = service.PROCESS_BATCH) -> int:
    """Process everything landed so far (a worker's start, the benchmark, tests)."""
    total = 0
    while True:
        done = drain_once(limit, wait=True)
        if done == 0:
            return total
        total += done
