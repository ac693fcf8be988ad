"""The rules every list obeys, and the placements built on them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from patronage.errors import NotFound, ValidationFailed
from patronage.recommend.algorithms.als import ALS
from patronage.recommend.algorithms.item_to_item import ItemToItem
from patronage.recommend.lists import (
    FALLBACK,
    MODEL,
    Catalogue,
    Recommended,
    Rules,
    also_bought,
    apply_rules,
    explain_text,
    from_history,
    from_model,
)

NAMES = ["tent", "stove", "mat", "lamp", "map", "rope"]


def catalogue(**changes: list[object]) -> Catalogue:
    base = {
        "category": [0, 0, 1, 1, 2, 2],
        "in_stock": [True] * 6,
        "repeatable": [False] * 6,
    }
    base.update(changes)
    return Catalogue(
        category=np.asarray(base["category"], dtype=np.int64),
        in_stock=np.asarray(base["in_stock"], dtype=bool),
        repeatable=np.asarray(base["repeatable"], dtype=bool),
    )


def items(entries: list[Recommended]) -> list[int]:
    return [e.item for e in entries]


def test_rules_drop_bought_out_of_stock_and_duplicates() -> None:
    cat = catalogue(in_stock=[True, True, False, True, True, True], repeatable=[True] + [False] * 5)
    got = apply_rules(
        [0, 1, 2, 1, 3, 4, 5], [9, 8, 7, 6, 5, 4, 3], n=10, catalogue=cat, bought=[0, 3]
    )
    # 0 bought but repeatable, 2 out of stock, second 1 a duplicate, 3 bought
    assert items(got) == [0, 1, 4, 5]
    assert all(e.source == MODEL for e in got)
    keep_bought = apply_rules([3, 4], [2, 1], n=5, catalogue=cat, bought=[3], rules=Rules(False))
    assert items(keep_bought) == [3, 4]


def test_diversity_category_filter_and_fallback() -> None:
    cat = catalogue()
    got = apply_rules(
        [0, 1, 2, 3, 4], [5, 4, 3, 2, 1], n=3, catalogue=cat, rules=Rules(max_per_category=1)
    )
    assert items(got) == [0, 2, 4]
    only = apply_rules([0, 2, 3], [3, 2, 1], n=5, catalogue=cat, rules=Rules(category=1))
    assert items(only) == [2, 3]
    topped = apply_rules([1], [1.0], n=3, catalogue=cat, bought=[0], fallback=[0, 1, 5, 4])
    assert items(topped) == [1, 5, 4]
    assert [e.source for e in topped] == [MODEL, FALLBACK, FALLBACK]
    assert [e.because for e in topped] == [-1, -1, -1]
    assert items(apply_rules([0], [-np.inf], n=2, catalogue=cat)) == []


def test_limits_and_bad_input() -> None:
    cat = catalogue()
    assert len(apply_rules(list(range(6)), [1.0] * 6, n=10_000, catalogue=cat)) == 6
    with pytest.raises(ValidationFailed):
        apply_rules([1], [1.0, 2.0], n=2, catalogue=cat)
    with pytest.raises(ValidationFailed):
        apply_rules([1], [1.0], n=0, catalogue=cat)
    with pytest.raises(ValidationFailed):
        Catalogue(np.zeros(2, np.int64), np.ones(3, bool), np.zeros(2, bool))
    # ids outside the catalogue are simply not shown
    assert items(apply_rules([-1, 99, 2], [3, 2, 1], n=3, catalogue=cat)) == [2]


def history_matrix() -> sp.csr_matrix:
    rows = [[0, 1], [0, 1, 2], [0, 2], [1, 3], [0, 1, 3], [4, 5], [4, 5], [0, 4]]
    r = [i for i, xs in enumerate(rows) for _ in xs]
    c = [x for xs in rows for x in xs]
    return sp.csr_matrix((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(rows), 6))


def test_also_bought_explains_with_the_product_itself() -> None:
    model = ItemToItem(similarity="conditional", alpha=0.0, min_co_buyers=1).fit(history_matrix())
    got = also_bought(model.neighbours_, 0, n=3, catalogue=catalogue(), fallback=[5, 0])
    # tent's buyers: stove 3 of 5, mat 2 of 5, lamp and map 1 of 5 (tie: lower item)
    assert items(got) == [1, 2, 3]
    assert [e.score for e in got] == pytest.approx([0.6, 0.4, 0.2])
    assert {e.because for e in got} == {0}
    assert explain_text(got[0], NAMES) == "Because you bought tent"
    shown = also_bought(model.neighbours_, 0, n=6, catalogue=catalogue(), fallback=[5, 0])
    assert items(shown) == [1, 2, 3, 4, 5] and shown[-1].source == FALLBACK
    with pytest.raises(NotFound):
        also_bought(model.neighbours_, 6, n=3, catalogue=catalogue())
    with pytest.raises(ValidationFailed):
        also_bought(model.neighbours_, 0, n=3, catalogue=Catalogue.open(4))


def test_for_you_from_a_history_with_reasons() -> None:
    model = ItemToItem(similarity="conditional", alpha=0.0, min_co_buyers=1).fit(history_matrix())
    got = from_history(model.neighbours_, [3, 5], n=4, catalogue=catalogue(), fallback=[0])
    assert 3 not in items(got) and 5 not in items(got)
    by_item = {e.item: e for e in got}
    assert by_item[1].because == 3  # stove: bought with the lamp
    assert by_item[4].because == 5  # map: bought with the rope
    assert explain_text(Recommended(0, 0.0, -1, FALLBACK), NAMES) == "Popular right now"
    # a customer with no history gets the fallback only
    cold = from_history(model.neighbours_, [], n=2, catalogue=catalogue(), fallback=[4, 0, 1])
    assert items(cold) == [4, 0] and all(e.source == FALLBACK for e in cold)
    with pytest.raises(ValidationFailed):
        from_history(model.neighbours_, [0, 17], n=2, catalogue=catalogue())


def test_bought_together_never_suggests_the_basket_and_takes_big_baskets() -> None:
    model = ItemToItem(similarity="conditional", alpha=0.0, min_co_buyers=1).fit(history_matrix())
    cat = catalogue(repeatable=[True] * 6)
    got = from_history(model.neighbours_, [0], n=5, catalogue=cat, basket=True)
    assert 0 not in items(got)
    big = np.tile(np.arange(6), 1000)  # a basket of 6,000 lines
    assert from_history(model.neighbours_, big, n=5, catalogue=cat, basket=True) == []


def test_for_you_from_als_is_explained_by_item_factors() -> None:
    model = ALS(factors=3, iterations=5, random_state=0).fit(history_matrix())
    got = from_model(model, [4], n=3, catalogue=catalogue(), fallback=[0, 1])
    assert 4 not in items(got)
    assert len(got) == 3
    assert all(e.because in (4, -1) for e in got)
