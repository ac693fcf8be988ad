"""Generate chunks in worker processes while this one writes them, in order.

Generating a chunk and spelling it for the database (encrypting, formatting dates and JSON)
costs about as much as writing it, so with a spare core the two overlap: workers run
`chunk_tables` and the capabilities' `prepare_batch`, this process only sends the rows.
Results come back in chunk order, so the shop is the same whatever the number of workers;
at most `workers + 1` chunks are in flight, which bounds memory.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patronage.catalog import service as catalog_service
from patronage.collect import service as collect_service
from patronage.customers import service as customers_service
from patronage.demo.catalog import Catalog
from patronage.demo.generator import (
    CHUNK,
    Plan,
    Tables,
    catalog_for,
    catalog_tables,
    chunk_tables,
    length,
)
from patronage.demo.timeline import Timeline, timeline
from patronage.kit.bulkwrite import ColumnData, Prepared, stage_sqlite
from patronage.orders import service as orders_service
from patronage.sellers import service as sellers_service
from patronage.support import service as support_service

Preparer = Callable[[str, Mapping[str, ColumnData], str], Prepared]
PREPARERS: dict[str, Preparer] = {
    "categories": catalog_service.prepare_batch,
    "sellers": sellers_service.prepare_batch,
    "products": catalog_service.prepare_batch,
    "customers": customers_service.prepare_batch,
    "identities": customers_service.prepare_batch,
    "consents": customers_service.prepare_batch,
    "milestones": customers_service.prepare_batch,
    "orders": orders_service.prepare_batch,
    "order_items": orders_service.prepare_batch,
    "payments": orders_service.prepare_batch,
    "shipments": orders_service.prepare_batch,
    "returns": orders_service.prepare_batch,
    "refunds": orders_service.prepare_batch,
    "reviews": orders_service.prepare_batch,
    "tickets": support_service.prepare_batch,
    "events": collect_service.prepare_batch,
}

Batch = dict[str, Prepared]


@dataclass
class Chunk:
    """One chunk's rows: prepared batches, or (SQLite with workers) a staged scratch file."""

    customers: int
    batch: Batch | None = None
    staged: Path | None = None
    rows: dict[str, int] = field(default_factory=dict)


def prepare(tables: Tables, dialect: str) -> Batch:
    return {name: PREPARERS[name](name, columns, dialect) for name, columns in tables.items()}


def default_workers(plan: Plan, dialect: str) -> int:
    """Generator processes: none for a shop of a few chunks; else one per core on SQLite
    (this process mostly waits on them), one per spare core on PostgreSQL (whose server
    needs one); at most three."""
    if plan.chunks < 4:
        return 0
    cores = os.cpu_count() or 1
    return max(1, min(3, cores if dialect == "sqlite" else cores - 1))


def chunks(plan: Plan, first_ids: Mapping[str, int], dialect: str, workers: int) -> Iterator[Chunk]:
    """The catalogue, then each chunk of customers, in order.

    In-process (`workers` 0) chunks come as prepared batches. Workers prepare them too;
    on PostgreSQL the batches travel back as COPY streams (bytes pickle for free), on SQLite
    the workers bind them into scratch files that this process merges.
    """
    tl = timeline(plan.until)
    catalog = catalog_for(plan, tl, dict(first_ids))
    catalog_batch = prepare(catalog_tables(catalog), dialect)
    yield Chunk(0, catalog_batch, rows={k: v.rows for k, v in catalog_batch.items()})
    first_customer = first_ids.get("customers", 1)
    if workers <= 0:
        for index in range(plan.chunks):
            tables = chunk_tables(plan, tl, catalog, index, first_customer + index * CHUNK)
            batch = prepare(tables, dialect)
            yield Chunk(
                length(tables["customers"]), batch, rows={k: v.rows for k, v in batch.items()}
            )
        return
    scratch = Path(tempfile.mkdtemp(prefix="patronage-demo-"))
    context = multiprocessing.get_context("spawn")  # no fork of a process holding connections
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start,
            initargs=(plan, dict(first_ids), dialect, scratch),
        ) as pool:
            pending: deque[Future[Chunk]] = deque()
            submitted = 0
            while submitted < plan.chunks or pending:
                while submitted < plan.chunks and len(pending) <= workers:
                    pending.append(pool.submit(_chunk, submitted))
                    submitted += 1
                yield pending.popleft().result()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- in the worker processes ----------------------------------------------------------------

_state: dict[str, Any] = {}


def _start(plan: Plan, first_ids: dict[str, int], dialect: str, scratch: Path) -> None:
    tl: Timeline = timeline(plan.until)
    catalog: Catalog = catalog_for(plan, tl, first_ids)
    _state.update(
        plan=plan, tl=tl, catalog=catalog, dialect=dialect, first=first_ids, scratch=scratch
    )


def _chunk(index: int) -> Chunk:
    plan: Plan = _state["plan"]
    first_customer = _state["first"].get("customers", 1)
    tables = chunk_tables(
        plan, _state["tl"], _state["catalog"], index, first_customer + index * CHUNK
    )
    batch = prepare(tables, _state["dialect"])
    customers = length(tables["customers"])
    rows = {name: prepared.rows for name, prepared in batch.items()}
    if _state["dialect"] != "sqlite":
        return Chunk(customers, batch, rows=rows)
    path = _state["scratch"] / f"chunk-{index:06d}.db"
    stage_sqlite(path, batch.values())
    return Chunk(customers, staged=path, rows=rows)
