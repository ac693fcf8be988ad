"""Serving: the lists of every placement, read from the current build's tables.

No model is fitted and no table is scanned on the request path: each list is one or two
indexed lookups of the current build (also bought: the product's neighbours; for you: the
customer's bought products, then their neighbours, summed), one lookup of the candidates'
catalogue facts (category, stock, repeat-purchase kind), and the rules of `lists.apply_rules`
applied over just those candidates. A short list is topped up from trending.

Every list carries a recommendation id (a UUID, version 8) whose first four hex digits encode
its placement and model, so the click-through report can group tracked events by them without
a table of served lists (`decode_list_id`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from patronage.customers import service as customers_service
from patronage.customers.consent import Purpose
from patronage.errors import NotFound, ValidationFailed
from patronage.recommend import cache, lists
from patronage.recommend import repository as repo
from patronage.recommend.cache import View
from patronage.recommend.repository import ProductFacts
from patronage.recommend.schemas import (
    MAX_BASKET,
    MAX_ID,
    MAX_LIMIT,
    Placement,
    RecommendationList,
    RecommendedItem,
)

HISTORY_ITEMS = 100  # the most recently bought distinct products a personal list starts from
NEIGHBOURS = 50  # per product: the whole similar-items row
TOGETHER = 20
OVERALL = 0  # the category id of the overall trending list
TRENDING_DAYS = 30

ITEM_TO_ITEM = "item-to-item"
CROSS_SELL = "cross-sell"
UPSELL = "upsell"
BOUGHT_TOGETHER = "bought-together"
TRENDING = "trending"

PLACEMENT_CODES = {p: i + 1 for i, p in enumerate(Placement)}
MODEL_CODES = {ITEM_TO_ITEM: 1, CROSS_SELL: 2, UPSELL: 3, BOUGHT_TOGETHER: 4, TRENDING: 5}
NO_CONSENT = "no personalisation consent: non-personalised list (trending)"
NO_HISTORY = "no purchase history yet: trending list"


def new_list_id(placement: Placement, model: str) -> uuid.UUID:
    """A random UUID (version 8) whose first 16 bits are the placement and model codes."""
    value = int.from_bytes(os.urandom(16), "big")
    value &= ~(0xFFFF << 112)
    value |= (PLACEMENT_CODES[placement] << 120) | (MODEL_CODES.get(model, 0) << 112)
    value &= ~(0xF << 76)
    value |= 0x8 << 76  # version 8: custom layout
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 4122 variant
    return uuid.UUID(int=value)


def decode_list_id(prefix: str) -> tuple[str, str] | None:
    """(placement, model) of a recommendation id's first four hex digits, None if not ours."""
    try:
        code = int(prefix[:4], 16)
    except ValueError:
        return None
    placements = {v: k.value for k, v in PLACEMENT_CODES.items()}
    models = {v: k for k, v in MODEL_CODES.items()}
    placement, model = placements.get(code >> 8), models.get(code & 0xFF)
    if len(prefix) < 4 or placement is None or model is None:
        return None
    return placement, model


@dataclass(frozen=True)
class Candidate:
    product_id: int
    score: float
    because: int  # product id, -1 for none


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _check_id(value: int, what: str) -> int:
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no {what} {value}")
    return value


