"""Most popular items (the baseline every model must beat) and trending (the cold-start list)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from patronage.errors import ValidationFailed
from patronage.kit.clock import as_utc
from patronage.recommend.algorithms.base import (
    Recommender,
    check_matrix,
    check_n,
    popularity,
    popularity_order,
)
from patronage.recommend.algorithms.item_to_item import seen_mask
from patronage.recommend.interactions import DAY, to_epoch_seconds


class MostPopular(Recommender):
    """The same list for everyone: items by number of distinct buyers, ties by lower index."""

    _learned: ClassVar[tuple[str, ...]] = ("popularity_",)

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit(self, X: Any) -> Self:
        self.popularity_ = popularity(check_matrix(X))
        return self

    def recommend(
        self,
        user_items: Any,
        n: int = 10,
        *,
        exclude_seen: bool = True,
        repeatable: NDArray[np.bool_] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        self.check_fitted()
        n = check_n(n)
        histories = self._check_items(user_items, self.popularity_.size)
        order = popularity_order(self.popularity_)
        seen = seen_mask(histories, repeatable) if exclude_seen else None
        rows = histories.shape[0]
        ids = np.full((rows, n), -1, dtype=np.int64)
        scores = np.full((rows, n), -np.inf, dtype=np.float64)
        for r in range(rows):
            if seen is None:
                picked = order[:n]
            else:
                s = seen.indices[seen.indptr[r] : seen.indptr[r + 1]]
                cand = order[: n + s.size]
                picked = cand[~np.isin(cand, s)][:n]
            ids[r, : picked.size] = picked
            scores[r, : picked.size] = self.popularity_[picked]
        return ids, scores


@dataclass(frozen=True)
class Trend:
    """Items ranked by activity in a window: `counts[k]` belongs to `items[k]`."""

    items: NDArray[np.int64]
    counts: NDArray[np.float64]


def trending(
    items: ArrayLike,
    times: ArrayLike,
    *,
    n_items: int,
    days: float = 7,
    now: datetime | None = None,
    users: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    n: int | None = None,
) -> Trend:
    """Items bought most in the last `days` before `now` (default: the latest line).

    Counts distinct buyers when `users` is given (one bulk buyer cannot make a trend),
    else the sum of `weights` (e.g. quantities), else lines. Ties go to the item that was
    more popular over the whole history, then to the lower index. For a segment or a
    region, pass only that segment's lines.
    """
    item_arr = np.asarray(items, dtype=np.int64)
    t = to_epoch_seconds(times)
    if item_arr.shape != t.shape:
        raise ValidationFailed("items and times must have one value per line")
    if days <= 0:
        raise ValidationFailed("days must be positive")
    if item_arr.size and (item_arr.min() < 0 or item_arr.max() >= n_items):
        raise ValidationFailed("item index out of range")
    if item_arr.size == 0:
        return Trend(np.empty(0, np.int64), np.empty(0, np.float64))
    end = int(as_utc(now).timestamp()) if now is not None else int(t.max()) + 1
    window = (t >= end - round(days * DAY)) & (t < end)
    w = np.ones(item_arr.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if users is not None:
        u = np.asarray(users)
        if u.shape != item_arr.shape:
            raise ValidationFailed("users must have one value per line")
        recent = _distinct_buyers(u[window], item_arr[window], n_items)
        overall = _distinct_buyers(u, item_arr, n_items)
    else:
        recent = np.bincount(item_arr[window], weights=w[window], minlength=n_items).astype(
            np.float64
        )
        overall = np.bincount(item_arr, weights=w, minlength=n_items).astype(np.float64)
    active = np.flatnonzero(recent > 0)
    order = np.lexsort((active, -overall[active], -recent[active]))
    ranked = active[order]
    if n is not None:
        ranked = ranked[: check_n(n)]
    return Trend(ranked.astype(np.int64), recent[ranked].astype(np.float64))


def trending_by_category(
    items: ArrayLike,
    times: ArrayLike,
    categories: ArrayLike,
    *,
    n_items: int,
    days: float = 7,
    now: datetime | None = None,
    users: ArrayLike | None = None,
    n: int | None = None,
) -> dict[int, Trend]:
    """`trending` within each category (`categories[item]`; items without one, -1, skipped)."""
    cats = np.asarray(categories, dtype=np.int64)
    if cats.shape != (n_items,):
        raise ValidationFailed("categories must have one value per item")
    overall = trending(items, times, n_items=n_items, days=days, now=now, users=users)
    out: dict[int, Trend] = {}
    item_cats = cats[overall.items]
    for cat in np.unique(item_cats[item_cats >= 0]):
        sel = item_cats == cat
        ranked, counts = overall.items[sel], overall.counts[sel]
        if n is not None:
            ranked, counts = ranked[:n], counts[:n]
        out[int(cat)] = Trend(ranked, counts)
    return out


def _distinct_buyers(
    users: NDArray[Any], items: NDArray[np.int64], n_items: int
) -> NDArray[np.float64]:
    if items.size == 0:
        return np.zeros(n_items)
    _, codes = np.unique(users, return_inverse=True)
    m = sp.csr_matrix(
        (np.ones(items.size), (codes.reshape(-1), items)), shape=(int(codes.max()) + 1, n_items)
    )
    m.sum_duplicates()
    return np.bincount(m.indices, minlength=n_items).astype(np.float64)
