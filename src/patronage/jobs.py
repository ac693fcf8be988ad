"""The task queue (Huey): a SQLite queue file by default, Redis when PATRONAGE_BROKER_URL says so.

Capabilities declare their jobs in `<capability>/tasks.py` with `@jobs.task()` and
`@jobs.periodic_task(crontab(...))`. A declaration is not tied to one Huey instance: every
instance made by `make_huey()` (the current one from `get_huey()`, or a test's own) learns every
declared job, so tests can run each against a queue of its own. Calling a declared job enqueues
it on the current instance; `patronage worker` consumes them.

Delivery is at least once: a task interrupted by a shutdown is put back on the queue, and a
periodic job may declare a `catch_up` check that enqueues it when a worker starts after its
scheduled run was missed (the worker was down or killed). Jobs must therefore be idempotent.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey import signals as huey_signals
from huey.consumer import Consumer

from patronage.config import Settings, get_settings

log = logging.getLogger("patronage.jobs")

QUEUE_NAME = "patronage"

# Every capability that may declare jobs; those without a tasks.py are skipped.
CAPABILITIES = (
    "auth",
    "customers",
    "catalog",
    "orders",
    "collect",
    "analytics",
    "segments",
    "recommend",
    "engage",
    "support",
    "selfservice",
    "sellers",
    "privacy",
)


@dataclass
class Job:
    """A declared task; calling it enqueues it on the current Huey instance."""

    func: Callable[..., Any]
    name: str
    schedule: Callable[[Any], bool] | None = None  # a huey crontab(): periodic when set
    catch_up: Callable[[], bool] | None = None  # "was the last scheduled run missed?"
    options: dict[str, Any] = field(default_factory=dict)
    _bound: weakref.WeakKeyDictionary[Any, Any] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    def bind(self, huey: Any) -> Any:
        """The huey TaskWrapper of this job on `huey`, registering it on first use."""
        wrapper = self._bound.get(huey)
        if wrapper is None:
            if self.schedule is not None:
                wrapper = huey.periodic_task(self.schedule, name=self.name, **self.options)(
                    self.func
                )
            else:
                wrapper = huey.task(name=self.name, **self.options)(self.func)
            self._bound[huey] = wrapper
        return wrapper

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Enqueue on the current queue; returns huey's Result (or None)."""
        return self.bind(get_huey())(*args, **kwargs)

    def enqueue_on(self, huey: Any, *args: Any, **kwargs: Any) -> Any:
        return self.bind(huey)(*args, **kwargs)

    def call_local(self, *args: Any, **kwargs: Any) -> Any:
        """Run now, in this process, without the queue."""
        return self.func(*args, **kwargs)

    @property
    def periodic(self) -> bool:
        return self.schedule is not None


_JOBS: dict[str, Job] = {}


def _declare(job: Job) -> Job:
    if job.name in _JOBS and _JOBS[job.name].func is not job.func:
        raise ValueError(f"a job named {job.name!r} is already declared")
    _JOBS[job.name] = job
    return job


def task(
    *, name: str | None = None, retries: int = 2, retry_delay: int = 30
) -> Callable[[Callable[..., Any]], Job]:
    """Declare an on-demand job. Name defaults to `<capability>.<function>`."""

    def decorator(func: Callable[..., Any]) -> Job:
        options = {"retries": retries, "retry_delay": retry_delay}
        return _declare(Job(func, name or _default_name(func), options=options))

    return decorator


def periodic_task(
    schedule: Callable[[Any], bool],
    *,
    name: str | None = None,
    catch_up: Callable[[], bool] | None = None,
    retries: int = 2,
    retry_delay: int = 60,
) -> Callable[[Callable[..., Any]], Job]:
    """Declare a job the worker's scheduler enqueues when `schedule` (a crontab, UTC) matches."""

    def decorator(func: Callable[..., Any]) -> Job:
        options = {"retries": retries, "retry_delay": retry_delay}
        job = Job(func, name or _default_name(func), schedule, catch_up, options)
        return _declare(job)

    return decorator


def _default_name(func: Callable[..., Any]) -> str:
    parts = func.__module__.split(".")
    capability = parts[1] if len(parts) > 2 and parts[0] == "patronage" else parts[0]
    return f"{capability}.{func.__name__}"


_worker_starts: list[Callable[[], None]] = []


def on_worker_start(func: Callable[[], None]) -> Callable[[], None]:
    """Declare background work (a thread) that `patronage worker` starts beside the queue,
    e.g. the tracking API's processor of landed messages; registered by a tasks module."""
    _worker_starts.append(func)
    return func


