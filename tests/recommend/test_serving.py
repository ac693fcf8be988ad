"""Serving on a small hand-built shop, on SQLite and PostgreSQL: exact lists, the rules,
consent, fallbacks, bad input, and the atomic rebuild (test-only: inserts through models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from patronage import db
from patronage.catalog.models import Category, Product
from patronage.customers import service as customers_service
from patronage.customers.consent import Purpose
from patronage.customers.models import Customer
from patronage.errors import NotFound, ValidationFailed
from patronage.orders.models import Order, OrderItem
from patronage.recommend import service, serving
from patronage.recommend.schemas import RecommendationList

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)

# name, category, price, stock, attributes
PRODUCTS = {
    "names": ("Baby names", "books", 1000, 5, {}),
    "guide": ("Pregnancy guide", "books", 1500, 5, {}),
    "chair": ("Rocking chair", "nursery", 20000, 2, {}),
    "cot": ("Cot", "nursery", 15000, 0, {}),
    "monitor": ("Baby monitor", "nursery", 5000, 3, {}),
    "coffee": ("Coffee", "kitchen", 800, 100, {"repeat_purchase": True}),
    "kettle": ("Kettle", "kitchen", 3000, 10, {}),
    "premium": ("Premium kettle", "kitchen", 9000, 4, {}),
    "deluxe": ("Deluxe kettle", "kitchen", 12000, 4, {}),
}

# customer -> baskets (days before NOW, products); "newbie" has none, "private" no consent
ORDERS: dict[str, list[tuple[int, list[str]]]] = {
    "c1": [(60, ["names", "guide"]), (10, ["chair"])],
    "c2": [(50, ["names", "guide", "monitor"]), (5, ["chair"])],
    "c3": [(40, ["names", "monitor"]), (3, ["coffee", "kettle"])],
    "c4": [(20, ["coffee", "kettle"]), (2, ["coffee"])],
    "c5": [(8, ["guide", "chair", "cot"])],
    "c8": [(15, ["coffee", "premium"]), (12, ["kettle", "premium"])],
    "private": [(1, ["names", "guide"])],
    "newbie": [],
}


@dataclass
class Shop:
    product: dict[str, int]
    category: dict[str, int]
    customer: dict[str, int]

    def names(self, result: RecommendationList) -> list[str]:
        by_id = {v: k for k, v in self.product.items()}
        return [by_id[i.product_id] for i in result.items]


def build_shop(session: Session) -> Shop:
    categories: dict[str, int] = {}
    for name in ("books", "nursery", "kitchen"):
        cat = Category(external_id=f"cat-{name}", name=name.title(), path="/")
        session.add(cat)
        session.flush()
        categories[name] = cat.id
    products: dict[str, int] = {}
    for key, (name, cat_name, price, stock, attrs) in PRODUCTS.items():
        row = Product(
            external_id=f"sku-{key}",
            name=name,
            category_id=categories[cat_name],
            price_minor=price,
            stock=stock,
            attributes=attrs,
        )
        session.add(row)
        session.flush()
        products[key] = row.id
    customers: dict[str, int] = {}
    n = 0
    for who, baskets in ORDERS.items():
        c = Customer(user_id=who, signup_at=NOW - timedelta(days=400))
        session.add(c)
        session.flush()
        customers[who] = c.id
        if who != "private":
            customers_service.record_consent(session, c.id, Purpose.PERSONALISATION, True, "test")
        for days, items in baskets:
            n += 1
            order = Order(
                external_id=f"o{n}",
                customer_id=c.id,
                status="paid",
                placed_at=NOW - timedelta(days=days),
            )
            session.add(order)
            session.flush()
            for item in items:
                session.add(
                    OrderItem(
                        order_id=order.id,
                        product_id=products[item],
                        quantity=1,
                        unit_price_minor=PRODUCTS[item][2],
                    )
                )
    # a cancelled order counts nowhere
    cancelled = Order(
        external_id="o-cancelled",
        customer_id=customers["newbie"],
        status="cancelled",
        placed_at=NOW - timedelta(days=1),
    )
    session.add(cancelled)
    session.flush()
    session.add(
        OrderItem(
            order_id=cancelled.id, product_id=products["deluxe"], quantity=1, unit_price_minor=1
        )
    )
    session.flush()
    return Shop(products, categories, customers)


@pytest.fixture
def shop(database: str) -> Shop:
    with db.transaction() as session:
        made = build_shop(session)
    service.build()
    return made


def _serve(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return fn(session, *args, **kwargs)


def conditional(co: int, n_x: int, n_y: int) -> float:
    """The default similarity, N_XY / (N_X · N_Y^0.3), rounded as served."""
    return round(co / (n_x * n_y**0.3), 6)


def test_also_bought_is_the_item_table_then_trending(shop: Shop) -> None:
    result = _serve(service.also_bought, shop.product["names"], limit=10)
    # buyers: names 4, guide 4 (3 with names), monitor 2 (2), chair 3 (2); cot (1 co-buyer,
    # out of stock) never; then trending tops up, never the product itself
    assert shop.names(result) == ["guide", "monitor", "chair", "coffee", "kettle", "premium"]
    assert [i.score for i in result.items[:3]] == [
        conditional(3, 4, 4),
        conditional(2, 4, 2),
        conditional(2, 4, 3),
    ]
    assert [i.source for i in result.items] == ["model"] * 3 + ["fallback"] * 3
    assert result.items[0].explanation == "Customers who bought Baby names also bought this"
    assert result.items[0].because_product_id == shop.product["names"]
    assert result.items[3].explanation == "Popular right now"
    assert result.items[3].because_product_id is None
    assert result.placement == "also_bought" and result.model == "item-to-item"
    assert result.personalised is False and result.notice is None
    assert serving.decode_list_id(str(result.recommendation_id)) == ("also_bought", "item-to-item")
    assert result.recommendation_id.version == 8


def test_limit_and_category_filter(shop: Shop) -> None:
    names = shop.product["names"]
    assert shop.names(_serve(service.also_bought, names, limit=2)) == ["guide", "monitor"]
    nursery = _serve(service.also_bought, names, category=shop.category["nursery"])
    assert shop.names(nursery) == ["monitor", "chair"]  # the cot is out of stock
    assert {i.category_id for i in nursery.items} == {shop.category["nursery"]}
    nothing = _serve(service.also_bought, names, category=999_999)
    assert nothing.items == []


def test_for_you_scores_the_history_and_keeps_repeatable_items(shop: Shop) -> None:
    result = _serve(service.for_you, shop.customer["c3"])
    # c3 bought names, monitor, coffee (repeatable), kettle
    assert shop.names(result) == ["coffee", "guide", "chair", "premium"]
    assert [i.source for i in result.items] == ["model", "model", "model", "fallback"]
    assert [i.explanation for i in result.items] == [
        "Because you bought Kettle",
        "Because you bought Baby names",
        "Because you bought Baby names",
        "Popular right now",
    ]
    assert result.personalised is True and result.notice is None
    assert result.placement == "for_you"


def test_cross_sell_comes_from_other_categories(shop: Shop) -> None:
    result = _serve(service.cross_sell_for, shop.customer["c3"])
    assert result.placement == "cross_sell"
    assert result.personalised is True
    assert shop.names(result) == ["chair", "coffee", "guide", "premium"]


def test_no_consent_gets_only_trending(shop: Shop) -> None:
    trend = _serve(service.trending_list)
    assert shop.names(trend) == ["chair", "coffee", "kettle", "guide", "names", "premium"]
    assert [i.score for i in trend.items] == [3.0, 3.0, 3.0, 2.0, 1.0, 1.0]
    assert trend.items[0].explanation == "Bought by 3 customers in the last 30 days"
    assert trend.items[4].explanation == "Bought by 1 customer in the last 30 days"
    for fn in (service.for_you, service.cross_sell_for):
        result = _serve(fn, shop.customer["private"])
        assert result.personalised is False
        assert result.notice == serving.NO_CONSENT
        assert result.placement == "trending"
        # the history is not used at all: bought items are not even excluded
        assert shop.names(result) == shop.names(trend)


def test_no_history_falls_back_to_trending(shop: Shop) -> None:
    result = _serve(service.for_you, shop.customer["newbie"], limit=3)
    assert result.notice == serving.NO_HISTORY
    assert shop.names(result) == ["chair", "coffee", "kettle"]


def test_upsell_is_dearer_in_the_same_category_without_fallback(shop: Shop) -> None:
    assert shop.names(_serve(service.upsell_for, shop.product["kettle"])) == ["premium", "deluxe"]
    assert shop.names(_serve(service.upsell_for, shop.product["cot"])) == ["chair"]
    assert shop.names(_serve(service.upsell_for, shop.product["chair"])) == []
    up = _serve(service.upsell_for, shop.product["kettle"])
    assert up.items[0].explanation == "A step up from Kettle"
    assert up.model == "upsell"


def test_basket_never_suggests_its_own_items(shop: Shop) -> None:
    one = _serve(service.basket, [shop.product["names"]], limit=2)
    assert shop.names(one) == ["guide", "monitor"]
    assert one.items[0].explanation == "Often bought together with Baby names"
    assert one.model == "bought-together"
    both = _serve(service.basket, [shop.product["names"], shop.product["guide"]], limit=3)
    assert shop.names(both) == ["monitor", "chair", "coffee"]
    assert [i.source for i in both.items] == ["model", "fallback", "fallback"]


def test_bad_input_is_refused_clearly(shop: Shop) -> None:
    names = shop.product["names"]
    for limit in (0, 101, 10_000):
        with pytest.raises(ValidationFailed):
            _serve(service.also_bought, names, limit=limit)
    for missing in (999_999, 0, -1, 2**70):
        with pytest.raises(NotFound):
            _serve(service.also_bought, missing)
        with pytest.raises(NotFound):
            _serve(service.for_you, missing)
    with pytest.raises(NotFound):
        _serve(service.basket, [names, 999_999])
    with pytest.raises(ValidationFailed):
        _serve(service.basket, [names] * 501)
    with pytest.raises(ValidationFailed):
        _serve(service.basket, [])
    # a basket of duplicates is one item
    assert shop.names(_serve(service.basket, [names] * 500, limit=1)) == ["guide"]


def test_rebuild_flips_atomically_and_drops_the_old_build(shop: Shop) -> None:
    first = _serve(service.current_build)
    assert first is not None and first.status == "done" and first.current
    before = _serve(service.also_bought, shop.product["premium"])
    assert before.build_id == first.id
    # two more buyers of premium + deluxe: a new pair in the next build
    with db.transaction() as session:
        for n in (1, 2):
            order = Order(
                external_id=f"new{n}",
                customer_id=shop.customer[f"c{n}"],
                status="paid",
                placed_at=NOW,
            )
            session.add(order)
            session.flush()
            for key in ("premium", "deluxe"):
                session.add(
                    OrderItem(
                        order_id=order.id,
                        product_id=shop.product[key],
                        quantity=1,
                        unit_price_minor=1,
                    )
                )
    seen: list[RecommendationList] = []

    def read_during(build_id: int) -> None:
        assert build_id != first.id
        during = _serve(service.also_bought, shop.product["premium"])
        seen.append(during)

    second = service.build(on_written=read_during)
    assert seen[0].build_id == first.id
    assert shop.names(seen[0]) == shop.names(before)  # the half-built table is not served
    after = _serve(service.also_bought, shop.product["premium"])
    assert after.build_id == second.id
    assert shop.names(after)[0] == "deluxe"
    builds = _serve(service.builds)
    assert [(b.id, b.status, b.current) for b in builds] == [(second.id, "done", True)]
    assert second.order_lines == 23 + 4 and second.rows > 0


def test_a_failed_build_leaves_the_current_one(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _serve(service.current_build)
    assert first is not None

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "compute_tables", broken)
    with pytest.raises(RuntimeError):
        service.build()
    builds = _serve(service.builds)
    assert [(b.status, b.current, b.detail) for b in builds] == [
        ("failed", False, "RuntimeError"),
        ("done", True, first.detail),
    ]
    assert _serve(service.also_bought, shop.product["names"], limit=1).build_id == first.id


def test_before_any_build_and_with_a_one_item_catalogue(database: str) -> None:
    with db.transaction() as session:
        product = Product(external_id="only", name="Only", price_minor=100, stock=1)
        customer = Customer(user_id="solo", signup_at=NOW)
        session.add_all([product, customer])
        session.flush()
        customers_service.record_consent(
            session, customer.id, Purpose.PERSONALISATION, True, "test"
        )
        order = Order(external_id="o1", customer_id=customer.id, status="paid", placed_at=NOW)
        session.add(order)
        session.flush()
        session.add(
            OrderItem(order_id=order.id, product_id=product.id, quantity=2, unit_price_minor=100)
        )
        ids = (product.id, customer.id)
    empty = _serve(service.also_bought, ids[0])
    assert empty.build_id is None and empty.items == []
    built = service.build()
    assert built.status == "done" and built.order_lines == 1
    assert _serve(service.also_bought, ids[0]).items == []
    assert _serve(service.for_you, ids[1]).items == []  # only item already bought
    assert [i.product_id for i in _serve(service.trending_list).items] == [ids[0]]


def _summed_by_loop(rows: list[tuple[int, int, float]], keep: int) -> list[serving.Candidate]:
    """The definition, one row at a time (the code before the NumPy version)."""
    total: dict[int, float] = {}
    best: dict[int, tuple[float, int]] = {}
    for source, item, score in rows:
        total[item] = total.get(item, 0.0) + score
        if item not in best or (score, -source) > (best[item][0], -best[item][1]):
            best[item] = (score, source)
    ranked = sorted(total, key=lambda i: (-total[i], i))[:keep]
    return [serving.Candidate(i, total[i], best[i][1]) for i in ranked]


@pytest.mark.parametrize("seed", range(20))
def test_summed_scores_equal_the_row_by_row_definition(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    sources = np.sort(rng.integers(1, 30, n))  # serving's order: by source, then rank
    items = rng.integers(1, 60, n)
    # few distinct scores: ties in the sums and in the largest contributor
    scores = rng.choice([0.1, 0.2, 0.25, 0.3, 1 / 3], n)
    rows = list(zip(sources.tolist(), items.tolist(), scores.tolist(), strict=True))
    keep = int(rng.integers(1, 80))
    assert serving._summed(rows, keep) == _summed_by_loop(rows, keep)
    assert serving._summed_arrays(sources, items, scores, keep) == _summed_by_loop(rows, keep)


def test_trying_the_first_candidates_alone_gives_the_same_lists(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lists() -> list[list[tuple[int, float, str]]]:
        out = []
        with db.transaction() as session:
            for limit in (1, 2, 3, 5):
                for p in shop.product.values():
                    for fn in (serving.also_bought, serving.upsell):
                        result = fn(session, p, limit=limit)
                        out.append([(i.product_id, i.score, i.explanation) for i in result.items])
                for c in shop.customer.values():
                    for fn in (serving.for_you, serving.cross_sell):
                        result = fn(session, c, limit=limit)
                        out.append([(i.product_id, i.score, i.explanation) for i in result.items])
        return out

    passes: list[bool] = []  # per list: answered by the first candidates alone
    real = serving._ruled_over

    def spy(*args: Any) -> Any:
        found = real(*args)
        _, candidates, _, limit, *_ = args
        head = len(candidates) == serving.HEAD * limit and args[-1] is False
        passes.append(head and len(found[0]) >= limit)
        return found

    monkeypatch.setattr(serving, "_ruled_over", spy)
    tried_first = lists()
    assert any(passes)  # the shortcut was taken, at least for limit 1
    monkeypatch.setattr(serving, "HEAD", 10**6)  # every candidate at once
    assert lists() == tried_first
