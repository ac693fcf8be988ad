"""Upsell: similar items of the same category in a higher price band."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from patronage.errors import ValidationFailed
from patronage.recommend.algorithms.base import check_matrix, check_n
from patronage.recommend.interactions import binarize


def price_bands(prices: ArrayLike, categories: ArrayLike, *, n_bands: int = 5) -> NDArray[np.int64]:
    """Band 0 (cheapest) … n_bands - 1 of each item within its category, by price rank.

    Bands are price quantiles of the category: an item's band is floor(n_bands · r / m) for
    its rank r (0-based, equal prices share the lowest rank) among the m priced items of its
    category. Items without a category (-1) or a price (< 0) get band -1.
    """
    price = np.asarray(prices, dtype=np.int64)
    cats = np.asarray(categories, dtype=np.int64)
    if price.shape != cats.shape:
        raise ValidationFailed("prices and categories must have one value per item")
    check_n(n_bands)
    bands = np.full(price.size, -1, dtype=np.int64)
    ok = np.flatnonzero((cats >= 0) & (price >= 0))
    for cat in np.unique(cats[ok]):
        members = ok[cats[ok] == cat]
        sorted_prices = np.sort(price[members])
        rank = np.searchsorted(sorted_prices, price[members], side="left")
        bands[members] = (n_bands * rank) // members.size
    return bands


def upsell(
    X: Any,
    categories: ArrayLike,
    prices: ArrayLike,
    *,
    n_bands: int = 5,
    n_neighbours: int = 20,
    max_band_step: int | None = 2,
) -> sp.csr_matrix:
    """For each item, dearer items of its category, most similar first.

    Candidates share the category, sit 1 … `max_band_step` bands higher (None: any higher
    band) and cost more. They are ordered by cosine similarity of their buyers
    (co-bought substitutes and upgrades), then by number of buyers, then by the smaller price
    step, then by index. The table stores that order as a score in (0, 1]: 1 for the first,
    decreasing linearly — the ranks, not the similarities, since most candidates share no
    buyer at all.
    """
    k = check_n(n_neighbours)
    B = binarize(check_matrix(X))
    n_items = B.shape[1]
    cats = np.asarray(categories, dtype=np.int64)
    price = np.asarray(prices, dtype=np.int64)
    if cats.shape != (n_items,) or price.shape != (n_items,):
        raise ValidationFailed("categories and prices must have one value per item")
    bands = price_bands(price, cats, n_bands=n_bands)
    buyers = np.bincount(B.indices, minlength=n_items).astype(np.float64)
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    vals: list[NDArray[np.float64]] = []
    for cat in np.unique(cats[bands >= 0]):
        members = np.flatnonzero((cats == cat) & (bands >= 0))
        if members.size < 2:
            continue
        sub = sp.csr_matrix(B[:, members])
        co = sp.csr_matrix(sub.T @ sub)
        for pos, item in enumerate(members):
            higher = bands[members] > bands[item]
            if max_band_step is not None:
                higher &= bands[members] <= bands[item] + max_band_step
            higher &= price[members] > price[item]
            cand = np.flatnonzero(higher)
            if cand.size == 0:
                continue
            row = co.getrow(pos).toarray().ravel()
            denom = np.sqrt(buyers[item] * buyers[members[cand]])
            sim = np.divide(row[cand], denom, out=np.zeros(cand.size), where=denom > 0)
            step = price[members[cand]] - price[item]
            order = np.lexsort((members[cand], step, -buyers[members[cand]], -sim))[:k]
            picked = members[cand[order]]
            rows.append(np.full(picked.size, item, dtype=np.int64))
            cols.append(picked)
            vals.append(1.0 - np.arange(picked.size) / k)
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    out = sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )
    out.sort_indices()
    return out
