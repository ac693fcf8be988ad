"""Tracked sessions (Segment-spec page and track calls) of customers who allow analytics.

Tracking started `TRACKING_DAYS` before the demo's end, and records only customers with
analytics consent (from the moment they gave it). Sessions that end in an order run
landing page -> (search) -> product views -> adds -> (cart) -> checkout -> Order Completed;
browse-only sessions view products of the customer's favourite leaves, and some add to the
cart or even start the checkout without buying (abandoned carts). A quarter of browse
sessions are not logged in: only the device's anonymous id is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from patronage.demo import reference as ref
from patronage.demo.catalog import Catalog, choose_products
from patronage.demo.people import People
from patronage.demo.shopping import COUPONS, Orders, taste_draw
from patronage.demo.timeline import DAY, Timeline

TRACKING_DAYS = 210
BROWSE_PER_ORDER = 0.5  # browse-only sessions per order session
BROWSE_PER_YEAR = 1.5  # and per year of being an active customer
ANONYMOUS_SHARE = 0.25
GAP_SECONDS = 40.0  # mean time between two events of a session

# event codes: (type, name)
PAGE_HOME, PAGE_CATEGORY, SEARCHED, VIEWED, ADDED, CART, CHECKOUT, COMPLETED = range(8)
EVENT_TYPES = np.array(
    ["page", "page", "track", "track", "track", "track", "track", "track"], dtype=object
)
EVENT_NAMES = np.array(
    [
        "Home",
        "Category",
        "Products Searched",
        "Product Viewed",
        "Product Added",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
    ],
    dtype=object,
)
DEVICES = ("desktop", "mobile", "tablet")


@dataclass
class Events:
    customer: np.ndarray  # index into People
    identified: np.ndarray  # logged in: customer_id and user_id are known
    code: np.ndarray
    properties: np.ndarray  # object array of JSON texts
    context: np.ndarray  # object array of JSON texts
    timestamp: np.ndarray
    received: np.ndarray


@lru_cache(maxsize=1)
def _locales() -> tuple[str, ...]:
    return tuple(f"{lang}-{c.code}" for c in ref.COUNTRIES for lang, _ in c.languages)


@lru_cache(maxsize=1)
def _contexts() -> np.ndarray:
    """Every context the demo's sessions can have, as JSON, indexed by `_context_index`."""
    texts = []
    for channel in ("web", "app"):
        for device in DEVICES:
            for locale in _locales():
                for campaign in range(len(ref.CAMPAIGNS) + 1):
                    data: dict[str, object] = {
                        "channel": channel,
                        "device": {"type": device},
                        "locale": locale,
                    }
                    if campaign:
                        source, medium, name = ref.CAMPAIGNS[campaign - 1]
                        data["campaign"] = {"source": source, "medium": medium, "name": name}
                    texts.append(json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    return np.array(texts, dtype=object)


def _context_index(
    app: np.ndarray, device: np.ndarray, locale: np.ndarray, campaign: np.ndarray
) -> np.ndarray:
    locales = len(_locales())
    campaigns = len(ref.CAMPAIGNS) + 1
    return ((app * len(DEVICES) + device) * locales + locale) * campaigns + campaign  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def _leaf_texts() -> tuple[np.ndarray, np.ndarray]:
    """Per leaf: the category page's properties, and three search queries' properties."""
    pages = np.array(
        [
            json.dumps({"path": f"/c/{leaf.slug}", "title": leaf.name}, separators=(",", ":"))
            for leaf in ref.LEAVES
        ],
        dtype=object,
    )
    searches = np.array(
        [
            [json.dumps({"query": q}, separators=(",", ":")) for q in leaf.searches[:3]]
            for leaf in ref.LEAVES
        ],
        dtype=object,
    )
    return pages, searches


def make_events(
    rng: np.random.Generator,
    people: People,
    orders: Orders,
    order_numbers: list[str],
    catalog: Catalog,
    tl: Timeline,
) -> Events:
    n = len(people.ids)
    window = np.maximum(tl.end - TRACKING_DAYS * DAY, people.tracked_from)  # per customer
    tracked = window < tl.end

    # sessions that end in an order (orders by phone have none)
    in_window = (orders.placed >= window[orders.customer]) & (orders.channel != 2)
    order_rows = np.flatnonzero(in_window)
    per_customer = np.bincount(orders.customer[order_rows], minlength=n)

    # browse-only sessions while the customer is around
    alive_until = np.minimum(tl.end, orders.alive_until + 60 * DAY)
    span = np.where(tracked, np.maximum(alive_until - window, 0), 0)
    expected = BROWSE_PER_ORDER * per_customer + BROWSE_PER_YEAR * span / (365.0 * DAY)
    browse_count = rng.poisson(expected)
    browse_customer = np.repeat(np.arange(n), browse_count)
    b = browse_customer.size
    browse_start = window[browse_customer] + (rng.random(b) * span[browse_customer]).astype(
        np.int64
    )
    browse_start = np.minimum(browse_start, tl.end - 3600)

    s_order = order_rows.size
    sessions = s_order + b
    customer = np.concatenate([orders.customer[order_rows], browse_customer])
    is_order = np.arange(sessions) < s_order
    identified = is_order | (rng.random(sessions) >= ANONYMOUS_SHARE)
    app = np.concatenate(
        [orders.channel[order_rows] == 1, people.app_user[browse_customer] & (rng.random(b) < 0.7)]
    )
    device = np.where(
        app,
        np.where(rng.random(sessions) < 0.85, 1, 2),
        rng.choice(3, sessions, p=[0.5, 0.44, 0.06]),
    )
    campaign = np.where(
        rng.random(sessions) < 0.22, rng.integers(1, len(ref.CAMPAIGNS) + 1, sessions), 0
    )
    campaign = np.where((campaign == 1) & ~people.marketing[customer], 2, campaign)
    locale_of = np.array([_locales().index(loc) for loc in people.locales])
    context = _contexts()[
        _context_index(app.astype(np.int64), device, locale_of[people.locale[customer]], campaign)
    ]

    # the leaf a browse session is about; an order session's is its first line's
    line_start = np.searchsorted(orders.line_order, order_rows)
    browse_leaf = taste_draw(rng, people, catalog, browse_customer, np.full(b, 2))
    leaf = np.concatenate([orders.line_leaf[line_start], browse_leaf])
    at = np.concatenate([orders.placed[order_rows], browse_start])

    blocks: list[
        tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    ] = []  # session, slot, code, props

    def add(session: np.ndarray, slot: np.ndarray | int, code: int, props: np.ndarray) -> None:
        slots = np.broadcast_to(np.asarray(slot, dtype=np.int64), session.shape)
        blocks.append((session, slots, np.full(session.size, code), props))

    pages, searches = _leaf_texts()
    home = rng.random(sessions) < 0.6
    everyone = np.arange(sessions)
    add(
        everyone[home],
        0,
        PAGE_HOME,
        np.full(int(home.sum()), '{"path":"/","title":"Home"}', dtype=object),
    )
    add(everyone[~home], 0, PAGE_CATEGORY, pages[leaf[~home]])
    searched = np.flatnonzero(rng.random(sessions) < 0.33)
    add(searched, 1, SEARCHED, searches[leaf[searched], rng.integers(0, 3, searched.size)])

    # order sessions: view and add every line, maybe a few more views, then check out
    line_mask = np.isin(orders.line_order, order_rows)
    lines = np.flatnonzero(line_mask)
    line_session = np.searchsorted(order_rows, orders.line_order[lines])
    line_rank = lines - line_start[line_session]
    line_props = catalog.product_event_json[orders.line_product[lines]]
    add(line_session, 10 + line_rank, VIEWED, line_props)
    add(line_session, 100 + line_rank, ADDED, line_props)

    views = rng.poisson(np.where(is_order, 0.6, 1.2)) + ~is_order  # browsing views one at least
    extra_session = np.repeat(everyone, views)
    extra_rank = np.arange(extra_session.size) - np.repeat(np.cumsum(views) - views, views)
    viewed = choose_products(catalog, rng, leaf[extra_session], at[extra_session], 0.1)
    add(extra_session, 2 + extra_rank, VIEWED, catalog.product_event_json[viewed])

    # browse sessions: some add the first viewed product; some of those start a checkout
    browse_ids = np.arange(s_order, sessions)
    first_view = np.searchsorted(extra_session, browse_ids)
    carted = rng.random(b) < 0.25
    checkout = carted & (rng.random(b) < 0.4)
    add(browse_ids[carted], 100, ADDED, catalog.product_event_json[viewed[first_view[carted]]])
    cart_viewed = np.where(
        is_order, rng.random(sessions) < 0.4, np.concatenate([np.zeros(s_order, bool), checkout])
    )
    add(everyone[cart_viewed], 200, CART, np.full(int(cart_viewed.sum()), "{}", dtype=object))
    abandoned_value = catalog.product_price[viewed[first_view[checkout]]]
    add(
        browse_ids[checkout],
        201,
        CHECKOUT,
        np.array(
            [f'{{"value":{v / 100:.2f},"currency":"EUR"}}' for v in abandoned_value.tolist()],
            dtype=object,
        ),
    )
    numbers = [order_numbers[o] for o in order_rows.tolist()]
    totals = orders.total[order_rows].tolist()
    add(
        np.arange(s_order),
        201,
        CHECKOUT,
        np.array(
            [
                f'{{"order_id":"{k}","value":{t / 100:.2f},"currency":"EUR"}}'
                for k, t in zip(numbers, totals, strict=True)
            ],
            dtype=object,
        ),
    )
    add(np.arange(s_order), 202, COMPLETED, _completed(orders, order_rows, numbers, catalog))

    session = np.concatenate([blk[0] for blk in blocks])
    slot = np.concatenate([blk[1] for blk in blocks])
    code = np.concatenate([blk[2] for blk in blocks])
    props = np.concatenate([blk[3] for blk in blocks])
    # customer, then session start, then the event's place in the session
    rank = np.lexsort((slot, session, at[session], customer[session]))
    session, code, props = session[rank], code[rank], props[rank]
    gap = rng.exponential(GAP_SECONDS, session.size).astype(np.int64) + 1
    total = np.cumsum(gap)
    boundary = np.concatenate([[True], session[1:] != session[:-1]])
    starts = np.flatnonzero(boundary)
    group = np.cumsum(boundary) - 1
    stops = np.concatenate([starts[1:], [session.size]]) - 1
    offset = total - total[starts[group]]
    duration = total[stops[group]] - total[starts[group]]
    order_session = is_order[session]
    timestamp = np.where(order_session, at[session] - (duration - offset), at[session] + offset)
    timestamp = np.minimum(timestamp, tl.end - 1)
    delay = np.where(
        app[session], rng.exponential(20.0, session.size), rng.random(session.size) * 2
    )
    received = timestamp + delay.astype(np.int64)
    return Events(
        customer=customer[session],
        identified=identified[session],
        code=code,
        properties=props,
        context=context[session],
        timestamp=timestamp,
        received=received,
    )


def _completed(
    orders: Orders, order_rows: np.ndarray, numbers: list[str], catalog: Catalog
) -> np.ndarray:
    """Order Completed properties, with the products as the Segment e-commerce spec has them."""
    product_ids: list[str] = catalog.product_columns["external_id"]  # type: ignore[assignment]
    line_start = np.searchsorted(orders.line_order, order_rows, side="left").tolist()
    line_stop = np.searchsorted(orders.line_order, order_rows, side="right").tolist()
    product = orders.line_product.tolist()
    quantity = orders.line_quantity.tolist()
    price = orders.line_price.tolist()
    total = orders.total[order_rows].tolist()
    revenue = (orders.subtotal - orders.discount)[order_rows].tolist()
    shipping = orders.shipping[order_rows].tolist()
    tax = orders.tax[order_rows].tolist()
    discount = orders.discount[order_rows].tolist()
    coupons = COUPONS[orders.coupon[order_rows]].tolist()
    texts = []
    for i in range(len(numbers)):
        items = ",".join(
            f'{{"product_id":"{product_ids[product[k]]}","quantity":{quantity[k]},'
            f'"price":{price[k] / 100:.2f}}}'
            for k in range(line_start[i], line_stop[i])
        )
        coupon = f',"coupon":"{coupons[i]}"' if coupons[i] else ""
        texts.append(
            f'{{"order_id":"{numbers[i]}","total":{total[i] / 100:.2f},'
            f'"revenue":{revenue[i] / 100:.2f},"shipping":{shipping[i] / 100:.2f},'
            f'"tax":{tax[i] / 100:.2f},"discount":{discount[i] / 100:.2f}{coupon},'
            f'"currency":"EUR","products":[{items}]}}'
        )
    return np.array(texts, dtype=object)
