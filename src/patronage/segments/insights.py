"""Personas and next-category predictions, computed from the store and kept in tables.

The store is read the way the segment engine reads it (segments.engine: SQLAlchemy Core
clauses by table and column name, never another capability's models) into an in-memory
DuckDB; aggregation happens there, modelling in NumPy (segments.personas, segments.nextcat).
Results are written with one bulk write per table, in the caller's transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from sqlalchemy import String, and_, column, delete, func, select, table
from sqlalchemy.orm import Session

from patronage.errors import ValidationFailed
from patronage.kit import bulkwrite
from patronage.kit.clock import utcnow
from patronage.segments import nextcat, personas
from patronage.segments.compiler import TABLES, naive_utc
from patronage.segments.engine import (
    _ARROW,
    BATCH,
    STORE_NAMES,
    DuckDBEngine,
    _arrow,
    _selected,
    clause,
)
from patronage.segments.models import (
    NextCategory,
    NextCategoryRun,
    Persona,
    PersonaMember,
    PersonaRun,
)
from patronage.segments.schemas import (
    CustomerNextCategoriesRead,
    CustomerPersonaRead,
    HitRateRead,
    NextCategoryEvaluationRead,
    NextCategoryRead,
    NextCategoryRunRead,
    PersonaRead,
    PersonasRead,
    SilhouetteRead,
    TraitRead,
)

Progress = Callable[[str], None]
_CATEGORIES = table(
    "categories", column("id"), column("name", String()), column("parent_id"), column("path")
)


def _duck(session: Session, names: list[str]) -> duckdb.DuckDBPyConnection:
    """The compiler tables `names` of the store, copied into an in-memory DuckDB."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    for name in names:
        t = clause(name)
        result = session.execute(select(*_selected(name, t)))
        batches = []
        while rows := result.fetchmany(BATCH):
            batches.append(_arrow(name, rows))
        schema = pa.schema([(c, _ARROW[k]) for c, k in TABLES[name].items()])
        DuckDBEngine.register(con, name, pa.Table.from_batches(batches, schema=schema))
    rows = session.execute(
        select(_CATEGORIES.c.id, _CATEGORIES.c.name, _CATEGORIES.c.parent_id, _CATEGORIES.c.path)
    ).all()
    cats = pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "name": pa.array([r[1] for r in rows], pa.string()),
            "parent_id": pa.array([r[2] for r in rows], pa.int64()),
            "path": pa.array([r[3] for r in rows], pa.string()),
        }
    )
    DuckDBEngine.register(con, "categories", cats)
    return con


# -- personas ----------------------------------------------------------------------------------

# features clustered: (name, words for the page, log-transformed before scaling)
PERSONA_FEATURES: list[tuple[str, str, bool]] = [
    ("age", "age", False),
    ("metropolitan", "lives in a top-10 city", False),
    ("tenure_days", "days since signup", False),
    ("recency_days", "days since the last order", False),
    ("orders", "orders", True),
    ("total_spend_minor", "total spend", True),
    ("aov_minor", "average order value", True),
    ("distinct_categories", "categories bought", False),
    ("sessions_30d", "sessions in 30 days", True),
    ("product_views_30d", "product views in 30 days", True),
    ("abandoned_carts", "abandoned carts", True),
    ("return_rate", "return rate", False),
    ("discount_rate", "share of orders with a discount", False),
    ("support_contacts", "support contacts", True),
]
TOP_CATEGORIES = 8  # category-share features: the top-level categories with the most lines


@dataclass(frozen=True)
class PersonaFrame:
    """The clustering input: one row per customer of the latest analytics refresh."""

    customer_ids: NDArray[np.int64]
    raw: NDArray[np.float64]  # natural units, NaN when unknown
    names: list[str]
    labels: dict[str, str]  # feature -> words
    logged: list[bool]
    spend: NDArray[np.float64]
    clv: NDArray[np.float64]  # NaN when not scored

    def matrix(self) -> NDArray[np.float64]:
        """log1p where marked, unknown values at the column mean (z = 0: says nothing)."""
        x = self.raw.copy()
        for j, logged in enumerate(self.logged):
            if logged:
                x[:, j] = np.log1p(np.maximum(x[:, j], 0.0))
        means = np.nan_to_num(np.nanmean(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0))
        return np.where(np.isnan(x), means, x)