def _diversity(limit: int, category: int | None, placement: Placement) -> int | None:
    """At most half a list (at least 2) from one category, unless a category is asked for."""
    if category is not None or placement is Placement.UPSELL:
        return None
    return max(2, (limit + 1) // 2)


HEAD = 3  # times the limit: candidates tried first (see _ruled)


def _ruled(
    view: View,
    candidates: Sequence[Candidate],
    *,
    placement: Placement,
    limit: int,
    category: int | None,
    bought: Sequence[int] = (),
    exclude: Sequence[int] = (),
    fallback: bool = True,
) -> tuple[list[lists.Recommended], list[int], dict[int, ProductFacts]]:
    """The list rules over the candidates (and trending, when short), in product ids.

    The rules take candidates in order until the list is full, so the first `HEAD * limit`
    are tried alone first: when they fill the list, the answer is the one all candidates
    give (the rest would never be reached), at a fraction of the catalogue lookups and rule
    work. Otherwise all candidates, and trending when still short, as before.
    """
    rules = lists.Rules(
        exclude_bought=True,
        in_stock_only=True,
        max_per_category=_diversity(limit, category, placement),
        category=category,
    )
    if len(candidates) > HEAD * limit:
        head = _ruled_over(
            view, candidates[: HEAD * limit], rules, limit, category, bought, exclude, False
        )
        if len(head[0]) >= limit:
            return head
    return _ruled_over(view, candidates, rules, limit, category, bought, exclude, fallback)


def _ruled_over(
    view: View,
    candidates: Sequence[Candidate],
    rules: lists.Rules,
    limit: int,
    category: int | None,
    bought: Sequence[int],
    exclude: Sequence[int],
    fallback: bool,
) -> tuple[list[lists.Recommended], list[int], dict[int, ProductFacts]]:
    pool: list[int] = []
    seen: set[int] = set()

    def add(ids: Iterable[int]) -> None:
        for i in ids:
            if i >= 0 and i not in seen:
                seen.add(i)
                pool.append(i)

    add(c.product_id for c in candidates)
    add(c.because for c in candidates)
    add(bought)
    add(exclude)
    facts = view.products(pool)
    result = _apply(candidates, pool, facts, rules, limit, bought, exclude, [])
    if len(result) < limit and fallback:
        extra = [p for p, _ in view.trending(category or OVERALL, 3 * limit + len(pool))]
        new = [p for p in extra if p not in seen]
        add(new)
        facts.update(view.products(new))
        result = _apply(candidates, pool, facts, rules, limit, bought, exclude, extra)
    return result, pool, facts


def _apply(
    candidates: Sequence[Candidate],
    pool: list[int],
    facts: dict[int, ProductFacts],
    rules: lists.Rules,
    limit: int,
    bought: Sequence[int],
    exclude: Sequence[int],
    fallback: Sequence[int],
) -> list[lists.Recommended]:
    index = {p: k for k, p in enumerate(pool)}
    known = [facts.get(p) for p in pool]
    catalogue = lists.Catalogue(
        category=np.array(
            [f.category_id if f and f.category_id is not None else -1 for f in known],
            dtype=np.int64,
        ),
        in_stock=np.array([bool(f and f.in_stock) for f in known], dtype=bool),
        repeatable=np.array([bool(f and f.repeatable) for f in known], dtype=bool),
    )
    if catalogue.n_items == 0:
        return []
    entries = lists.apply_rules(
        [index[c.product_id] for c in candidates],
        [c.score for c in candidates],
        n=limit,
        catalogue=catalogue,
        bought=[index[p] for p in bought],
        because=[index.get(c.because, -1) for c in candidates],
        rules=rules,
        always_exclude=[index[p] for p in exclude],
        fallback=[index[p] for p in fallback],
    )
    return [
        lists.Recommended(
            item=pool[e.item],
            score=e.score,
            because=pool[e.because] if e.because >= 0 else -1,
            source=e.source,
        )
        for e in entries
    ]


EXPLAIN = {
    Placement.ALSO_BOUGHT: "Customers who bought {} also bought this",
    Placement.UPSELL: "A step up from {}",
    Placement.FOR_YOU: "Because you bought {}",
    Placement.CROSS_SELL: "Goes with {}, which you bought",
    Placement.BASKET: "Often bought together with {}",
}


def _render(
    placement: Placement,
    model: str,
    entries: list[lists.Recommended],
    facts: dict[int, ProductFacts],
    *,
    build_id: int | None,
    personalised: bool,
    notice: str | None = None,
) -> RecommendationList:
    items = []
    for e in entries:
        f = facts[e.item]
        if e.because >= 0 and e.because in facts:
            text = EXPLAIN[placement].format(facts[e.because].name)
        else:
            text = "Popular right now"
        items.append(
            RecommendedItem(
                product_id=e.item,
                name=f.name,
                category_id=f.category_id,
                price_minor=f.price_minor,
                score=round(e.score, 6),
                because_product_id=e.because if e.because >= 0 else None,
                explanation=text,
                source="fallback" if e.source == lists.FALLBACK else "model",
            )
        )
    return RecommendationList(
        recommendation_id=new_list_id(placement, model),
        placement=placement,
        model=model,
        build_id=build_id,
        personalised=personalised,
        notice=notice,
        items=items,
    )


def _summed(rows: Iterable[tuple[int, int, float]], keep: int) -> list[Candidate]:
    """Scores summed over the source items; the reason is the largest contributor."""
    listed = list(rows)
    if not listed:
        return []
    sources, items, scores = (np.asarray(c) for c in zip(*listed, strict=True))
    return _summed_arrays(
        sources.astype(np.int64), items.astype(np.int64), scores.astype(np.float64), keep
    )


def _summed_arrays(
    sources: NDArray[np.int64], items: NDArray[np.int64], scores: NDArray[np.float64], keep: int
) -> list[Candidate]:
    """`_summed` over parallel arrays: the best `keep` items by summed score (ties: the lower
    id), each with its largest contributor (ties: the lower source). Sums are accumulated in
    row order, as a loop over the rows would."""
    if items.size == 0:
        return []
    unique, inverse = np.unique(items, return_inverse=True)
    total = np.bincount(inverse, weights=scores, minlength=unique.size)
    # per item, its rows by score descending then source ascending: the first is the reason
    order = np.lexsort((sources, -scores, inverse))
    grouped = inverse[order]
    first = order[np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])]
    reason = sources[first]  # aligned with `unique` (inverse ascending)
    ranked = np.lexsort((unique, -total))[:keep]
    return [Candidate(int(unique[k]), float(total[k]), int(reason[k])) for k in ranked.tolist()]


# -- placements ------------------------------------------------------------------------------
def also_bought(
    session: Session, product_id: int, *, limit: int = 10, category: int | None = None
) -> RecommendationList:
    return _item_list(session, Placement.ALSO_BOUGHT, "also_bought", product_id, limit, category)


