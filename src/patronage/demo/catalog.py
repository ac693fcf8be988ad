"""The demo shop's catalogue: category tree, third-party sellers of uneven quality, products.

Products appear over time (so "bought soon after release" exists), have a Zipf-like
popularity within their category, a price drawn in their category's band, a latent quality
(ratings, returns) and a stock level (some sold out). About a third belong to sellers.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from patronage.demo import reference as ref
from patronage.demo.timeline import DAY, Timeline

PRODUCTS_PER_1000 = 20
MIN_PRODUCTS = 200  # ten per leaf: below that a small shop has no choice within a category
MAX_PRODUCTS = 20_000
SELLERS = 30  # at most 31 fulfillers with the shop: shipment ids rely on it
SELLER_SHARE = 0.35  # of the catalogue
KEY = np.int64(1 << 40)  # leaf * KEY + created_at: products sorted by leaf, then release

# fulfilment by quality tier: the shop itself, then good / average / bad sellers
TIER_NAMES = ("shop", "good", "average", "bad")
HANDLING_DAYS = np.array([0.6, 1.1, 1.9, 3.6])  # mean days from order to dispatch
PROMISE_DAYS = np.array([4, 5, 6, 6])
LOST_RATE = np.array([0.002, 0.003, 0.005, 0.02])
RETURN_FACTOR = np.array([1.0, 1.0, 1.25, 1.9])
RATING_SHIFT = np.array([0.0, 0.1, -0.25, -1.0])


@dataclass(frozen=True)
class Catalog:
    # categories: the tops first, then the leaves (in reference order)
    category_ids: np.ndarray
    category_columns: dict[str, list[Any]]
    leaf_category_ids: np.ndarray  # per leaf
    leaf_of_slug: dict[str, int]
    related: list[np.ndarray]  # per leaf: related leaf indexes
    leaf_weight: np.ndarray  # popularity of each leaf (sums to 1)
    # sellers; fulfiller index 0 is the shop, seller s is fulfiller s + 1
    seller_ids: np.ndarray
    seller_tier: np.ndarray  # 1 good, 2 average, 3 bad
    seller_columns: dict[str, object]
    fulfiller_tier: np.ndarray  # per fulfiller: 0 shop, then the seller's tier
    # products, in id order
    product_ids: np.ndarray
    product_leaf: np.ndarray
    product_fulfiller: np.ndarray
    product_price: np.ndarray  # minor units
    product_created: np.ndarray  # epoch seconds
    product_quality: np.ndarray  # latent, around 0
    product_columns: dict[str, object]
    product_event_json: np.ndarray  # object array: event properties per product
    # sampler: products sorted by (leaf, created) with cumulative popularity
    order: np.ndarray
    keys: np.ndarray
    cumulative: np.ndarray  # len products + 1
    leaf_start: np.ndarray  # first sorted position of each leaf


def product_count(customers: int) -> int:
    return int(np.clip(round(customers * PRODUCTS_PER_1000 / 1000), MIN_PRODUCTS, MAX_PRODUCTS))


@lru_cache(maxsize=4096)
def ascii_fold(text: str) -> str:
    """'Müller' -> 'muller', "O'Brien" -> 'obrien': for generated e-mail addresses."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def build_catalog(
    rng: np.random.Generator,
    customers: int,
    tl: Timeline,
    first_category_id: int = 1,
    first_seller_id: int = 1,
    first_product_id: int = 1,
) -> Catalog:
    leaves = ref.LEAVES
    tops = ref.TOP_LEVEL
    n_cat = len(tops) + len(leaves)
    category_ids = np.arange(first_category_id, first_category_id + n_cat)
    top_id = {top: int(category_ids[i]) for i, top in enumerate(tops)}
    leaf_ids = category_ids[len(tops) :]
    category_columns: dict[str, list[Any]] = {
        "id": category_ids.tolist(),
        "external_id": [_slug(t) for t in tops] + [leaf.slug for leaf in leaves],
        "name": list(tops) + [leaf.name for leaf in leaves],
        "parent_id": [None] * len(tops) + [top_id[leaf.top] for leaf in leaves],
        "path": [f"/{top_id[t]}/" for t in tops]
        + [f"/{top_id[leaf.top]}/{int(cid)}/" for leaf, cid in zip(leaves, leaf_ids, strict=True)],
    }
    leaf_of_slug = {leaf.slug: i for i, leaf in enumerate(leaves)}
    related = [np.array([leaf_of_slug[s] for s in leaf.related]) for leaf in leaves]
    popularity = np.array([leaf.popularity for leaf in leaves])
    leaf_weight = popularity / popularity.sum()

    sellers = _sellers(rng, tl, first_seller_id)
    seller_ids, seller_tier, seller_tops, seller_columns = sellers
    fulfiller_tier = np.concatenate([[0], seller_tier])

    n = product_count(customers)
    share = popularity**0.7
    per_leaf = np.maximum(5, np.floor(share / share.sum() * n)).astype(np.int64)
    per_leaf[np.argmax(per_leaf)] += max(0, n - int(per_leaf.sum()))
    n = int(per_leaf.sum())
    product_leaf = np.repeat(np.arange(len(leaves)), per_leaf)
    first_of_leaf = np.concatenate([[0], np.cumsum(per_leaf)[:-1]])
    position = np.arange(n) - np.repeat(first_of_leaf, per_leaf)

    # release dates: a launch catalogue before the shop opened, the rest over its history
    launch = (rng.random(n) < 0.4) | (position < 2)
    created = np.where(
        launch,
        tl.start - rng.integers(DAY, 400 * DAY, n),
        tl.start + rng.integers(0, (tl.end - tl.start) - 10 * DAY, n),
    )
    median = np.array([leaf.price for leaf in leaves])[product_leaf]
    spread = np.array([leaf.spread for leaf in leaves])[product_leaf]
    euros = np.exp(np.log(median) + spread * rng.standard_normal(n))
    price = np.maximum(99, np.round(euros).astype(np.int64) * 100 - 1)
    quality = rng.normal(0.0, 0.4, n)

    # popularity: Zipf over a random rank within the leaf, nudged by quality
    rank = np.empty(n, dtype=np.int64)
    for leaf in range(len(leaves)):
        members = np.flatnonzero(product_leaf == leaf)
        rank[members] = rng.permutation(len(members))
    weight = (1.0 / (rank + 1.0) ** 1.1) * np.exp(0.3 * quality)

    fulfiller = np.zeros(n, dtype=np.int64)
    by_seller = rng.random(n) < SELLER_SHARE
    seller_size = 1.0 / np.arange(1, len(seller_ids) + 1) ** 0.8
    for t, top in enumerate(tops):
        eligible = np.flatnonzero(seller_tops[:, t])
        in_top = by_seller & (np.array([leaves[i].top == top for i in product_leaf]))
        if eligible.size and in_top.any():
            p = seller_size[eligible] / seller_size[eligible].sum()
            fulfiller[in_top] = 1 + rng.choice(eligible, size=int(in_top.sum()), p=p)

    active = ~(launch & (rng.random(n) < 0.06))
    stock = np.minimum(5000, rng.lognormal(3.2, 1.1, n).astype(np.int64))
    sold_out = rng.random(n) < 0.08
    stock = np.where(active & ~sold_out, np.maximum(stock, 1), 0)

    ids = np.arange(first_product_id, first_product_id + n)
    brands = [leaves[leaf].brands for leaf in product_leaf.tolist()]
    nouns = [leaves[leaf].nouns for leaf in product_leaf.tolist()]
    brand_pick = rng.integers(0, 1 << 30, n).tolist()
    noun_pick = rng.integers(0, 1 << 30, n).tolist()
    model = rng.choice(np.array(["", "S", "X", "Pro", "Lite", "Max", "Air", "One"]), n).tolist()
    number = rng.integers(1, 10, n).tolist()
    brand_names = [b[i % len(b)] for b, i in zip(brands, brand_pick, strict=True)]
    names = [
        f"{brand} {ns[i % len(ns)]} {m}{k}".replace("  ", " ")
        for brand, ns, i, m, k in zip(brand_names, nouns, noun_pick, model, number, strict=True)
    ]
    external = [f"P{i:06d}" for i in ids.tolist()]
    leaf_names = [leaf.name for leaf in leaves]
    product_columns: dict[str, object] = {
        "id": ids,
        "external_id": external,
        "name": names,
        "category_id": leaf_ids[product_leaf],
        "seller_id": [None if f == 0 else int(seller_ids[f - 1]) for f in fulfiller.tolist()],
        "price_minor": price,
        "currency": ["EUR"] * n,
        "stock": stock,
        "is_active": active,
        "attributes": [json.dumps({"brand": b}, separators=(",", ":")) for b in brand_names],
        "created_at": created.astype("datetime64[s]"),
    }
    event_json = np.array(
        [
            f'{{"product_id":"{e}","category":{json.dumps(leaf_names[c])},"price":{p / 100:.2f}}}'
            for e, c, p in zip(external, product_leaf.tolist(), price.tolist(), strict=True)
        ],
        dtype=object,
    )

    keys = product_leaf.astype(np.int64) * KEY + created
    order = np.argsort(keys, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(weight[order])])
    leaf_start = np.searchsorted(keys[order], np.arange(len(leaves), dtype=np.int64) * KEY)
    return Catalog(
        category_ids=category_ids,
        category_columns=category_columns,
        leaf_category_ids=leaf_ids,
        leaf_of_slug=leaf_of_slug,
        related=related,
        leaf_weight=leaf_weight,
        seller_ids=seller_ids,
        seller_tier=seller_tier,
        seller_columns=seller_columns,
        fulfiller_tier=fulfiller_tier,
        product_ids=ids,
        product_leaf=product_leaf,
        product_fulfiller=fulfiller,
        product_price=price,
        product_created=created,
        product_quality=quality,
        product_columns=product_columns,
        product_event_json=event_json,
        order=order,
        keys=keys[order],
        cumulative=cumulative,
        leaf_start=leaf_start,
    )


