"""The background processor of the tracking API: drains the landing table continuously.

It runs in a child process of every server process and of `patronage worker`, started on
first use, at a lower CPU priority (`nice`): acknowledging comes first, and the operating
system's scheduler gives the requests the CPU whenever both want it, while the processor
takes every idle cycle. A process of its own also keeps it off the request threads'
interpreter lock (as a thread of a server worker it stretched a batch's latency several
times over while it held the lock). One processor per database and machine is active (a
file lock; the others wait on it and take over if it dies), and the lock inside
`service.process_pending` lets one work at a time per database across machines.

A killed process loses nothing: its transaction rolls back and the messages stay landed.
A micro-batch that fails is retried message by message; a message that fails on its own is
set aside (`event_landing.failed`) so that it never blocks the ones behind it. The child
exits when the process that started it is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from patronage import db
from patronage.collect import service
from patronage.config import get_settings

log = logging.getLogger("patronage.collect.processor")

IDLE_POLL = 0.05  # seconds between looks at an empty landing table
# While the API is landing messages (the newest landing id moved, in any process), the
# processor works in smaller micro-batches: shorter transactions, sooner to give way.
BUSY_BATCH = 1000
_started: dict[int, subprocess.Popen[bytes]] = {}  # pid -> child (a forked server has its own)
_guard = threading.Lock()


def ensure_running() -> None:
    """This process's processor child, started once (again if it died)."""
    pid = os.getpid()
    child = _started.get(pid)
    if child is not None and child.poll() is None:
        return
    with _guard:
        child = _started.get(pid)
        if child is None or child.poll() is not None:
            _started[pid] = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", "patronage.collect.processor", str(pid)],
                stdin=subprocess.DEVNULL,
            )


def lock_path() -> Path:
    """One lock file per database (the URL's digest, never the URL: it may hold a password)."""
    url = get_settings().resolved_database_url
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"patronage-ingest-{digest}.lock"


@contextlib.contextmanager
def _the_only_one(parent: int) -> Iterator[bool]:
    """Hold this machine's processor lock for the database; False when the parent went away
    while waiting for it."""
    try:
        import fcntl
    except ImportError:  # Windows: no file lock; the database lock still takes turns
        yield True
        return
    with open(lock_path(), "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if os.getppid() != parent:
                    yield False
                    return
                time.sleep(0.5)
        yield True


def run(parent: int) -> None:
    """The child's loop: process landed messages until the parent process is gone."""
    if hasattr(os, "nice"):  # PATRONAGE_INGEST_PROCESSOR_NICE
        os.nice(get_settings().ingest_processor_nice)
    with _the_only_one(parent) as mine:
        if not mine:
            return
        newest = None
        while os.getppid() == parent:
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


def drain_once(limit: int = service.PROCESS_BATCH, *, wait: bool = True) -> int:
    """One micro-batch in its own transaction; returns the messages taken (0: none, or
    another processor holds the lock). A micro-batch that fails is taken again one message
    at a time: the rows it held, in order, each message in a transaction of its own."""
    try:
        with db.transaction() as session:
            return service.process_pending(session, limit, wait=wait).messages
    except Exception as exc:
        # messages never carry into logs (personal data): the error's type only
        log.warning(
            "ingest processor: a micro-batch failed (%s); retrying it message by message",
            type(exc).__name__,
        )
    taken = 0
    while taken < limit:
        with db.transaction() as session:
            done = service.process_singly(session)
        if done.set_aside:
            log.warning("ingest processor: %d message(s) set aside", done.set_aside)
        if done.messages == 0:
            break
        taken += done.messages
    return taken


def drain(limit: int = service.PROCESS_BATCH) -> int:
    """Process everything landed so far (a worker's start, the benchmark, tests)."""
    total = 0
    while True:
        done = drain_once(limit, wait=True)
        if done == 0:
            return total
        total += done


if __name__ == "__main__":  # the child started by ensure_running: `… processor PARENT_PID`
    run(int(sys.argv[1]))