def _plain(name: str) -> Any:
    """The store table behind compiler table `name` with untyped columns: rows come back as
    the driver gives them, without a result processor per value (1M rows: seconds saved)."""
    return table(STORE_NAMES.get(name, name), *(column(c) for c in TABLES[name]))


def _top_level(session: Session) -> tuple[dict[int, int], dict[int, str]]:
    """Category id -> its top-level ancestor's id (from the materialised path); names."""
    rows = session.execute(select(_CATEGORIES.c.id, _CATEGORIES.c.name, _CATEGORIES.c.path)).all()
    top: dict[int, int] = {}
    for cid, _, path in rows:
        first = (path or "").strip("/").split("/")[0]
        top[int(cid)] = int(first) if first.isdigit() else int(cid)
    return top, {int(cid): str(name) for cid, name, _ in rows}


def persona_frame(session: Session, now: datetime | None = None) -> PersonaFrame:
    """Features, age, metropolitan and top-level category shares, read from the store with
    three set-based queries (joins and aggregation inside the database; no per-row Python
    beyond turning the result columns into arrays)."""
    now = naive_utc(now or utcnow())
    f, c, s = _plain("features"), _plain("customers"), _plain("scores")
    feature_cols = [x for x, _, _ in PERSONA_FEATURES if x in TABLES["features"]]
    live = and_(c.c.id == f.c.customer_id, c.c.merged_into_id.is_(None))
    rows = session.execute(
        select(f.c.customer_id, c.c.birth_year, c.c.city, *(f.c[x] for x in feature_cols))
        .add_columns(s.c.clv_minor)
        .select_from(f.join(c, live).outerjoin(s, s.c.customer_id == f.c.customer_id))
        .order_by(f.c.customer_id)
    ).all()
    width = 4 + len(feature_cols)
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * width
    ids = np.array(cols[0], dtype=np.int64)
    n = len(ids)
    top_cities = {
        city
        for city, _ in session.execute(
            select(c.c.city, func.count())
            .where(c.c.merged_into_id.is_(None), c.c.city.is_not(None))
            .group_by(c.c.city)
            .order_by(func.count().desc(), c.c.city)
            .limit(10)
        )
    }
    metropolitan = np.fromiter(
        (np.nan if v is None else float(v in top_cities) for v in cols[2]), np.float64, n
    )
    # None -> NaN: NumPy's float conversion of a Python None
    age = now.year - np.array(cols[1], dtype=np.float64)
    names = ["age", "metropolitan", *feature_cols]
    columns = [age, metropolitan, *(np.array(v, dtype=np.float64) for v in cols[3:-1])]
    labels = {x: words for x, words, _ in PERSONA_FEATURES}
    logged = [{x: lg for x, _, lg in PERSONA_FEATURES}[name] for name in names]
    spend = np.nan_to_num(columns[names.index("total_spend_minor")])
    clv = np.array(cols[-1], dtype=np.float64)

    # category shares: the customer's non-cancelled order lines per top-level category
    o, i, p = _plain("orders"), _plain("order_items"), _plain("products")
    share_rows = session.execute(
        select(o.c.customer_id, p.c.category_id, func.count())
        .select_from(o.join(i, i.c.order_id == o.c.id).join(p, p.c.id == i.c.product_id))
        .where(o.c.status != "cancelled", p.c.category_id.is_not(None))
        .group_by(o.c.customer_id, p.c.category_id)
    ).all()
    if share_rows and n:
        s_cust, s_cat, s_n = (np.array(v) for v in zip(*share_rows, strict=True))
        top_of, names_of = _top_level(session)
        cats, cat_index = np.unique(s_cat.astype(np.int64), return_inverse=True)
        s_top = np.array([top_of.get(int(x), int(x)) for x in cats], dtype=np.int64)[cat_index]
        s_n = s_n.astype(np.float64)
        tops, inverse = np.unique(s_top, return_inverse=True)
        volume = np.bincount(inverse, weights=s_n)
        keep = np.argsort(-volume, kind="stable")[:TOP_CATEGORIES]
        s_cust = s_cust.astype(np.int64)
        pos = np.searchsorted(ids, s_cust)
        known = (pos < n) & (ids[np.minimum(pos, n - 1)] == s_cust)
        totals = np.bincount(pos[known], weights=s_n[known], minlength=n)
        for t in sorted(keep, key=lambda j: int(tops[j])):
            mask = known & (inverse == t)
            count = np.bincount(pos[mask], weights=s_n[mask], minlength=n)
            feature = f"{personas.CATEGORY_PREFIX}{int(tops[t])}"
            names.append(feature)
            columns.append(np.divide(count, totals, out=np.zeros(n), where=totals > 0))
            labels[feature] = names_of.get(int(tops[t]), str(tops[t])).lower()
            logged.append(False)
    raw = np.column_stack(columns) if n else np.zeros((0, len(names)))
    return PersonaFrame(ids, raw, names, labels, logged, spend, clv)