def _slug(name: str) -> str:
    return "-".join(ascii_fold(word) for word in name.replace("&", " ").split())


def _sellers(
    rng: np.random.Generator, tl: Timeline, first_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, object]]:
    ids = np.arange(first_id, first_id + SELLERS)
    countries = rng.choice(np.array(ref.SELLER_COUNTRIES), SELLERS).tolist()
    # tiers: most sellers are fine, some average, a few bad (far-away sellers more often)
    tier = rng.choice(np.array([1, 2, 3]), SELLERS, p=[0.55, 0.3, 0.15])
    tier = np.where(np.array([c == "CN" for c in countries]) & (rng.random(SELLERS) < 0.6), 3, tier)
    tier[:3] = (1, 2, 3)  # every shop has all three kinds, however small
    tops = np.zeros((SELLERS, len(ref.TOP_LEVEL)), dtype=bool)
    for s in range(SELLERS):
        k = 1 + int(rng.random() < 0.4)
        tops[s, rng.choice(len(ref.TOP_LEVEL), k, replace=False)] = True
    first, second = ref.SELLER_WORDS
    names = []
    for s in range(SELLERS):
        a, b = rng.integers(0, len(first)), rng.integers(0, len(second))
        names.append(f"{first[a]} {second[b]} {ref.SELLER_SUFFIX[countries[s]]}")
    joined = tl.start - 200 * DAY + rng.integers(0, (tl.end - tl.start) - 200 * DAY, SELLERS)
    status = np.where(tier == 3, "warned", "active")
    columns: dict[str, object] = {
        "id": ids,
        "external_id": [f"S{i:04d}" for i in ids.tolist()],
        "name": names,
        "country": countries,
        "status": status.tolist(),
        "joined_at": joined.astype("datetime64[s]"),
    }
    return ids, tier, tops, columns


def choose_products(
    catalog: Catalog, rng: np.random.Generator, leaf: np.ndarray, at: np.ndarray, hype: float
) -> np.ndarray:
    """One product (index) per request: popularity-weighted among those released by `at`.

    A share `hype` of requests goes uniformly to the leaf's releases of the last 45 days,
    when there are any: new products sell soon after release.
    """
    key = leaf.astype(np.int64) * KEY + at
    stop = np.searchsorted(catalog.keys, key, side="right")
    start = catalog.leaf_start[leaf]
    stop = np.maximum(stop, start + 1)
    low = catalog.cumulative[start]
    high = catalog.cumulative[stop]
    u = low + rng.random(len(leaf)) * (high - low)
    pos = np.searchsorted(catalog.cumulative, u, side="right") - 1
    pos = np.clip(pos, start, stop - 1)
    recent = np.searchsorted(catalog.keys, key - 45 * DAY, side="left")
    recent = np.maximum(recent, start)
    hyped = (rng.random(len(leaf)) < hype) & (stop > recent)
    pick = recent + (rng.random(len(leaf)) * (stop - recent)).astype(np.int64)
    pos = np.where(hyped, np.minimum(pick, stop - 1), pos)
    return catalog.order[pos]  # type: ignore[no-any-return]
