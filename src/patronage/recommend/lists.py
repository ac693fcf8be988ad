"""The lists a customer sees, with the rules every list obeys.

Every placement (also bought, for you, bought together, cross-sell, upsell) turns model
candidates into a final list through `apply_rules`:

- no item the customer already bought, unless it is a repeat-purchase kind;
- nothing out of stock; no duplicates; an optional category filter;
- diversity: at most `max_per_category` items of one category;
- an explanation per item: the item it comes from ("because you bought X"), or -1 for the
  fallback (trending / most popular) that tops up short lists.

Items are catalogue indices (the columns of the interaction matrix).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from patronage.errors import ValidationFailed
from patronage.recommend.algorithms.base import check_n, top_row
from patronage.recommend.algorithms.neighbours import neighbours_of, reasons, score_histories

MODEL = "model"
FALLBACK = "fallback"


@dataclass(frozen=True)
class Catalogue:
    """What the rules need per item: category (-1: none), in stock, repeat-purchase kind."""

    category: NDArray[np.int64]
    in_stock: NDArray[np.bool_]
    repeatable: NDArray[np.bool_]

    def __post_init__(self) -> None:
        n = self.category.shape
        if self.in_stock.shape != n or self.repeatable.shape != n or len(n) != 1:
            raise ValidationFailed("catalogue arrays must have one value per item")

    @property
    def n_items(self) -> int:
        return int(self.category.size)

    @classmethod
    def open(cls, n_items: int) -> Catalogue:
        """Everything in stock, no categories, nothing repeatable."""
        return cls(
            category=np.full(n_items, -1, dtype=np.int64),
            in_stock=np.ones(n_items, dtype=bool),
            repeatable=np.zeros(n_items, dtype=bool),
        )


@dataclass(frozen=True)
class Rules:
    exclude_bought: bool = True
    in_stock_only: bool = True
    max_per_category: int | None = None
    category: int | None = None


@dataclass(frozen=True)
class Recommended:
    item: int
    score: float
    because: int
    source: str


class PersonalModel(Protocol):
    def recommend(
        self, user_items: Any, n: int = 10, *, exclude_seen: bool = True
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]: ...

    def explain(
        self, history: NDArray[np.int64], items: NDArray[np.int64]
    ) -> NDArray[np.int64]: ...


def apply_rules(
    ids: ArrayLike,
    scores: ArrayLike,
    *,
    n: int,
    catalogue: Catalogue,
    bought: ArrayLike = (),
    because: ArrayLike | None = None,
    rules: Rules = Rules(),
    always_exclude: ArrayLike = (),
    fallback: ArrayLike = (),
) -> list[Recommended]:
    """The first n candidates (in order) that pass every rule, then fallback items.

    `bought` items are skipped unless repeatable (with `rules.exclude_bought`);
    `always_exclude` items (the product on show, the basket) are skipped regardless.
    """
    n = min(check_n(n), catalogue.n_items)
    cand = np.asarray(ids, dtype=np.int64).reshape(-1)
    vals = np.asarray(scores, dtype=np.float64).reshape(-1)
    why = (
        np.full(cand.size, -1, dtype=np.int64)
        if because is None
        else np.asarray(because, dtype=np.int64).reshape(-1)
    )
    if vals.shape != cand.shape or why.shape != cand.shape:
        raise ValidationFailed("ids, scores and reasons must align")
    blocked = np.zeros(catalogue.n_items, dtype=bool)
    blocked[_valid(always_exclude, catalogue.n_items)] = True
    if rules.exclude_bought:
        owned = _valid(bought, catalogue.n_items)
        blocked[owned[~catalogue.repeatable[owned]]] = True
    if rules.in_stock_only:
        blocked |= ~catalogue.in_stock
    if rules.category is not None:
        blocked |= catalogue.category != rules.category
    per_category: dict[int, int] = {}
    out: list[Recommended] = []

    def take(item: int, score: float, reason: int, source: str) -> None:
        if item < 0 or item >= catalogue.n_items or blocked[item]:
            return
        cat = int(catalogue.category[item])
        if rules.max_per_category is not None and cat >= 0:
            if per_category.get(cat, 0) >= rules.max_per_category:
                return
            per_category[cat] = per_category.get(cat, 0) + 1
        blocked[item] = True  # no duplicates
        out.append(Recommended(item=item, score=score, because=reason, source=source))

    for item, score, reason in zip(cand.tolist(), vals.tolist(), why.tolist(), strict=True):
        if len(out) >= n:
            break
        if np.isfinite(score):
            take(int(item), float(score), int(reason), MODEL)
    for item in np.asarray(fallback, dtype=np.int64).reshape(-1).tolist():
        if len(out) >= n:
            break
        take(int(item), 0.0, -1, FALLBACK)
    return out


def also_bought(
    table: sp.csr_matrix,
    item: int,
    *,
    n: int,
    catalogue: Catalogue,
    rules: Rules = Rules(exclude_bought=False),
    bought: ArrayLike = (),
    fallback: ArrayLike = (),
) -> list[Recommended]:
    """Customers who bought `item` also bought …; also serves upsell tables."""
    _check_table(table, catalogue)
    ids, scores = neighbours_of(table, int(item), catalogue.n_items)
    return apply_rules(
        ids,
        scores,
        n=n,
        catalogue=catalogue,
        bought=bought,
        because=np.full(ids.size, int(item)),
        rules=rules,
        always_exclude=[int(item)],
        fallback=fallback,
    )


def from_history(
    table: sp.csr_matrix,
    history: ArrayLike,
    *,
    n: int,
    catalogue: Catalogue,
    rules: Rules = Rules(),
    fallback: ArrayLike = (),
    basket: bool = False,
) -> list[Recommended]:
    """For you (item-to-item), cross-sell, or bought together (`basket`: the items in the
    basket are never suggested, even repeatable ones) — scored through an item table."""
    _check_table(table, catalogue)
    items = _history(history, catalogue.n_items)
    row = sp.csr_matrix(
        (np.ones(items.size, dtype=np.float32), (np.zeros(items.size, dtype=np.int64), items)),
        shape=(1, catalogue.n_items),
    )
    scores = score_histories(table, row)
    ids, vals = top_row(scores.indices.astype(np.int64), scores.data, scores.nnz or 1)
    return apply_rules(
        ids,
        vals,
        n=n,
        catalogue=catalogue,
        bought=items,
        because=reasons(table, items, ids),
        rules=rules,
        always_exclude=items if basket else (),
        fallback=fallback,
    )


def from_model(
    model: PersonalModel,
    history: ArrayLike,
    *,
    n: int,
    catalogue: Catalogue,
    rules: Rules = Rules(),
    fallback: ArrayLike = (),
) -> list[Recommended]:
    """For you from any fitted personal model with `recommend` and `explain` (e.g. ALS)."""
    items = _history(history, catalogue.n_items)
    row = sp.csr_matrix(
        (np.ones(items.size, dtype=np.float32), (np.zeros(items.size, dtype=np.int64), items)),
        shape=(1, catalogue.n_items),
    )
    # rules may drop candidates: ask for enough to fill n after the history is removed
    want = min(catalogue.n_items, check_n(n) * 4 + items.size)
    ids, scores = model.recommend(row, want, exclude_seen=False)
    ids, scores = ids[0], scores[0]
    keep = ids >= 0
    ids, scores = ids[keep], scores[keep]
    return apply_rules(
        ids,
        scores,
        n=n,
        catalogue=catalogue,
        bought=items,
        because=model.explain(items, ids),
        rules=rules,
        fallback=fallback,
    )


def explain_text(entry: Recommended, names: Iterable[str] | NDArray[Any]) -> str:
    """ "Because you bought X" for a list entry, or "Popular right now" for a fallback item."""
    if entry.because < 0:
        return "Popular right now"
    return f"Because you bought {np.asarray(names)[entry.because]}"


def _valid(items: ArrayLike, n_items: int) -> NDArray[np.int64]:
    arr = np.asarray(items, dtype=np.int64).reshape(-1)
    return arr[(arr >= 0) & (arr < n_items)]


def _history(history: ArrayLike, n_items: int) -> NDArray[np.int64]:
    items = np.asarray(history, dtype=np.int64).reshape(-1)
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise ValidationFailed("history holds an unknown item")
    return np.unique(items)


def _check_table(table: sp.csr_matrix, catalogue: Catalogue) -> None:
    if table.shape != (catalogue.n_items, catalogue.n_items):
        raise ValidationFailed("the item table does not match the catalogue")