def _cluster_means(
    values: NDArray[np.float64], labels: NDArray[np.int64], k: int
) -> NDArray[np.float64]:
    """Per cluster nan-mean of each column (NaN where a cluster has no known value)."""
    known = ~np.isnan(values)
    out = np.full((k, values.shape[1]), np.nan)
    for j in range(values.shape[1]):
        sums = np.bincount(labels[known[:, j]], weights=values[known[:, j], j], minlength=k)
        counts = np.bincount(labels[known[:, j]], minlength=k)
        out[:, j] = np.divide(sums, counts, out=np.full(k, np.nan), where=counts > 0)
    return out


def _finite(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def fit_personas(
    session: Session,
    frame: PersonaFrame,
    model: personas.PersonaModel,
    now: datetime | None = None,
) -> PersonasRead:
    """Cluster `frame`, match to the active personas, write personas, members and the run."""
    started = time.perf_counter()
    now = (now or utcnow()).astimezone(UTC)
    if len(frame.customer_ids) == 0:
        raise ValidationFailed(
            "no customer has analytics features yet: run the analytics refresh first"
        )
    x = frame.matrix()
    model.fit(x, frame.names)
    labels = model.labels_
    k = model.k_
    z = model.z_centers()
    previous = list(session.scalars(select(Persona).where(Persona.active.is_(True))))
    mapping = personas.match(
        model.cluster_centers_,
        frame.names,
        {p.id: dict(p.centroid) for p in previous},
        model.scale_,
    )
    by_id = {p.id: p for p in previous}
    sizes = np.bincount(labels, minlength=k)
    spend = np.bincount(labels, weights=frame.spend, minlength=k)
    clv_known = ~np.isnan(frame.clv)
    clv_total = np.bincount(labels[clv_known], weights=frame.clv[clv_known], minlength=k)
    clv_count = np.bincount(labels[clv_known], minlength=k)
    means = _cluster_means(frame.raw, labels, k)
    overall = np.nanmean(np.where(np.isnan(frame.raw).all(axis=0), 0.0, frame.raw), axis=0)
    orders_at = frame.names.index("orders") if "orders" in frame.names else None
    descriptions = [
        personas.describe(
            z[i],
            frame.names,
            frame.labels,
            never_bought=orders_at is not None and means[i, orders_at] == 0,
        )
        for i in range(k)
    ]
    # a cluster nobody is nearest to (customers that barely differ) is no persona
    mapping = {i: pid for i, pid in mapping.items() if sizes[i] > 0}
    kept = {mapping[i] for i in mapping}
    taken = {by_id[pid].name for pid in kept}
    fresh = [i for i in range(k) if i not in mapping and sizes[i] > 0]
    # names of personas not carried over are free again only once they are retired
    fresh_names = dict(
        zip(
            fresh,
            personas.unique_names(
                [descriptions[i].name for i in fresh],
                taken,
                [descriptions[i].longer for i in fresh],
            ),
            strict=True,
        )
    )
    run = PersonaRun(
        computed_at=now,
        k=k,
        customers=len(labels),
        silhouette=model.silhouette_,
        silhouettes=[{"k": kk, "silhouette": s} for kk, s in model.silhouettes_.items()],
        model=model.to_dict(),
        duration_ms=0,
    )
    session.add(run)
    session.flush()
    persona_of_cluster: list[Persona | None] = []
    for i in range(k):
        if sizes[i] == 0:
            persona_of_cluster.append(None)
            continue
        d = descriptions[i]
        index = {n: j for j, n in enumerate(frame.names)}
        traits = [
            {
                **t,
                "label": frame.labels.get(t["feature"], t["feature"]),
                "mean": _finite(means[i, index[t["feature"]]]),
                "overall": _finite(overall[index[t["feature"]]]),
            }
            for t in d.traits
        ]
        values = {
            "description": d.text[:1].upper() + d.text[1:] + ".",
            "active": True,
            "run_id": run.id,
            "centroid": dict(zip(frame.names, map(float, model.cluster_centers_[i]), strict=True)),
            "traits": traits,
            "size": int(sizes[i]),
            "share": round(float(sizes[i]) / len(labels), 6),
            "total_spend_minor": round(spend[i]),
            "mean_spend_minor": round(float(spend[i]) / max(int(sizes[i]), 1), 2),
            "total_clv_minor": round(float(clv_total[i]), 2) if clv_count[i] else None,
            "mean_clv_minor": round(float(clv_total[i] / clv_count[i]), 2)
            if clv_count[i]
            else None,
            "computed_at": now,
        }
        if i in mapping:
            p = by_id[mapping[i]]
            for key, value in values.items():
                setattr(p, key, value)
        else:
            p = Persona(name=fresh_names[i], created_at=now, **values)
            session.add(p)
        persona_of_cluster.append(p)
    for p in previous:
        if p.id not in kept:
            p.active, p.size, p.share = False, 0, 0.0
    session.flush()
    session.execute(delete(PersonaMember))
    persona_ids = np.array([p.id if p else 0 for p in persona_of_cluster], dtype=np.int64)
    bulkwrite.write_columns(
        session,
        PersonaMember.__table__,  # type: ignore[arg-type]
        {
            "customer_id": frame.customer_ids,
            "persona_id": persona_ids[labels],
            "computed_at": np.full(len(labels), np.datetime64(naive_utc(now), "us")),
        },
    )
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    session.flush()
    return personas_overview(session)


def refresh_personas(
    session: Session,
    now: datetime | None = None,
    *,
    k_min: int = 3,
    k_max: int = 8,
    random_state: int = 0,
    progress: Progress | None = None,
) -> PersonasRead:
    """Recompute the personas from the latest analytics features (one transaction)."""
    model = personas.PersonaModel(k_min=k_min, k_max=k_max, random_state=random_state)
    model._check_params()
    if progress:
        progress("reading features")
    frame = persona_frame(session, now)
    if progress:
        progress(f"clustering {len(frame.customer_ids):,} customers")
    return fit_personas(session, frame, model, now)


def _persona_read(p: Persona) -> PersonaRead:
    return PersonaRead(
        id=p.id,
        name=p.name,
        description=p.description,
        active=p.active,
        size=p.size,
        share=p.share,
        total_spend_minor=p.total_spend_minor,
        mean_spend_minor=p.mean_spend_minor,
        total_clv_minor=p.total_clv_minor,
        mean_clv_minor=p.mean_clv_minor,
        traits=[TraitRead(**t) for t in p.traits],
        computed_at=p.computed_at,
    )


def personas_overview(session: Session) -> PersonasRead:
    """The active personas of the latest run, largest first."""
    run = session.scalars(select(PersonaRun).order_by(PersonaRun.id.desc()).limit(1)).first()
    if run is None:
        return PersonasRead(
            computed_at=None, message="no personas yet: run `patronage segments personas refresh`"
        )
    rows = session.scalars(
        select(Persona).where(Persona.active.is_(True)).order_by(Persona.size.desc(), Persona.id)
    )
    return PersonasRead(
        computed_at=run.computed_at,
        k=run.k,
        customers=run.customers,
        silhouette=run.silhouette,
        silhouettes=[SilhouetteRead(**s) for s in run.silhouettes],
        duration_ms=run.duration_ms,
        personas=[_persona_read(p) for p in rows],
    )


def persona_of(session: Session, customer_id: int) -> CustomerPersonaRead:
    """The customer's persona in the latest run (None when not clustered)."""
    row = session.execute(
        select(Persona, PersonaMember.computed_at)
        .join(PersonaMember, PersonaMember.persona_id == Persona.id)
        .where(PersonaMember.customer_id == customer_id)
    ).first()
    if row is None:
        return CustomerPersonaRead(customer_id=customer_id, persona=None, computed_at=None)
    return CustomerPersonaRead(
        customer_id=customer_id, persona=_persona_read(row[0]), computed_at=row[1]
    )


# -- next category -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryLines:
    lines: nextcat.Lines
    category_ids: NDArray[np.int64]  # index -> category id
    names: dict[int, str]


def category_lines(session: Session) -> CategoryLines:
    """Distinct (customer, order, category) of non-cancelled orders of live customers."""
    con = _duck(session, ["customers", "orders", "order_items", "products"])
    try:
        data = con.sql(
            """
            SELECT DISTINCT o.customer_id,
                   epoch_us(o.placed_at) AS placed, o.id AS order_id, p.category_id
            FROM orders o
            JOIN customers c ON c.id = o.customer_id AND c.merged_into_id IS NULL
            JOIN order_items i ON i.order_id = o.id
            JOIN products p ON p.id = i.product_id
            WHERE o.status <> 'cancelled' AND p.category_id IS NOT NULL
              AND o.placed_at IS NOT NULL
            """
        ).to_arrow_table()
        names = {
            int(i): str(n) for i, n in con.execute("SELECT id, name FROM categories").fetchall()
        }
    finally:
        con.close()
    cats = data.column("category_id").to_numpy().astype(np.int64)
    category_ids, index = np.unique(cats, return_inverse=True)
    lines = nextcat.Lines(
        data.column("customer_id").to_numpy().astype(np.int64),
        data.column("placed").to_numpy().astype(np.int64),
        data.column("order_id").to_numpy().astype(np.int64),
        index.astype(np.int64),
        len(category_ids),
    )
    return CategoryLines(lines, category_ids, names)


def _run_read(run: NextCategoryRun) -> NextCategoryRunRead:
    return NextCategoryRunRead(
        computed_at=run.computed_at, duration_ms=run.duration_ms, **run.details
    )


def refresh_next_categories(
    session: Session, now: datetime | None = None, *, k: int = 3
) -> NextCategoryRunRead:
    """Predict every buyer's next `k` categories; replaces the previous predictions."""
    if not 1 <= k <= 20:
        raise ValidationFailed("k must be between 1 and 20")
    started = time.perf_counter()
    now = (now or utcnow()).astimezone(UTC)
    data = category_lines(session)
    session.execute(delete(NextCategory))
    customers = 0
    model = nextcat.NextCategoryModel()
    if len(data.lines.customer):
        model.fit(data.lines)
        h = nextcat.histories(data.lines)
        top, scores = model.predict(h, k)
        rank = np.broadcast_to(np.arange(1, k + 1), top.shape)
        ok = top >= 0
        customers = int(ok.any(axis=1).sum())
        bulkwrite.write_columns(
            session,
            NextCategory.__table__,  # type: ignore[arg-type]
            {
                "customer_id": np.broadcast_to(h.customers[:, None], top.shape)[ok],
                "rank": rank[ok].astype(np.int64),
                "category_id": data.category_ids[top[ok]],
                "score": np.round(scores[ok], 6),
                "computed_at": np.full(int(ok.sum()), np.datetime64(naive_utc(now), "us")),
            },
        )
    run = NextCategoryRun(
        kind="predict",
        computed_at=now,
        details={
            "customers": customers,
            "categories": len(data.category_ids),
            "transitions": getattr(model, "n_transitions_", 0),
            "k": k,
        },
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
    session.add(run)
    session.flush()
    return _run_read(run)


def next_categories_of(session: Session, customer_id: int) -> CustomerNextCategoriesRead:
    rows = session.execute(
        select(
            NextCategory.rank,
            NextCategory.category_id,
            NextCategory.score,
            NextCategory.computed_at,
        )
        .where(NextCategory.customer_id == customer_id)
        .order_by(NextCategory.rank)
    ).all()
    names = category_names(session, [r[1] for r in rows])
    return CustomerNextCategoriesRead(
        customer_id=customer_id,
        computed_at=rows[0][3] if rows else None,
        categories=[
            NextCategoryRead(rank=r, category_id=c, name=names.get(c, f"#{c}"), score=s)
            for r, c, s, _ in rows
        ],
    )


def latest_prediction(session: Session) -> NextCategoryRunRead | None:
    run = session.scalars(
        select(NextCategoryRun)
        .where(NextCategoryRun.kind == "predict")
        .order_by(NextCategoryRun.id.desc())
        .limit(1)
    ).first()
    return _run_read(run) if run else None


def _evaluation_read(run: NextCategoryRun) -> NextCategoryEvaluationRead:
    d = run.details
    return NextCategoryEvaluationRead(
        computed_at=run.computed_at,
        duration_ms=run.duration_ms,
        holdout_days=d["holdout_days"],
        cut=datetime.fromisoformat(d["cut"]) if d["cut"] else None,
        customers=d["customers"],
        train_lines=d["train_lines"],
        results=[HitRateRead(**r) for r in d["results"]],
    )


def evaluate_next_category(
    session: Session,
    holdout_days: int = 90,
    ks: tuple[int, ...] = (1, 3, 5),
    now: datetime | None = None,
) -> NextCategoryEvaluationRead:
    """Holdout hit rate @k of the model and of the most-popular baseline, in one run. The
    holdout is the last `holdout_days` days before the latest order (so a shop whose orders
    stopped some time ago is still evaluated on its own last months)."""
    if not 1 <= holdout_days <= 3650:
        raise ValidationFailed("the holdout must be between 1 and 3650 days")
    if not ks or min(ks) < 1 or max(ks) > 20:
        raise ValidationFailed("k values must be between 1 and 20")
    started = time.perf_counter()
    now = (now or utcnow()).astimezone(UTC)
    data = category_lines(session)
    cut_us: int | None = None
    result = None
    if len(data.lines.placed):
        cut_us = int(data.lines.placed.max()) - holdout_days * 86_400_000_000
        result = nextcat.holdout(data.lines, cut_us, sorted(set(ks)))
    results = [
        {
            "k": k,
            "hit_rate": result.hit_rate[k] if result else 0.0,
            "baseline_hit_rate": result.baseline_hit_rate[k] if result else 0.0,
            "recall": result.recall[k] if result else 0.0,
            "baseline_recall": result.baseline_recall[k] if result else 0.0,
        }
        for k in sorted(set(ks))
    ]
    cut = (
        (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=cut_us)).isoformat()
        if cut_us is not None
        else None
    )
    run = NextCategoryRun(
        kind="evaluate",
        computed_at=now,
        details={
            "holdout_days": holdout_days,
            "cut": cut,
            "customers": result.customers if result else 0,
            "train_lines": result.train_lines if result else 0,
            "results": results,
        },
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
    session.add(run)
    session.flush()
    return _evaluation_read(run)


def latest_evaluation(session: Session) -> NextCategoryEvaluationRead | None:
    run = session.scalars(
        select(NextCategoryRun)
        .where(NextCategoryRun.kind == "evaluate")
        .order_by(NextCategoryRun.id.desc())
        .limit(1)
    ).first()
    return _evaluation_read(run) if run else None


def category_names(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        int(i): str(n)
        for i, n in session.execute(
            select(_CATEGORIES.c.id, _CATEGORIES.c.name).where(_CATEGORIES.c.id.in_(ids))
        ).all()
    }
