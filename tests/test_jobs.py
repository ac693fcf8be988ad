"""The job queue: broker selection, the job registry, the schedule, interrupted and missed runs,
and `patronage worker` as a real process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from huey import RedisHuey, SqliteHuey

from patronage import config, db, jobs
from patronage.analytics import service, tasks
from patronage.kit.clock import utcnow

PATRONAGE = Path(sys.executable).with_name("patronage")


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATRONAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PATRONAGE_BROKER_URL", raising=False)
    config.get_settings.cache_clear()
    jobs.set_huey(None)
    yield tmp_path / "data"
    jobs.set_huey(None)
    config.get_settings.cache_clear()


def test_sqlite_queue_by_default(fresh_settings):
    huey = jobs.get_huey()
    assert isinstance(huey, SqliteHuey)
    assert huey.storage.filename == str(fresh_settings / "queue.db")
    assert jobs.get_huey() is huey


def test_redis_queue_from_the_broker_url(fresh_settings, monkeypatch):
    monkeypatch.setenv("PATRONAGE_BROKER_URL", "redis://127.0.0.1:6379/15")
    config.get_settings.cache_clear()
    huey = jobs.get_huey()
    assert isinstance(huey, RedisHuey)
    assert huey.storage.conn.connection_pool.connection_kwargs["db"] == 15


def test_every_capabilitys_jobs_are_registered(tmp_path):
    known = jobs.load_tasks()
    assert {"analytics.snapshot", "analytics.nightly_snapshot"} <= set(known)
    huey = jobs.make_huey(url=f"sqlite:///{tmp_path / 'q.db'}", name="registry")
    registered = set(huey._registry._registry)
    for name in known:
        assert f"{known[name].func.__module__}.{name}" in registered


def test_a_job_name_is_declared_once():
    with pytest.raises(ValueError, match="already declared"):
        jobs.task(name="analytics.snapshot")(lambda: None)


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        (datetime(2025, 6, 15, 2, 0), True),
        (datetime(2025, 12, 31, 2, 0), True),
        (datetime(2025, 6, 15, 3, 0), False),
        (datetime(2025, 6, 15, 2, 1), False),
        (datetime(2025, 6, 15, 14, 0), False),
    ],
)
def test_nightly_schedule_is_0200_utc(tmp_path, moment, due):
    # huey (utc=True) hands the scheduler naive UTC datetimes
    huey = jobs.make_huey(url=f"sqlite:///{tmp_path / 'q.db'}", name="schedule")
    names = {task.name for task in huey.read_periodic(moment)}
    assert ("analytics.nightly_snapshot" in names) is due
    assert "analytics.snapshot" not in names


def test_an_interrupted_task_is_enqueued_again(tmp_path):
    huey = jobs.make_huey(url=f"sqlite:///{tmp_path / 'q.db'}", name="interrupt")
    started, release = threading.Event(), threading.Event()

    @huey.task(name="slow")
    def slow() -> None:
        started.set()
        release.wait(10)

    slow()
    consumer = jobs.create_consumer(huey, workers=1, periodic=False, handle_signals=False)
    consumer.start()
    try:
        assert started.wait(10)
        assert huey.pending_count() == 0
        consumer.stop(graceful=False)  # what SIGTERM does
        huey.notify_interrupted_tasks()  # what the consumer does before it exits
        assert huey.pending_count() == 1
        assert [t.name for t in huey.pending()] == ["slow"]
    finally:
        release.set()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_missed_night_is_caught_up_when_a_worker_starts(database, tmp_path):
    huey = jobs.make_huey(url=f"sqlite:///{tmp_path / 'q.db'}", name="catch-up")
    assert jobs.catch_up(huey) == ["analytics.nightly_snapshot"]
    assert [t.name for t in huey.pending()] == ["analytics.nightly_snapshot"]
    huey.flush()
    with db.transaction() as s:
        service.take_snapshot(s)
    assert jobs.catch_up(huey) == []
    assert huey.pending_count() == 0


def test_worker_logs_hide_tracebacks():
    record = logging.LogRecord("huey", logging.ERROR, __file__, 1, "task %s failed", ("t1",), None)
    try:
        raise RuntimeError("secret@example.com")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    jobs._NoTracebacks().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == "task t1 failed [RuntimeError]"


# -- `patronage worker` as a real process --------------------------------------------------


def _start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(PATRONAGE), "worker", "--workers", "2", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _wait(condition, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _snapshots_today() -> int:
    with db.transaction() as s:
        return service.snapshots_on(s, utcnow())


def _stop(worker: subprocess.Popen[bytes], how: int) -> int:
    worker.send_signal(how)
    return worker.wait(timeout=30)


@pytest.mark.slow  # two process starts: ~10 s on a busy machine
@pytest.mark.parametrize("backend", ["sqlite"])
def test_worker_process(database, data_dir, tmp_path):
    queue_url = f"sqlite:///{tmp_path / 'queue.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONAGE_")}
    env.update(
        PATRONAGE_ENV="test",
        PATRONAGE_DATA_DIR=str(data_dir),
        PATRONAGE_DATABASE_URL=database,
        PATRONAGE_BROKER_URL=queue_url,
    )
    log = tmp_path / "worker.log"

    # first start: no snapshot yet, so last night's run was missed and is caught up
    worker = _start_worker(env, log)
    try:
        assert _wait(lambda: _snapshots_today() == 1), log.read_text()
        assert _wait(lambda: "finished analytics.nightly_snapshot" in log.read_text())
    finally:
        assert _stop(worker, signal.SIGTERM) == 0

    # second start: nothing missed; two on-demand snapshots the same day keep one row
    queue = jobs.make_huey(url=queue_url)
    worker = _start_worker(env, log)
    try:
        tasks.snapshot.enqueue_on(queue)
        tasks.snapshot.enqueue_on(queue)
        assert _wait(lambda: log.read_text().count("finished analytics.snapshot") == 2), (
            log.read_text()
        )
    finally:
        assert _stop(worker, signal.SIGINT) == 0
    assert _snapshots_today() == 1
    text = log.read_text()
    assert text.count("running analytics.nightly_snapshot") == 1
    assert "Traceback" not in text
    assert "worker: 2 thread(s), periodic on, queue SqliteStorage" in text
