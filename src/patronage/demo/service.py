"""Public functions of the demo: set up a database with a generated shop and an admin login."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from patronage import migrate
from patronage.auth import service as auth_service
from patronage.config import get_settings
from patronage.customers import service as customers_service
from patronage.db import get_engine, transaction
from patronage.demo import loadmode, pipeline
from patronage.demo.generator import TABLES, Plan
from patronage.errors import Conflict, NotFound, ValidationFailed
from patronage.kit.bulkwrite import merge_staged, next_id, sync_sequence, write_prepared

ADMIN = "admin"
MAX_CUSTOMERS = 10_000_000


class Reporter(Protocol):
    """What the demo tells its caller while it works (the CLI draws progress bars)."""

    def stage(self, name: str, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...


class Silent:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


@dataclass(frozen=True)
class Login:
    url: str
    username: str
    password: str


@dataclass
class DemoResult:
    login: Login
    generated: bool  # False when the existing shop was kept
    customers: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def existing_customers() -> int:
    with transaction() as session:
        return customers_service.count_customers(session)


def run(
    plan: Plan,
    *,
    reset: bool = False,
    reporter: Reporter | None = None,
    workers: int | None = None,
) -> DemoResult:
    """Migrate, then generate the shop (unless one is there and `reset` is off), make sure
    the admin can log in with a fresh password, and take the dashboard snapshot."""
    if not 1 <= plan.customers <= MAX_CUSTOMERS:
        raise ValidationFailed(f"customers must be between 1 and {MAX_CUSTOMERS:,}")
    report: Reporter = reporter or Silent()
    started = time.perf_counter()
    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade()
    engine = get_engine()
    with engine.connect() as connection:
        loadmode.restore(connection, loadmode.tables(TABLES))
        existing = _count(connection, "customers")
        if existing and not reset:
            login = _admin_login()
            return DemoResult(login, False, existing, seconds=time.perf_counter() - started)
        if reset:
            report.stage("Wiping the old shop")
            loadmode.wipe(connection, loadmode.wipe_tables())
        else:
            busy = [name for name in TABLES if _count(connection, name)]
            if busy:
                raise Conflict(
                    f"the database holds {', '.join(busy)} but no customers; "
                    "run 'patronage demo --reset' to replace them with the demo shop"
                )
        rows = write_shop(connection, plan, report, workers).rows
    login = _admin_login()
    report.stage("Dashboard statistics")
    _snapshot()
    return DemoResult(login, True, plan.customers, rows, time.perf_counter() - started)


@dataclass
class LoadStats:
    """Where the time of a generation went (the benchmark prints it)."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    write_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TABLES, 0.0))
    generate_seconds: float = 0.0
    commit_seconds: float = 0.0
    index_seconds: float = 0.0
    analyze_seconds: float = 0.0


def write_shop(
    connection: Connection, plan: Plan, report: Reporter, workers: int | None = None
) -> LoadStats:
    """Generate `plan` into the (empty) demo tables through the bulk write paths.

    `workers` processes generate ahead while this one writes (default: one per spare core
    for big shops); the result is the same whatever their number.
    """
    targets = loadmode.tables(TABLES)
    stats = LoadStats()
    session = Session(bind=connection, expire_on_commit=False)
    first_ids = {t.name: next_id(session, t) for t in targets}
    session.commit()
    dialect = connection.dialect.name
    helpers = pipeline.default_workers(plan, dialect) if workers is None else workers
    report.stage("Generating the shop", plan.customers)
    clock = time.perf_counter
    with loadmode.bulk_load(connection, targets, step=lambda _name: report.advance()):
        produced = pipeline.chunks(plan, first_ids, dialect, helpers)
        while True:
            started = clock()
            chunk = next(produced, None)
            stats.generate_seconds += clock() - started
            if chunk is None:
                break
            started = clock()
            if chunk.staged is not None:
                merge_staged(session, chunk.staged, TABLES)
                chunk.staged.unlink()
                stats.write_seconds["merge"] = stats.write_seconds.get("merge", 0.0) + (
                    clock() - started
                )
            else:
                assert chunk.batch is not None
                for name in TABLES:
                    if name in chunk.batch:
                        started = clock()
                        write_prepared(session, chunk.batch[name])
                        stats.write_seconds[name] += clock() - started
                started = clock()
                session.commit()
                stats.commit_seconds += clock() - started
            for name, count in chunk.rows.items():
                stats.rows[name] += count
            report.advance(chunk.customers)
        report.stage("Building indexes", loadmode.rebuild_steps(connection, targets))
        rebuilt = clock()
    stats.index_seconds = clock() - rebuilt
    for table in targets:
        sync_sequence(session, table)
    session.commit()
    session.close()
    started = clock()
    loadmode.analyze(connection, targets)
    stats.analyze_seconds = clock() - started
    return stats


def _count(connection: Connection, name: str) -> int:
    table = loadmode.tables([name])[0]
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _admin_login() -> Login:
    password = secrets.token_urlsafe(12)
    with transaction() as session:
        try:
            auth_service.set_password(session, ADMIN, password)
        except NotFound:
            user = auth_service.create_user(session, ADMIN, password, "admin")
            auth_service.audit(session, None, "user.create", "user", str(user.id), actor="demo")
        else:
            auth_service.audit(session, None, "user.password", "user", ADMIN, actor="demo")
    settings = get_settings()
    return Login(f"http://{settings.host}:{settings.port}", ADMIN, password)


def _snapshot() -> None:
    from patronage.analytics import service as analytics_service

    with transaction() as session:
        analytics_service.take_snapshot(session)


DERIVED_STAGES = 5  # what `derive` reports, one stage each


def derive(plan: Plan, reporter: Reporter | None = None) -> None:
    """What the nightly jobs compute, computed now, so a newcomer's console shows the whole
    pipeline on the fresh shop: customer analytics, segments (built-ins), personas, next
    categories and recommendations, as of the day after the shop's last day."""
    # late imports: the capabilities above the store import a lot (DuckDB, scikit-learn),
    # and only the demo command needs them here
    from patronage.analytics import service as analytics_service
    from patronage.recommend import service as recommend_service
    from patronage.segments import service as segments_service

    report: Reporter = reporter or Silent()
    now = datetime.combine(plan.until + timedelta(days=1), datetime.min.time(), UTC)
    report.stage("Customer analytics")
    with transaction() as session:
        analytics_service.refresh_customer_analytics(session, now)
    report.stage("Segments")
    with transaction() as session:
        segments_service.ensure_builtins(session)
        segments_service.evaluate(session, now=now)
    report.stage("Personas")
    with transaction() as session:
        segments_service.refresh_personas(session, now)
    report.stage("Next categories")
    with transaction() as session:
        segments_service.refresh_next_categories(session, now)
    report.stage("Recommendations")
    recommend_service.build()
