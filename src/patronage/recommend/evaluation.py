"""Offline evaluation: ranking metrics, patronage's models next to the baselines, one report.

Protocol (docs/recommendations.md): a split gives each evaluated user a train history and
held-out items. Every model is fitted on the train matrix and asked for its top max(ks)
items per evaluated user, already-bought items excluded; metrics compare those lists with
the held-out items:

- precision@k = hits / k; recall@k = hits / |relevant|; hit rate@k = 1 if any hit;
- NDCG@k = Σ_{i ≤ k} rel_i / log2(i + 1) divided by the same sum for the ideal list
  (min(k, |relevant|) hits first);
- MAP@k: mean over users of AP@k = Σ_{i ≤ k} precision@i · rel_i / min(k, |relevant|);
- coverage@k = distinct items in all top-k lists / catalogue size.

All are means over evaluated users (coverage excepted), in [0, 1].
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from rich.table import Table

from patronage.errors import ValidationFailed
from patronage.recommend.algorithms.als import ALS
from patronage.recommend.algorithms.base import Recommender
from patronage.recommend.algorithms.baselines import ImplicitModel
from patronage.recommend.algorithms.item_to_item import ItemToItem
from patronage.recommend.algorithms.popular import MostPopular
from patronage.recommend.interactions import Split

KS = (5, 10, 20)
METRICS = ("precision", "recall", "ndcg", "hit_rate", "map", "coverage")
# the model served for personal lists unless an evaluation says otherwise
DEFAULT_MODEL = "item-to-item"
DEFAULT_METRIC = "ndcg@10"


def hit_matrix(recs: NDArray[np.int64], relevant: sp.csr_matrix) -> NDArray[np.bool_]:
    """hits[u, i] is True when recs[u, i] is one of row u's relevant items."""
    recs = np.asarray(recs, dtype=np.int64)
    if recs.ndim != 2 or recs.shape[0] != relevant.shape[0]:
        raise ValidationFailed("one row of recommendations per relevant row is needed")
    n_items = relevant.shape[1]
    rel = sp.csr_matrix(relevant)
    rel_rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    rel_keys = np.sort(rel_rows * n_items + rel.indices.astype(np.int64))
    rows = np.arange(recs.shape[0], dtype=np.int64)[:, None]
    keys = rows * n_items + recs
    found = np.isin(keys, rel_keys) & (recs >= 0)
    return np.asarray(found, dtype=bool)


def ranking_metrics(
    recs: NDArray[np.int64], relevant: sp.csr_matrix, k: int, *, n_items: int | None = None
) -> dict[str, float]:
    """The six metrics at cut-off k (see the module docstring) for aligned rows."""
    if k < 1:
        raise ValidationFailed("k must be positive")
    recs = np.asarray(recs, dtype=np.int64)[:, :k]
    if recs.shape[1] < k:
        recs = np.pad(recs, ((0, 0), (0, k - recs.shape[1])), constant_values=-1)
    n_rel = np.diff(sp.csr_matrix(relevant).indptr).astype(np.float64)
    if recs.shape[0] == 0 or bool((n_rel == 0).any()):
        raise ValidationFailed("every evaluated row needs at least one relevant item")
    hits = hit_matrix(recs, relevant).astype(np.float64)
    n_hits = hits.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k).astype(np.int64) - 1]
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    items = int(n_items if n_items is not None else relevant.shape[1])
    shown = np.unique(recs[recs >= 0])
    return {
        "precision": float(np.mean(n_hits / k)),
        "recall": float(np.mean(n_hits / n_rel)),
        "ndcg": float(np.mean((hits @ discounts) / ideal)),
        "hit_rate": float(np.mean(n_hits > 0)),
        "map": float(np.mean((precision_at_i * hits).sum(axis=1) / np.minimum(n_rel, k))),
        "coverage": float(shown.size / items) if items else 0.0,
    }


