"""Serving's per-process cache of the current build (recommend/cache.py): exact while the
build is current, a new build is read at the next request, catalogue facts at most
FACTS_SECONDS stale, bounded."""

from __future__ import annotations

import gc
import threading
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from patronage import db
from patronage.catalog.models import Product
from patronage.recommend import cache, service, serving
from patronage.recommend.repository import ProductFacts
from tests.recommend.test_serving import Shop, build_shop


@pytest.fixture
def shop(database: str) -> Shop:
    cache.clear()
    with db.transaction() as session:
        made = build_shop(session)
    service.build()
    return made


def also_bought(shop: Shop, product: str) -> list[str]:
    with db.transaction() as session:
        return shop.names(serving.also_bought(session, shop.product[product], limit=3))


def test_stock_changes_show_within_the_facts_lifetime(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert also_bought(shop, "names") == ["guide", "monitor", "chair"]
    with db.transaction() as session:
        session.execute(
            update(Product).where(Product.id == shop.product["monitor"]).values(stock=0)
        )
    # still cached: at most FACTS_SECONDS stale
    assert also_bought(shop, "names") == ["guide", "monitor", "chair"]
    later = cache._now() + cache.FACTS_SECONDS + 1
    monkeypatch.setattr(cache, "_now", lambda: later)
    assert also_bought(shop, "names") == ["guide", "chair", "coffee"]


def test_a_catalogue_slow_to_read_is_kept_longer(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalogue is read whole; one that took 2 s to read is kept FACTS_READS * 2 s."""
    ticks = iter([100.0, 102.0])
    monkeypatch.setattr(cache.time, "perf_counter", lambda: next(ticks))
    monkeypatch.setattr(cache, "_now", lambda: 5000.0)
    with db.transaction() as session:
        catalogue = cache.read_catalogue(session)
    assert catalogue.expires == 5000.0 + cache.FACTS_READS * 2.0
    assert sorted(catalogue.facts) == sorted(shop.product.values())
    monitor = ProductFacts._make(catalogue.facts[shop.product["monitor"]])
    assert (monitor.name, monitor.price_minor, monitor.in_stock) == ("Baby monitor", 5000, True)


def test_the_catalogue_read_in_chunks_is_the_whole_catalogue(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.transaction() as session:
        whole = cache.read_catalogue(session).facts
        parts = list(cache.repo.catalogue(session, 3))
    assert [len(p) for p in parts] == [3, 3, 3]  # the shop's 9 products
    assert {k: v for p in parts for k, v in p.items()} == whole
    # (price, in stock, repeat-purchase kind)
    assert whole[shop.product["coffee"]][3:] == (800, True, True)
    assert whole[shop.product["cot"]][3:] == (15000, False, False)


def test_the_cache_keeps_nothing_the_collector_walks_for_good(shop: Shop) -> None:
    """Plain tuples of plain values and arrays: the collector stops tracking them (a named
    tuple it tracks for good: 20,000 products made each full pass of a server 24-37 ms)."""
    with db.transaction() as session:
        catalogue = cache.read_catalogue(session)
        build_id = cache.current(session).build_id
        engine = session.get_bind().engine
    fresh = cache.BuildCache(build_id=build_id)  # type: ignore[arg-type]
    assert cache.warm(engine, fresh) > 0
    for _ in range(3):  # nested tuples lose their tracking one level a pass, at worst: three
        gc.collect()  # levels here (a row, a product's rows, the entry)
    assert [gc.is_tracked(f) for f in catalogue.facts.values()] == [False] * len(catalogue.facts)
    assert [gc.is_tracked(n) for n in fresh.neighbours.values()] == [False] * len(fresh.neighbours)


def test_a_server_reads_expired_facts_again_in_the_background(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside tests an expired catalogue is read again by a background thread while the
    request goes on with the facts it has; the next requests see the new facts."""
    assert also_bought(shop, "names") == ["guide", "monitor", "chair"]
    with db.transaction() as session:
        session.execute(
            update(Product).where(Product.id == shop.product["monitor"]).values(stock=0)
        )
    later = cache._now() + cache.FACTS_SECONDS + 1
    monkeypatch.setattr(cache, "_now", lambda: later)
    monkeypatch.setattr(cache, "get_settings", lambda: SimpleNamespace(env="production"))
    # the background read waits until the request is answered (else it may finish mid-way)
    answered = threading.Event()
    read = cache.repo.catalogue

    def held_read(session: db.Session, chunk: int) -> object:
        assert answered.wait(timeout=30)
        return read(session, chunk)

    monkeypatch.setattr(cache.repo, "catalogue", held_read)
    assert also_bought(shop, "names") == ["guide", "monitor", "chair"]  # the facts it had
    answered.set()
    for thread in threading.enumerate():
        if thread.name == "patronage-recommend-facts":
            thread.join(timeout=30)
    assert also_bought(shop, "names") == ["guide", "chair", "coffee"]
    with db.transaction() as session:
        assert cache.current(session).cache.refreshing is False  # type: ignore[union-attr]


def test_a_new_build_is_read_at_the_next_request(shop: Shop) -> None:
    with db.transaction() as session:
        first = serving.also_bought(session, shop.product["names"], limit=3)
    again = service.build()
    with db.transaction() as session:
        second = serving.also_bought(session, shop.product["names"], limit=3)
    assert (first.build_id, second.build_id) == (again.id - 1, again.id)
    assert [i.product_id for i in second.items] == [i.product_id for i in first.items]


def test_bounded_caches_give_the_same_lists(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {p: also_bought(shop, p) for p in shop.product}
    with db.transaction() as session:
        for_you = serving.for_you(session, shop.customer["c3"], limit=5)
    cache.clear()
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    assert {p: also_bought(shop, p) for p in shop.product} == expected
    with db.transaction() as session:
        small = serving.for_you(session, shop.customer["c3"], limit=5)
    assert [i.product_id for i in small.items] == [i.product_id for i in for_you.items]


def test_a_warmed_cache_holds_the_rows_serving_would_load(shop: Shop) -> None:
    """`warm` (a server's background load of a new build's also-bought rows) caches exactly
    what requests would have loaded one product at a time, and the lists stay the same."""
    expected = {p: also_bought(shop, p) for p in shop.product}
    with db.transaction() as session:
        on_demand = dict(cache.current(session).cache.neighbours)  # type: ignore[union-attr]
        for_you = serving.for_you(session, shop.customer["c3"], limit=5)
        build_id = cache.current(session).build_id
        engine = session.get_bind().engine
    fresh = cache.BuildCache(build_id=build_id)  # type: ignore[arg-type]
    loaded = cache.warm(engine, fresh)
    with_rows = {k: rows for k, (rows, _, _) in on_demand.items() if rows}
    assert loaded == len(with_rows) > 0
    assert {k: rows for k, (rows, _, _) in fresh.neighbours.items()} == with_rows
    cache.clear()
    with db.transaction() as session:
        view = cache.current(session)
        assert view.cache is not None
        assert cache.warm(engine, view.cache) == loaded
        warmed = serving.for_you(session, shop.customer["c3"], limit=5)
    assert [i.product_id for i in warmed.items] == [i.product_id for i in for_you.items]
    assert {p: also_bought(shop, p) for p in shop.product} == expected
