"""The snapshot jobs through a real queue (a SQLite file, Redis) and a real Huey consumer."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huey import signals

from patronage import db, jobs
from patronage.analytics import service, tasks
from patronage.kit.clock import utcnow
from tests.analytics.dataset import build_shop
from tests.conftest import unavailable

REDIS_URL = "redis://127.0.0.1:6379/15"


def make_queue(broker: str, tmp_path: Path) -> Any:
    name = f"patronage-test-{uuid.uuid4().hex}"
    if broker == "redis":
        import redis

        try:
            redis.Redis.from_url(REDIS_URL).ping()
        except redis.RedisError as exc:
            unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
        return jobs.make_huey(url=REDIS_URL, name=name)
    return jobs.make_huey(url=f"sqlite:///{tmp_path / 'queue.db'}", name=name)


@pytest.fixture
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    huey = make_queue(request.param, tmp_path)
    yield huey
    huey.storage.flush_all()  # this queue's own keys only: its name is unique


class Finished:
    """Counts the tasks a queue finished (whatever the outcome)."""

    def __init__(self, huey: Any) -> None:
        self.names: list[str] = []
        self._lock = threading.Lock()
        huey.signal(signals.SIGNAL_COMPLETE, signals.SIGNAL_ERROR)(self._record)

    def _record(self, signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.names.append(f"{signal}:{task.name}")

    def wait_for(self, count: int, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.names) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.names)


PAIRS = [
    pytest.param("sqlite", "sqlite", id="sqlite-queue"),
    pytest.param(
        "postgres", "redis", id="redis-queue", marks=[pytest.mark.postgres, pytest.mark.redis]
    ),
]


@pytest.mark.parametrize(("backend", "queue"), PAIRS, indirect=["queue"])
def test_snapshot_through_the_queue_is_idempotent(database, queue):
    with db.transaction() as s:
        build_shop(s)
    finished = Finished(queue)
    tasks.snapshot.enqueue_on(queue)
    tasks.snapshot.enqueue_on(queue)  # the same day's job again (a retry, a re-enqueue)
    assert queue.pending_count() == 2
    consumer = jobs.create_consumer(queue, workers=2, periodic=False, handle_signals=False)
    consumer.start()
    try:
        done = finished.wait_for(2)
    finally:
        consumer.stop(graceful=True)
    assert done == ["complete:analytics.snapshot"] * 2
    assert queue.pending_count() == 0
    with db.transaction() as s:
        assert service.snapshots_on(s, utcnow()) == 1
        latest = service.latest_snapshot(s)
    assert latest is not None and (latest.orders, latest.revenue_minor) == (6, 18495)


@pytest.mark.parametrize(("backend", "queue"), PAIRS, indirect=["queue"])
def test_nightly_job_runs_and_reruns_replace(database, queue):
    finished = Finished(queue)
    nightly = tasks.nightly_snapshot.bind(queue)
    queue.enqueue(nightly.s())  # what the scheduler enqueues at 02:00
    queue.enqueue(nightly.s())  # …and again, the same day
    consumer = jobs.create_consumer(queue, workers=1, periodic=False, handle_signals=False)
    consumer.start()
    try:
        done = finished.wait_for(2)
    finally:
        consumer.stop(graceful=True)
    assert done == ["complete:analytics.nightly_snapshot"] * 2
    with db.transaction() as s:
        assert service.snapshots_on(s, utcnow()) == 1
        assert not service.nightly_missed(s)