@dataclass
class Report:
    """Metrics per model (`metrics[model]["ndcg@10"]`), which model wins each, and timings."""

    protocol: str
    users: int
    items: int
    metrics: dict[str, dict[str, float]]
    fit_seconds: dict[str, float]
    baselines: tuple[str, ...]
    stats: dict[str, Any] = field(default_factory=dict)

    def winners(self) -> dict[str, str]:
        """Best model per metric; a tie goes to the model listed first."""
        names = list(self.metrics)
        keys = list(self.metrics[names[0]]) if names else []
        return {
            key: max(names, key=lambda m: (self.metrics[m][key], -names.index(m))) for key in keys
        }

    def best(self, metric: str = DEFAULT_METRIC, *, baselines: bool = False) -> str:
        """The patronage model (or any model, with `baselines`) that wins `metric`."""
        names = [m for m in self.metrics if baselines or m not in self.baselines]
        if not names:
            raise ValidationFailed("no model in the report")
        return max(names, key=lambda m: (self.metrics[m][metric], -names.index(m)))

    def beats_baselines(self, model: str = DEFAULT_MODEL, metric: str = DEFAULT_METRIC) -> bool:
        """Whether `model` is at least as good as every baseline on `metric`."""
        mine = self.metrics[model][metric]
        return all(mine >= self.metrics[b][metric] for b in self.baselines if b in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "users": self.users,
            "items": self.items,
            "metrics": self.metrics,
            "fit_seconds": self.fit_seconds,
            "baselines": list(self.baselines),
            "winners": self.winners(),
            "stats": self.stats,
        }

    def table(self, ks: Iterable[int] = KS) -> Table:
        """A Rich table: one row per model, one column per metric@k, winners in bold."""
        cols = [f"{m}@{k}" for m in METRICS for k in ks if f"{m}@{k}" in self._keys()]
        table = Table(title=f"Recommendation quality — {self.protocol}, {self.users} users")
        table.add_column("model", no_wrap=True)
        for col in cols:
            table.add_column(col, justify="right")
        table.add_column("fit s", justify="right")
        wins = self.winners()
        for name, values in self.metrics.items():
            label = f"{name} (baseline)" if name in self.baselines else name
            cells = [
                f"[bold]{values[c]:.4f}[/]" if wins.get(c) == name else f"{values[c]:.4f}"
                for c in cols
            ]
            table.add_row(label, *cells, f"{self.fit_seconds.get(name, 0.0):.2f}")
        return table

    def _keys(self) -> set[str]:
        return {key for values in self.metrics.values() for key in values}


def default_models(random_state: int = 0) -> dict[str, Recommender]:
    """patronage's candidate models for personal lists, default first."""
    return {
        DEFAULT_MODEL: ItemToItem(random_state=random_state),
        "item-to-item/cosine": ItemToItem(similarity="cosine", random_state=random_state),
        "item-to-item/smith-linden": ItemToItem(
            similarity="smith_linden", random_state=random_state
        ),
        "als": ALS(random_state=random_state),
    }


def baseline_models(random_state: int = 0) -> dict[str, Recommender]:
    """The references of the same run: most popular, implicit's ALS and BM25 item-kNN."""
    return {
        "most-popular": MostPopular(random_state=random_state),
        "implicit-als": ImplicitModel("als", random_state=random_state, options=IMPLICIT_ALS),
        "implicit-bm25": ImplicitModel("bm25", random_state=random_state, options=IMPLICIT_BM25),
    }


# the library on raw counts with the same factorisation settings as patronage's ALS, and its
# BM25 item-kNN with its default weighting and 100 neighbours (patronage keeps 50)
IMPLICIT_ALS: dict[str, Any] = {"factors": 32, "regularization": 1.0, "iterations": 15}
IMPLICIT_BM25: dict[str, Any] = {"K": 100, "K1": 1.2, "B": 0.75}


def evaluate(
    split: Split,
    models: Mapping[str, Recommender] | None = None,
    *,
    baselines: Mapping[str, Recommender] | None = None,
    ks: Iterable[int] = KS,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Fit every model and baseline on `split.train`, score the held-out items, report."""
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValidationFailed("ks must be positive cut-offs")
    mine = dict(models) if models is not None else default_models(random_state)
    refs = dict(baselines) if baselines is not None else baseline_models(random_state)
    users = split.eval_users
    if users.size == 0:
        raise ValidationFailed("the split has no user with held-out items")
    train = split.train.matrix
    histories = sp.csr_matrix(train[users])
    relevant = sp.csr_matrix(split.test[users])
    metrics: dict[str, dict[str, float]] = {}
    fit_seconds: dict[str, float] = {}
    for name, model in {**mine, **refs}.items():
        if progress:
            progress(name)
        started = time.perf_counter()
        model.fit(train)
        fit_seconds[name] = round(time.perf_counter() - started, 3)
        recs = _recommend(model, histories, users, max(ks), serving=name in mine)
        row: dict[str, float] = {}
        for k in ks:
            for metric, value in ranking_metrics(recs, relevant, k, n_items=train.shape[1]).items():
                row[f"{metric}@{k}"] = value
        metrics[name] = row
    return Report(
        protocol=split.protocol,
        users=int(users.size),
        items=int(train.shape[1]),
        metrics=metrics,
        fit_seconds=fit_seconds,
        baselines=tuple(refs),
        stats=dict(split.stats),
    )


def _recommend(
    model: Recommender,
    histories: sp.csr_matrix,
    users: NDArray[np.int64],
    n: int,
    *,
    serving: bool,
) -> NDArray[np.int64]:
    """patronage models score the history as served (fold-in); baselines use their rows."""
    recommend: Callable[..., tuple[NDArray[np.int64], NDArray[np.float64]]] = model.recommend
    takes_users = "users" in inspect.signature(recommend).parameters
    if takes_users and not serving:
        ids, _ = recommend(histories, n, users=users)
    else:
        ids, _ = recommend(histories, n)
    return np.asarray(ids, dtype=np.int64)
