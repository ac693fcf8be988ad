"""Public functions of the recommend capability: the rebuild, serving, click-through.

The rebuild (`build`) is its own unit of work, in steps that each commit: (1) a build row
says "running"; (2) the order lines and catalogue are read (read-only queries, see
repository.py) and the default model and the other tables are fitted in memory; (3) the rows
are written under the new build id, which serving does not read yet; (4) one transaction marks
the build done and flips the current-build pointer; (5) the rows of older builds are deleted.
Serving reads only the build the pointer names, so it never sees a half-built table; a failed
build deletes its own rows and is marked failed, leaving the current build in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from patronage.config import get_settings
from patronage.db import transaction
from patronage.errors import NotFound, ValidationFailed
from patronage.kit.clock import utcnow
from patronage.recommend import evaluation, serving, spark
from patronage.recommend import repository as repo
from patronage.recommend.algorithms.cooccurrence import cross_sell, frequently_bought_together
from patronage.recommend.algorithms.item_to_item import ItemToItem
from patronage.recommend.algorithms.popular import trending, trending_by_category
from patronage.recommend.algorithms.upsell import upsell
from patronage.recommend.interactions import build_interactions, temporal_split
from patronage.recommend.models import BoughtTogether, SimilarItem, Trending
from patronage.recommend.schemas import (
    MAX_ID,
    BuildRead,
    CtrReport,
    CtrRow,
    RecommendationList,
)

log = logging.getLogger("patronage.recommend")

DEFAULT_MODEL = serving.ITEM_TO_ITEM
TRENDING_DAYS = serving.TRENDING_DAYS
TRENDING_ITEMS = 100  # kept per category (and overall)
ABANDONED = timedelta(hours=6)  # a build "running" longer than this died with its worker
VIEWED, CLICKED = "Product List Viewed", "Product Clicked"

# serving: thin re-exports, so entrypoints use the service only
also_bought = serving.also_bought
upsell_for = serving.upsell
for_you = serving.for_you
cross_sell_for = serving.cross_sell
basket = serving.basket
trending_list = serving.trending


def _read(build: Any, current: int | None) -> BuildRead:
    return BuildRead(
        id=build.id,
        model=build.model,
        status=build.status,
        started_at=build.started_at,
        finished_at=build.finished_at,
        rows=build.rows,
        order_lines=build.order_lines,
        detail=build.detail,
        current=build.id == current,
    )


def current_build(session: Session) -> BuildRead | None:
    build = repo.current_build(session)
    return None if build is None else _read(build, build.id)


def builds(session: Session, limit: int = 10) -> list[BuildRead]:
    current = repo.current_build(session)
    current_id = current.id if current else None
    return [_read(b, current_id) for b in repo.latest_builds(session, limit)]


# -- the rebuild ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Tables:
    similar: list[dict[str, Any]]
    together: list[dict[str, Any]]
    trending: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return len(self.similar) + len(self.together) + len(self.trending)


def _ranked(table: sp.csr_matrix) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[Any]]:
    """(row, column, rank) of every stored entry, best score first within a row."""
    coo = sp.csr_matrix(table).tocoo()
    keep = coo.data > 0
    r, c, v = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]
    order = np.lexsort((c, -v, r))
    r, c, v = r[order], c[order], v[order]
    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]]) if r.size else np.empty(0, np.int64)
    first = np.repeat(starts, np.diff(np.r_[starts, r.size]))
    return r, c, np.arange(r.size) - first, v  # type: ignore[return-value]


def _pairs(
    table: sp.csr_matrix, ids: NDArray[np.int64], kind: str, model: str, build_id: int
) -> list[dict[str, Any]]:
    r, c, rank, v = _ranked(table)  # type: ignore[misc]
    return [
        {
            "build_id": build_id,
            "kind": kind,
            "product_id": int(ids[a]),
            "rank": int(k),
            "neighbour_id": int(ids[b]),
            "score": float(s),
            "model": model,
        }
        for a, b, k, s in zip(r.tolist(), c.tolist(), rank.tolist(), v.tolist(), strict=True)
    ]


def similar_items(B: sp.csr_matrix, engine: str) -> sp.csr_matrix:
    """The also-bought table (the default item-to-item model) on the chosen engine."""
    model = ItemToItem()
    if spark.check_engine(engine) != "spark":
        return model.fit(B).neighbours_
    return spark.similar_items(
        B,
        similarity=model.similarity,
        k=model.n_neighbours,
        min_co_buyers=model.min_co_buyers,
        alpha=model.alpha,
    )


def compute_tables(
    lines: repo.OrderLines,
    products: list[repo.ProductFacts],
    build_id: int,
    engine: str = "duckdb",
) -> Tables:
    """Every served table, fitted from the order lines and the catalogue: the similar-items
    table on `engine` (Spark, or in process for duckdb / database), the rest in process."""
    ids = np.array([p.id for p in products], dtype=np.int64)
    if ids.size == 0 or lines.product.size == 0:
        return Tables([], [], [])
    categories = np.array(
        [p.category_id if p.category_id is not None else -1 for p in products], dtype=np.int64
    )
    prices = np.array([p.price_minor for p in products], dtype=np.int64)
    bought = build_interactions(
        lines.customer, lines.product, lines.quantity, item_ids=ids, weight="binary"
    )
    item = np.searchsorted(ids, lines.product)
    table = similar_items(bought.matrix, engine)
    similar = _pairs(table, ids, "also_bought", DEFAULT_MODEL, build_id)
    complements = cross_sell(lines.customer, item, lines.placed_at, categories, n_items=ids.size)
    similar += _pairs(complements, ids, "cross_sell", serving.CROSS_SELL, build_id)
    dearer = upsell(bought.matrix, categories, prices)
    similar += _pairs(dearer, ids, "upsell", serving.UPSELL, build_id)

    baskets = build_interactions(lines.order, lines.product, item_ids=ids, weight="binary")
    rules = frequently_bought_together(baskets.matrix)
    r, c, rank, _ = _ranked(rules.table)  # type: ignore[misc]
    conf, lift, count = (
        np.asarray(m[r, c]).ravel() if r.size else np.empty(0)
        for m in (rules.confidence, rules.lift, rules.baskets)
    )
    together = [
        {
            "build_id": build_id,
            "product_id": int(ids[a]),
            "rank": int(k),
            "neighbour_id": int(ids[b]),
            "confidence": float(f),
            "lift": float(li),
            "baskets": int(n),
        }
        for a, b, k, f, li, n in zip(
            r.tolist(), c.tolist(), rank.tolist(), conf, lift, count, strict=True
        )
    ]

    args: dict[str, Any] = {"n_items": ids.size, "days": TRENDING_DAYS, "users": lines.customer}
    hot = [(0, trending(item, lines.placed_at, n=TRENDING_ITEMS, **args))]
    hot += sorted(
        trending_by_category(item, lines.placed_at, categories, n=TRENDING_ITEMS, **args).items()
    )
    popular = [
        {
            "build_id": build_id,
            "category_id": int(cat),
            "rank": k,
            "product_id": int(ids[i]),
            "buyers": float(n),
        }
        for cat, trend in hot
        for k, (i, n) in enumerate(zip(trend.items.tolist(), trend.counts.tolist(), strict=True))
    ]
    return Tables(similar, together, popular)


def build(
    on_written: Callable[[int], None] | None = None, *, engine: str | None = None
) -> BuildRead:
    """Rebuild every table under a new build id and make it current (see the module doc).

    `engine`: where the similar-items table is computed (default: the analytics engine
    setting, `PATRONAGE_ANALYTICS_ENGINE`). `on_written(build_id)` runs after the rows are
    written and before the flip (tests read through serving there to show the half-built
    tables are not served).
    """
    engine = spark.check_engine(engine or get_settings().analytics_engine)
    started = time.perf_counter()
    with transaction() as session:
        build_id = repo.start_build(session, DEFAULT_MODEL, utcnow()).id
    try:
        with transaction() as session:
            lines = repo.order_lines(session)
            products = repo.all_products(session)
        tables = compute_tables(lines, products, build_id, engine)
        for model, rows in (
            (SimilarItem, tables.similar),
            (BoughtTogether, tables.together),
            (Trending, tables.trending),
        ):
            with transaction() as session:
                repo.insert_rows(session, model, rows)
        if on_written is not None:
            on_written(build_id)
        with transaction() as session:
            repo.finish_build(
                session,
                build_id,
                status="done",
                finished_at=utcnow(),
                rows=tables.rows,
                order_lines=int(lines.product.size),
                detail=f"{time.perf_counter() - started:.1f} s ({engine})",
            )
            repo.flip(session, build_id)
    except BaseException as exc:
        with transaction() as session:
            repo.delete_build_rows(session, build_id)
            repo.finish_build(
                session, build_id, status="failed", finished_at=utcnow(), detail=type(exc).__name__
            )
        raise
    with transaction() as session:
        removed = repo.delete_old_builds(session, utcnow() - ABANDONED)
        result = _read(repo.get_build(session, build_id), build_id)
    log.info(
        "recommendations built: build %d, %d rows, %d older builds removed",
        build_id,
        tables.rows,
        removed,
    )
    return result


# -- offline evaluation on the store's order lines ---------------------------------------
def evaluate(
    session: Session, *, test_days: float = 30, progress: Callable[[str], None] | None = None
) -> evaluation.Report:
    lines = repo.order_lines(session)
    if lines.product.size == 0:
        raise ValidationFailed("no order lines to evaluate on")
    split = temporal_split(
        lines.customer, lines.product, lines.placed_at, lines.quantity, test_days=test_days
    )
    return evaluation.evaluate(split, progress=progress)


# -- click-through -------------------------------------------------------------------------
def click_through(session: Session, *, days: int = 30, now: datetime | None = None) -> CtrReport:
    """Impressions (Product List Viewed) and clicks (Product Clicked) of recommended lists,
    per placement and model, from the tracked events whose list_id is a recommendation id."""
    if not 1 <= days <= 3660:
        raise ValidationFailed("days must be between 1 and 3660")
    since = (now or utcnow()) - timedelta(days=days)
    counts: dict[tuple[str, str], list[int]] = {}
    for name, prefix, n in repo.list_event_counts(session, [VIEWED, CLICKED], since):
        key = serving.decode_list_id(prefix)
        if key is None:
            continue
        pair = counts.setdefault(key, [0, 0])
        pair[0 if name == VIEWED else 1] += n
    rows = [
        CtrRow(
            placement=placement,
            model=model,
            impressions=seen,
            clicks=clicked,
            ctr=round(clicked / seen, 6) if seen else None,
        )
        for (placement, model), (seen, clicked) in sorted(counts.items())
    ]
    return CtrReport(since=since, rows=rows)


def recommendation_clickers(session: Session, *, days: int = 30) -> list[int]:
    """Customers who clicked a recommended item in the last `days` (a segment's members)."""
    return repo.clickers(session, utcnow() - timedelta(days=days))


def show(session: Session, product_id: int, limit: int = 10) -> dict[str, RecommendationList]:
    """Also bought, upsell and bought together for one product (CLI and console lookup)."""
    if not repo.product_exists(session, product_id):
        raise NotFound(f"no product {product_id}")
    return {
        "also bought": also_bought(session, product_id, limit=limit),
        "upsell": upsell_for(session, product_id, limit=limit),
        "bought together": basket(session, [product_id], limit=limit),
    }


def product(session: Session, product_id: int) -> repo.ProductFacts:
    """One product's catalogue facts (the console's product page)."""
    found = repo.products(session, [product_id]) if 1 <= product_id <= MAX_ID else {}
    if product_id not in found:
        raise NotFound(f"no product {product_id}")
    return found[product_id]


def customer_lists(
    session: Session, customer_id: int, limit: int = 5
) -> dict[str, RecommendationList]:
    """For you and cross-sell for one customer (the customer page). Without personalisation
    consent or history both would be the same trending list: it is shown once."""
    personal = for_you(session, customer_id, limit=limit)
    if not personal.personalised:
        return {"popular right now": personal}
    return {
        "for you": personal,
        "cross-sell": cross_sell_for(session, customer_id, limit=limit),
    }


def request_build() -> None:
    """Queue an on-demand rebuild for a worker."""
    from patronage.recommend import tasks  # the job module imports this one

    tasks.build()