def load_tasks() -> dict[str, Job]:
    """Import every capability's tasks module so the queue knows every job."""
    for capability in CAPABILITIES:
        module = f"patronage.{capability}.tasks"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    return dict(_JOBS)


# -- queue instances -----------------------------------------------------------------------


def make_huey(
    settings: Settings | None = None, *, url: str | None = None, name: str = QUEUE_NAME
) -> Any:
    """A new Huey instance (SQLite file or Redis) that knows every declared job."""
    settings = settings or get_settings()
    url = url if url is not None else settings.broker_url
    huey: Any
    if url and url.startswith(("redis://", "rediss://")):
        huey = RedisHuey(name, url=url, utc=True)
    else:
        path = url.removeprefix("sqlite:///") if url else str(settings.data_dir / "queue.db")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(name, filename=path, utc=True)
    huey.signal(huey_signals.SIGNAL_INTERRUPTED)(_requeue_on(huey))
    huey.signal()(_log_signal)
    for job in load_tasks().values():
        job.bind(huey)
    return huey


_current: Any = None
_lock = threading.RLock()  # re-entrant: a tasks module may call get_huey() on import


def get_huey() -> Any:
    """The process's queue, made from the settings on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = make_huey()
        return _current


def set_huey(huey: Any) -> None:
    """Replace (or with None, forget) the process's queue: tests, changed settings."""
    global _current
    with _lock:
        _current = huey


# -- running ----------------------------------------------------------------------------------


def _requeue_on(huey: Any) -> Callable[..., None]:
    def requeue(signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        """A shutdown interrupted `task`: put it back so a worker runs it again."""
        huey.enqueue(task)
        log.warning("%s (%s) interrupted by shutdown; re-enqueued", task.name, task.id)

    return requeue


def _log_signal(signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
    # names and ids only: arguments may carry personal data
    if signal == huey_signals.SIGNAL_EXECUTING:
        log.info("running %s (%s)", task.name, task.id)
    elif signal == huey_signals.SIGNAL_COMPLETE:
        log.info("finished %s (%s)", task.name, task.id)
    elif signal == huey_signals.SIGNAL_ERROR:
        error = args[0] if args else None
        log.error("failed %s (%s): %s", task.name, task.id, type(error).__name__)


class _NoTracebacks(logging.Filter):
    """Tracebacks quote exception messages, which can quote row values: log the type only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()} [{record.exc_info[0].__name__}]"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_NoTracebacks())
    for name in ("patronage", "huey"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


class WorkerConsumer(Consumer):  # type: ignore[misc]
    """Huey's consumer with thread workers; signal handlers only when it owns the process."""

    def __init__(self, huey: Any, *, handle_signals: bool = True, **options: Any) -> None:
        self.handle_signals = handle_signals
        super().__init__(huey, worker_type="thread", **options)

    def _set_signal_handlers(self) -> None:
        if self.handle_signals:
            super()._set_signal_handlers()


def create_consumer(
    huey: Any = None, *, workers: int = 1, periodic: bool = True, handle_signals: bool = True
) -> WorkerConsumer:
    huey = huey if huey is not None else get_huey()
    return WorkerConsumer(
        huey,
        handle_signals=handle_signals,
        workers=workers,
        periodic=periodic,
        initial_delay=0.1,
        max_delay=2.0,
        check_worker_health=True,
    )


def catch_up(huey: Any) -> list[str]:
    """Enqueue the periodic jobs whose last scheduled run was missed; returns their names."""
    missed = []
    for job in load_tasks().values():
        if job.catch_up is None:
            continue
        try:
            if job.catch_up():
                job.enqueue_on(huey)
                missed.append(job.name)
        except Exception as exc:  # a worker must start even if the database is not ready yet
            log.warning("could not check %s for a missed run: %s", job.name, type(exc).__name__)
    for name in missed:
        log.info("enqueued %s: its last scheduled run was missed", name)
    return missed


def run_worker(*, workers: int = 1, periodic: bool = True) -> None:
    """Consume the queue until SIGINT (finish running tasks) or SIGTERM (re-enqueue them)."""
    settings = get_settings()
    configure_logging(settings.log_level)
    huey = get_huey()
    names = sorted(load_tasks())
    log.info(
        "worker: %d thread(s), periodic %s, queue %s, jobs: %s",
        workers,
        "on" if periodic else "off",
        type(huey.storage).__name__,
        ", ".join(names) or "none",
    )
    if periodic:
        catch_up(huey)
    for start in _worker_starts:
        start()
    create_consumer(huey, workers=workers, periodic=periodic).run()
