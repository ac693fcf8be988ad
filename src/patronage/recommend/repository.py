"""Every query of the recommend capability.

Its own tables (models.py), plus **read-only** queries over the commerce tables that the
orders and catalog capabilities own (`orders`, `order_items`, `products`) and over the
tracking `events` table. They are declared here as lightweight table clauses (names and the
columns read, no ORM classes), because the rebuild reads every order line at once and serving
needs a customer's bought products in one indexed query: the orders and catalog services
return rich per-order objects, far too slow for either. Nothing here ever writes to them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    Integer,
    String,
    bindparam,
    column,
    delete,
    desc,
    func,
    insert,
    literal,
    select,
    table,
    update,
)
from sqlalchemy.orm import Session

from patronage.db import DriverQuery, Json, UTCDateTime
from patronage.recommend.interactions import to_epoch_seconds
from patronage.recommend.models import BoughtTogether, Build, Current, SimilarItem, Trending

CURRENT_ID = 1
CANCELLED = "cancelled"
MAX_RANK = 1000  # more than any table keeps per item: "the whole row"

# -- the commerce tables, read only ------------------------------------------------------------
_orders = table(
    "orders",
    column("id"),
    column("customer_id"),
    column("status"),
    column("placed_at", UTCDateTime()),
)
_items = table("order_items", column("order_id"), column("product_id"), column("quantity"))
_products = table(
    "products",
    column("id"),
    column("name"),
    column("category_id"),
    column("price_minor"),
    column("stock"),
    column("is_active"),
    column("attributes", Json),
)
_events = table(
    "events",
    column("name"),
    column("properties", Json),
    column("timestamp", UTCDateTime()),
)


@dataclass(frozen=True)
class OrderLines:
    """Every line of every order that was not cancelled, as parallel arrays."""

    customer: NDArray[np.int64]
    product: NDArray[np.int64]
    order: NDArray[np.int64]
    quantity: NDArray[np.float64]
    placed_at: NDArray[np.int64]  # epoch seconds


class ProductFacts(NamedTuple):
    """What the list rules and the rendering need of a product."""

    id: int
    name: str
    category_id: int | None
    price_minor: int
    in_stock: bool
    repeatable: bool


def order_lines(session: Session, since: datetime | None = None) -> OrderLines:
    query = (
        select(
            _orders.c.customer_id,
            _items.c.product_id,
            _items.c.order_id,
            _items.c.quantity,
            _orders.c.placed_at,
        )
        .select_from(_items.join(_orders, _orders.c.id == _items.c.order_id))
        .where(_orders.c.status != CANCELLED)
    )
    if since is not None:
        query = query.where(_orders.c.placed_at >= since)
    rows = session.execute(query).all()
    if not rows:
        empty = np.empty(0, dtype=np.int64)
        return OrderLines(empty, empty, empty, np.empty(0), empty)
    cols = list(zip(*rows, strict=True))
    return OrderLines(
        customer=np.asarray(cols[0], dtype=np.int64),
        product=np.asarray(cols[1], dtype=np.int64),
        order=np.asarray(cols[2], dtype=np.int64),
        quantity=np.asarray(cols[3], dtype=np.float64),
        placed_at=to_epoch_seconds(list(cols[4])),
    )


_FACT_COLUMNS = (
    _products.c.id,
    _products.c.name,
    _products.c.category_id,
    _products.c.price_minor,
    _products.c.is_active,
    _products.c.stock,
    _products.c.attributes,
)


# ProductFacts' fields as a plain tuple: what a serving process keeps for its whole catalogue
# (why plain: recommend.cache, "Plain tuples").
FactValues = tuple[int, str, int | None, int, bool, bool]


def _fact_values(
    id: Any, name: Any, category_id: Any, price_minor: Any, active: Any, stock: Any, attrs: Any
) -> FactValues:
    """From the columns of _FACT_COLUMNS, as SQLAlchemy or the driver gives them (the
    attributes as a dict, or as JSON text from SQLite's driver)."""
    if isinstance(attrs, str):  # the driver's text: parsed only if it can say anything
        attrs = json.loads(attrs) if "repeat_purchase" in attrs else None
    return (
        int(id),
        str(name),
        None if category_id is None else int(category_id),
        int(price_minor),
        bool(active) and int(stock or 0) > 0,
        isinstance(attrs, dict) and attrs.get("repeat_purchase") is True,
    )


def _facts(*columns: Any) -> ProductFacts:
    return ProductFacts._make(_fact_values(*columns))


def all_products(session: Session) -> list[ProductFacts]:
    query = select(*_FACT_COLUMNS).order_by(_products.c.id)
    return [_facts(*r) for r in session.execute(query)]


_CATALOGUE = DriverQuery(select(*_FACT_COLUMNS))


def catalogue(session: Session, chunk: int) -> Iterator[dict[int, FactValues]]:
    """Every product's facts by id as plain tuples, read through the driver, `chunk`
    products at a time (what a serving process keeps: recommend.cache)."""
    for rows in _CATALOGUE.chunks(session, chunk):
        yield {int(r[0]): _fact_values(*r) for r in rows}


def products(session: Session, ids: Iterable[int]) -> dict[int, ProductFacts]:
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    rows = session.execute(select(*_FACT_COLUMNS).where(_products.c.id.in_(wanted)))
    return {int(r[0]): _facts(*r) for r in rows}


def product_exists(session: Session, product_id: int) -> bool:
    query = select(_products.c.id).where(_products.c.id == product_id)
    return session.execute(query).first() is not None


# Serving's per-request statements, built once: constructing a statement costs more than
# running it on a warm index (the compiled SQL is cached by SQLAlchemy either way).
_last_bought = func.max(_orders.c.placed_at)
_HISTORY = (
    select(_items.c.product_id, _last_bought)
    .select_from(_orders.join(_items, _items.c.order_id == _orders.c.id))
    .where(_orders.c.customer_id == bindparam("customer_id"), _orders.c.status != CANCELLED)
    .group_by(_items.c.product_id)
    .order_by(desc(_last_bought), _items.c.product_id)
    .limit(bindparam("limit", type_=Integer))
)


_HISTORY_ROWS = DriverQuery(_HISTORY)


def history(session: Session, customer_id: int, limit: int) -> list[int]:
    """The customer's distinct bought products, most recently bought first (at most `limit`)."""
    return [int(r[0]) for r in _HISTORY_ROWS.rows(session, customer_id=customer_id, limit=limit)]


# -- builds and the current pointer ----------------------------------------------------------
def _current_select() -> Any:
    return select(Current.build_id).where(Current.id == CURRENT_ID)


def _current_build() -> Any:
    return _current_select().scalar_subquery()


def current_build(session: Session) -> Build | None:
    return session.execute(
        select(Build).join(Current, Current.build_id == Build.id).where(Current.id == CURRENT_ID)
    ).scalar_one_or_none()


_builds = Build.__table__.c
_CURRENT_KEY = (
    select(_builds.id, _builds.started_at)
    .join_from(Current.__table__, Build.__table__, _builds.id == Current.__table__.c.build_id)
    .where(Current.__table__.c.id == CURRENT_ID)
)


_CURRENT_KEY_ROW = DriverQuery(_CURRENT_KEY)


def current_key(session: Session) -> tuple[int, object] | None:
    """(id, start) of the current build, the start as the driver gives it (text on SQLite):
    serving's per-request check that its cache is of the current build, so the cheapest
    statement there is (one row, through the driver)."""
    row = _CURRENT_KEY_ROW.first(session)
    return None if row is None else (int(row[0]), row[1])


def latest_builds(session: Session, limit: int = 10) -> list[Build]:
    return list(session.scalars(select(Build).order_by(Build.id.desc()).limit(limit)))


def start_build(session: Session, model: str, started_at: datetime) -> Build:
    build = Build(model=model, status="running", started_at=started_at, rows=0, order_lines=0)
    session.add(build)
    session.flush()
    return build


def finish_build(
    session: Session, build_id: int, *, status: str, finished_at: datetime, **values: Any
) -> None:
    session.execute(
        update(Build)
        .where(Build.id == build_id)
        .values(status=status, finished_at=finished_at, **values)
    )


def flip(session: Session, build_id: int) -> None:
    """Point serving at `build_id` (the caller commits: one transaction)."""
    found = session.execute(
        update(Current).where(Current.id == CURRENT_ID).values(build_id=build_id)
    )
    if not getattr(found, "rowcount", 0):
        session.execute(insert(Current).values(id=CURRENT_ID, build_id=build_id))


def get_build(session: Session, build_id: int) -> Build:
    return session.get_one(Build, build_id)


def delete_old_builds(session: Session, abandoned_before: datetime) -> int:
    """Every build but the current one, except builds still running (unless abandoned)."""
    current = session.execute(_current_select()).scalar_one_or_none()
    old = list(
        session.scalars(
            select(Build.id).where(
                Build.id != (current or 0),
                (Build.status != "running") | (Build.started_at < abandoned_before),
            )
        )
    )
    if not old:
        return 0
    for model in (SimilarItem, BoughtTogether, Trending):
        session.execute(delete(model).where(model.build_id.in_(old)))
    session.execute(delete(Build).where(Build.id.in_(old)))
    return len(old)


def delete_build_rows(session: Session, build_id: int) -> None:
    for model in (SimilarItem, BoughtTogether, Trending):
        session.execute(delete(model).where(model.build_id == build_id))


def insert_rows(session: Session, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    chunk = 5000
    for start in range(0, len(rows), chunk):
        session.execute(insert(model), list(rows[start : start + chunk]))


# -- serving lookups: one indexed query each, always against the current build --------------
def _build(build_id: int | None) -> Any:
    return _current_build() if build_id is None else literal(build_id)


def neighbours(
    session: Session,
    kind: str,
    product_ids: Sequence[int],
    per_item: int,
    *,
    build_id: int | None = None,
) -> list[tuple[int, int, float, str]]:
    """(product, neighbour, score, model) of the current build (or of `build_id`), best first
    per product."""
    if not product_ids:
        return []
    query = (
        select(
            SimilarItem.product_id, SimilarItem.neighbour_id, SimilarItem.score, SimilarItem.model
        )
        .where(
            SimilarItem.build_id == _build(build_id),
            SimilarItem.kind == kind,
            SimilarItem.product_id.in_(list(product_ids)),
            SimilarItem.rank < per_item,
        )
        .order_by(SimilarItem.product_id, SimilarItem.rank)
    )
    return [(int(a), int(b), float(c), str(d)) for a, b, c, d in session.execute(query)]


def neighbour_table(
    session: Session, kind: str, build_id: int
) -> list[tuple[int, int, float, str]]:
    """Every (product, neighbour, score, model) row of one kind of a build, best first per
    product: what a serving process caches at once (recommend.cache.warm). Read through the
    driver's cursor: a million rows through SQLAlchemy's result objects take ~2 s, ~0.5 s so."""
    mark = "?" if session.get_bind().dialect.name == "sqlite" else "%s"
    sql = (
        "SELECT product_id, neighbour_id, score, model "  # noqa: S608 (no user text in it)
        f"FROM {SimilarItem.__tablename__} WHERE build_id = {mark} AND kind = {mark} "
        "ORDER BY product_id, rank"
    )
    cursor: Any = session.connection().connection.cursor()
    try:
        cursor.execute(sql, (build_id, kind))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def together(
    session: Session, product_ids: Sequence[int], per_item: int, *, build_id: int | None = None
) -> list[tuple[int, int, float]]:
    if not product_ids:
        return []
    query = (
        select(BoughtTogether.product_id, BoughtTogether.neighbour_id, BoughtTogether.confidence)
        .where(
            BoughtTogether.build_id == _build(build_id),
            BoughtTogether.product_id.in_(list(product_ids)),
            BoughtTogether.rank < per_item,
        )
        .order_by(BoughtTogether.product_id, BoughtTogether.rank)
    )
    return [(int(a), int(b), float(c)) for a, b, c in session.execute(query)]


def trending(
    session: Session, category_id: int, limit: int, *, build_id: int | None = None
) -> list[tuple[int, float]]:
    query = (
        select(Trending.product_id, Trending.buyers)
        .where(
            Trending.build_id == _build(build_id),
            Trending.category_id == category_id,
        )
        .order_by(Trending.rank)
        .limit(limit)
    )
    return [(int(a), float(b)) for a, b in session.execute(query)]


# -- click-through from the tracking events --------------------------------------------------
def list_event_counts(
    session: Session, names: Sequence[str], since: datetime
) -> list[tuple[str, str, int]]:
    """(event name, first 4 characters of its list_id, count) for recommendation events.

    The first four hex digits of a recommendation id encode its placement and model
    (serving.py), so click-through groups in SQL without a table of served lists.
    """
    list_id = _events.c.properties["list_id"].as_string()
    prefix = func.substr(list_id, 1, 4, type_=String)
    query = (
        select(_events.c.name, prefix, func.count())
        .where(
            _events.c.name.in_(list(names)),
            _events.c.timestamp >= since,
            func.length(list_id) == 36,
            func.substr(list_id, 15, 1) == literal("8"),
        )
        .group_by(_events.c.name, prefix)
    )
    return [(str(a), str(b), int(c)) for a, b, c in session.execute(query)]


def clickers(session: Session, since: datetime) -> list[int]:
    """Customers who clicked a recommended item since `since` (the "clickers" segment)."""
    events = table(
        "events",
        column("name"),
        column("customer_id"),
        column("properties", Json),
        column("timestamp", UTCDateTime()),
    )
    list_id = events.c.properties["list_id"].as_string()
    query = (
        select(events.c.customer_id)
        .where(
            events.c.name == "Product Clicked",
            events.c.timestamp >= since,
            events.c.customer_id.is_not(None),
            func.length(list_id) == 36,
            func.substr(list_id, 15, 1) == literal("8"),
        )
        .distinct()
        .order_by(events.c.customer_id)
    )
    return [int(r[0]) for r in session.execute(query)]