def upsell(
    session: Session, product_id: int, *, limit: int = 10, category: int | None = None
) -> RecommendationList:
    return _item_list(session, Placement.UPSELL, "upsell", product_id, limit, category)


def _item_list(
    session: Session,
    placement: Placement,
    kind: str,
    product_id: int,
    limit: int,
    category: int | None,
) -> RecommendationList:
    check_limit(limit)
    _check_id(product_id, "product")
    view = cache.current(session)
    if not view.product_exists(product_id):
        raise NotFound(f"no product {product_id}")
    rows = view.neighbours(kind, [product_id], NEIGHBOURS)
    model = rows[0][3] if rows else (UPSELL if kind == "upsell" else ITEM_TO_ITEM)
    cands = [Candidate(nb, score, product_id) for _, nb, score, _ in rows]
    entries, _, facts = _ruled(
        view,
        cands,
        placement=placement,
        limit=limit,
        category=category,
        exclude=[product_id],
        fallback=placement is not Placement.UPSELL,  # cheaper trending items are no upsell
    )
    return _render(placement, model, entries, facts, build_id=view.build_id, personalised=False)


def for_you(
    session: Session, customer_id: int, *, limit: int = 10, category: int | None = None
) -> RecommendationList:
    return _personal(session, Placement.FOR_YOU, "also_bought", customer_id, limit, category)


def cross_sell(
    session: Session, customer_id: int, *, limit: int = 10, category: int | None = None
) -> RecommendationList:
    return _personal(session, Placement.CROSS_SELL, "cross_sell", customer_id, limit, category)


def _personal(
    session: Session,
    placement: Placement,
    kind: str,
    customer_id: int,
    limit: int,
    category: int | None,
) -> RecommendationList:
    check_limit(limit)
    _check_id(customer_id, "customer")
    # NotFound for an unknown id
    allowed = customers_service.may_use_existing(session, customer_id, Purpose.PERSONALISATION)
    view = cache.current(session)
    if not allowed:
        return _trending(view, limit=limit, category=category, notice=NO_CONSENT)
    bought = repo.history(session, customer_id, HISTORY_ITEMS)
    if not bought:
        return _trending(view, limit=limit, category=category, notice=NO_HISTORY)
    sources, items, scores, first_model = view.neighbour_arrays(kind, bought, NEIGHBOURS)
    model = first_model or (CROSS_SELL if kind == "cross_sell" else ITEM_TO_ITEM)
    cands = _summed_arrays(sources, items, scores, 4 * limit + len(bought))
    entries, _, facts = _ruled(
        view, cands, placement=placement, limit=limit, category=category, bought=bought
    )
    return _render(placement, model, entries, facts, build_id=view.build_id, personalised=True)


def basket(
    session: Session, product_ids: Sequence[int], *, limit: int = 10, category: int | None = None
) -> RecommendationList:
    """Frequently bought together with the items of a basket (never an item already in it)."""
    check_limit(limit)
    if not product_ids:
        raise ValidationFailed("the basket is empty")
    if len(product_ids) > MAX_BASKET:
        raise ValidationFailed(f"a basket holds at most {MAX_BASKET} items")
    items = list(dict.fromkeys(int(p) for p in product_ids))
    valid = [p for p in items if 1 <= p <= MAX_ID]
    view = cache.current(session)
    known = view.products(valid)
    unknown = [p for p in items if p not in known]
    if unknown:
        shown = ", ".join(str(p) for p in unknown[:5])
        raise NotFound(f"unknown products in the basket ({len(unknown)}): {shown}")
    rows = view.together(items, TOGETHER)
    cands = _summed(rows, 4 * limit + len(items))
    entries, _, facts = _ruled(
        view,
        cands,
        placement=Placement.BASKET,
        limit=limit,
        category=category,
        exclude=items,
    )
    return _render(
        Placement.BASKET,
        BOUGHT_TOGETHER,
        entries,
        facts,
        build_id=view.build_id,
        personalised=False,
    )


def trending(
    session: Session,
    *,
    limit: int = 10,
    category: int | None = None,
    notice: str | None = None,
) -> RecommendationList:
    return _trending(cache.current(session), limit=limit, category=category, notice=notice)


def _trending(
    view: View, *, limit: int, category: int | None, notice: str | None
) -> RecommendationList:
    check_limit(limit)
    ranked = view.trending(category or OVERALL, 3 * limit + 20)
    cands = [Candidate(p, buyers, -1) for p, buyers in ranked]
    entries, _, facts = _ruled(
        view,
        cands,
        placement=Placement.TRENDING,
        limit=limit,
        category=category,
        fallback=False,
    )
    out = _render(
        Placement.TRENDING,
        TRENDING,
        entries,
        facts,
        build_id=view.build_id,
        personalised=False,
        notice=notice,
    )
    for item in out.items:
        buyers = int(item.score)
        item.explanation = (
            f"Bought by {buyers} customer{'' if buyers == 1 else 's'} "
            f"in the last {TRENDING_DAYS} days"
        )
    return out
