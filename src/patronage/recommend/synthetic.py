"""Synthetic purchase histories shaped like the demo shop, for benchmarks and tests.

Seeded and vectorised (10 M lines in seconds). Structure a recommender can find:
- products belong to categories; categories and products within them have Zipf popularity;
- every customer has one to three favourite categories and buys mostly there;
- each category has a complementary one (c → c + 1 mod C) that favourite-category buyers
  branch into later, which is what cross-sell should find;
- the number of lines per customer is heavy-tailed (log-normal), times spread over `days`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from patronage.errors import ValidationFailed
from patronage.recommend.interactions import DAY

EPOCH_2025 = 1_735_689_600  # 2025-01-01T00:00:00Z


@dataclass(frozen=True)
class Purchases:
    """Order lines (`users`, `items`, `times` in epoch seconds, `quantities`, `orders`) plus
    per-item `categories` and `prices_minor`."""

    users: NDArray[np.int64]
    items: NDArray[np.int64]
    times: NDArray[np.int64]
    quantities: NDArray[np.int64]
    orders: NDArray[np.int64]
    categories: NDArray[np.int64]
    prices_minor: NDArray[np.int64]

    @property
    def n_items(self) -> int:
        return int(self.categories.size)


def synthetic_purchases(
    *,
    n_customers: int = 1_000_000,
    n_products: int = 20_000,
    n_lines: int = 10_000_000,
    n_categories: int = 200,
    days: int = 365,
    zipf: float = 1.1,
    favourite_share: float = 0.7,
    complement_share: float = 0.15,
    lines_per_order: float = 2.5,
    seed: int = 0,
) -> Purchases:
    if min(n_customers, n_products, n_lines, n_categories, days) < 1:
        raise ValidationFailed("every size must be positive")
    if n_categories > n_products:
        raise ValidationFailed("more categories than products")
    rng = np.random.default_rng(seed)
    # categories: sizes and popularity both Zipf; products sorted by category
    cat_weight = _zipf(n_categories, zipf)
    sizes = 1 + rng.multinomial(n_products - n_categories, _zipf(n_categories, 0.8))
    categories = np.repeat(np.arange(n_categories), sizes)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    # within-category popularity: Zipf over a random order of the category's products
    within = np.concatenate([rng.permutation(_zipf(int(s), zipf)) for s in sizes])
    cdf = np.concatenate([np.cumsum(within[a : a + s]) for a, s in zip(starts, sizes, strict=True)])
    # a global, strictly increasing key: category index + cumulative share within it
    key = categories + np.minimum(cdf, 1.0 - 1e-12)
    key[np.r_[starts[1:] - 1, n_products - 1]] = np.arange(n_categories) + 1.0 - 1e-12
    price_base = rng.lognormal(mean=7.5, sigma=0.6, size=n_categories)
    prices = np.round(price_base[categories] * rng.lognormal(0, 0.5, n_products)).astype(np.int64)

    # customers: heavy-tailed line counts summing to n_lines, favourite categories
    raw = rng.lognormal(0, 1.0, n_customers)
    counts = np.maximum(1, np.floor(raw / raw.sum() * n_lines)).astype(np.int64)
    short = n_lines - int(counts.sum())
    if short > 0:
        counts += rng.multinomial(short, np.full(n_customers, 1.0 / n_customers))
    elif short < 0:
        drop = np.flatnonzero(counts > 1)[:-short]
        counts[drop] -= 1
    n = int(counts.sum())
    users = np.repeat(np.arange(n_customers, dtype=np.int64), counts)
    favourites = rng.choice(n_categories, size=(n_customers, 3), p=cat_weight)
    n_fav = rng.integers(1, 4, n_customers)
    pick = np.minimum((rng.random(n) * n_fav[users]).astype(np.int64), 2)
    fav = favourites[users, pick]
    draw = rng.random(n)
    cat = rng.choice(n_categories, size=n, p=cat_weight)
    cat = np.where(draw < favourite_share, fav, cat)
    complement = (draw >= favourite_share) & (draw < favourite_share + complement_share)
    cat = np.where(complement, (fav + 1) % n_categories, cat)
    items = np.searchsorted(key, cat + rng.random(n) * (1.0 - 1e-9), side="right").astype(np.int64)
    items = np.minimum(items, n_products - 1)

    # times: favourite-category lines spread over the year, complements come later
    span = days * DAY
    base = rng.random(n)
    later = np.sqrt(rng.random(n))  # skewed towards the end
    frac = np.where(complement, later, base)
    times = EPOCH_2025 + (frac * span).astype(np.int64)
    order = np.lexsort((times, users))
    users, items, times = users[order], items[order], times[order]
    # orders: consecutive lines of a customer, about `lines_per_order` each
    new_order = np.r_[True, users[1:] != users[:-1]] | (rng.random(n) < 1.0 / lines_per_order)
    orders = np.cumsum(new_order) - 1
    # a line's time is its order's time
    first = np.flatnonzero(new_order)
    times = times[first][orders]
    quantities = rng.geometric(0.7, n)
    return Purchases(
        users=users,
        items=items,
        times=times.astype(np.int64),
        quantities=quantities.astype(np.int64),
        orders=orders.astype(np.int64),
        categories=categories.astype(np.int64),
        prices_minor=prices,
    )


def _zipf(n: int, s: float) -> NDArray[np.float64]:
    w: NDArray[np.float64] = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return w / float(w.sum())
