"""When customers buy and what: a BG/NBD-like purchase process in demand-weighted time.

Each buyer has a purchase rate (gamma distributed across customers) and, after every
purchase, a chance to lapse for good (beta distributed). Time runs faster on busy days
(weekends, Black Friday, December), so the same process yields the shop's seasonality.
Baskets hold 1-5 lines, mostly from the customer's favourite leaves, sometimes from related
ones, and now and then from a leaf they had never bought from (branching out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patronage.demo import reference as ref
from patronage.demo.catalog import Catalog, choose_products
from patronage.demo.people import People, time_of_day
from patronage.demo.timeline import DAY, Timeline

BUYER_SHARE = 0.8
RATE_SHAPE, RATE_MEAN = 0.8, 9.5  # orders per year while active (gamma)
LAPSE_A, LAPSE_B = 1.1, 9.0  # chance to lapse after each purchase (beta)
MAX_ORDERS = 999  # per customer: the order number keeps three digits for it
BASKET_P = (0.46, 0.26, 0.14, 0.09, 0.05)
HYPE = 0.12  # share of lines that go to a product released in the last 45 days
CHANNELS = np.array(["web", "app", "phone"], dtype=object)
COUPONS = np.array(
    ["", "WELCOME10", "BLACKFRIDAY20", "XMAS10", "BIRTHDAY15", "SAVE15"], dtype=object
)
COUPON_PERCENT = np.array([0, 10, 20, 10, 15, 15])
FREE_SHIPPING_FROM = 5000
SHIPPING_FEE = 490


@dataclass
class Orders:
    customer: np.ndarray  # index into People
    placed: np.ndarray  # epoch seconds
    number: np.ndarray  # 0 for a customer's first order, 1 for the second …
    channel: np.ndarray  # index into CHANNELS
    coupon: np.ndarray  # index into COUPONS (0 = none)
    subtotal: np.ndarray
    discount: np.ndarray
    shipping: np.ndarray
    total: np.ndarray
    tax: np.ndarray
    # lines, grouped by order
    line_order: np.ndarray
    line_product: np.ndarray  # index into the catalogue's products
    line_leaf: np.ndarray
    line_quantity: np.ndarray
    line_price: np.ndarray
    line_discount: np.ndarray
    alive_until: np.ndarray  # per customer: lapse time (last order), end, or signup for none


def make_orders(rng: np.random.Generator, people: People, catalog: Catalog, tl: Timeline) -> Orders:
    n = len(people.ids)
    buyer = rng.random(n) < BUYER_SHARE
    rate = rng.gamma(RATE_SHAPE, RATE_MEAN / RATE_SHAPE, n)
    lapse = rng.beta(LAPSE_A, LAPSE_B, n)
    soon = rng.random(n) < 0.5
    delay = np.where(soon, rng.exponential(0.2 * DAY, n), rng.exponential(25 * DAY, n))
    first = people.signup + delay.astype(np.int64)
    buyer &= first < tl.end

    customers = [np.flatnonzero(buyer)]
    times = [first[buyer]]
    current = customers[0]
    op = tl.to_operational(first[current])
    op_end = tl.cumulative[-1]
    lapsed = np.zeros(n, dtype=bool)
    for _ in range(MAX_ORDERS - 1):
        if current.size == 0:
            break
        stays = rng.random(current.size) >= lapse[current]
        lapsed[current[~stays]] = True
        current, op = current[stays], op[stays]
        op = op + rng.exponential(365.0 / rate[current])
        inside = op < op_end
        current, op = current[inside], op[inside]
        day = tl.to_day(op)
        at = tl.start + day * DAY + time_of_day(rng, people.hour[current])
        customers.append(current)
        times.append(at)

    customer = np.concatenate(customers)
    placed = np.maximum(np.concatenate(times), people.signup[customer] + 60)
    order = np.lexsort((placed, customer))
    customer, placed = customer[order], placed[order]
    first_row = np.searchsorted(customer, customer, side="left")
    number = np.arange(len(customer)) - first_row
    last_row = np.searchsorted(customer, np.arange(n), side="right") - 1
    alive_until = np.where(buyer, tl.end, people.signup)
    alive_until = np.where(lapsed, placed[np.maximum(last_row, 0)], alive_until)

    m = len(customer)
    app = people.app_user[customer]
    u = rng.random(m)
    channel = np.where(
        app,
        np.select([u < 0.8, u < 0.98], [1, 0], 2),
        np.select([u < 0.88, u < 0.96], [0, 1], 2),
    )

    # lines: the first from the customer's tastes, the rest often alongside it
    size = rng.choice(len(BASKET_P), m, p=BASKET_P) + 1
    line_order = np.repeat(np.arange(m), size)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    position = np.arange(len(line_order)) - np.repeat(starts, size)
    line_customer = customer[line_order]
    taste = taste_draw(rng, people, catalog, line_customer, number[line_order])
    first_leaf = taste[np.repeat(starts, size)]
    u = rng.random(len(line_order))
    related = _related(rng, catalog, first_leaf)
    leaf = np.where(
        position == 0, taste, np.where(u < 0.45, first_leaf, np.where(u < 0.7, related, taste))
    )
    product = choose_products(catalog, rng, leaf, placed[line_order], HYPE)
    # one line per product and order
    key = line_order.astype(np.int64) * (len(catalog.product_ids) + 1) + product
    _, keep = np.unique(key, return_index=True)
    keep.sort()
    line_order, product, leaf = line_order[keep], product[keep], leaf[keep]

    lines = len(line_order)
    multiples = np.array([lf.multiples for lf in ref.LEAVES])[leaf]
    quantity = 1 + (rng.random(lines) < multiples) * (1 + (rng.random(lines) < 0.3))
    price = catalog.product_price[product]

    coupon = _coupons(rng, people, customer, placed, number)
    percent = COUPON_PERCENT[coupon][line_order]
    line_discount = np.round(price * quantity * percent / 100.0).astype(np.int64)
    subtotal = np.bincount(line_order, price * quantity, minlength=m).astype(np.int64)
    discount = np.bincount(line_order, line_discount, minlength=m).astype(np.int64)
    shipping = np.where(subtotal - discount >= FREE_SHIPPING_FROM, 0, SHIPPING_FEE)
    total = subtotal - discount + shipping
    tax = np.round(total * 19 / 119).astype(np.int64)
    return Orders(
        customer=customer,
        placed=placed,
        number=number,
        channel=channel,
        coupon=coupon,
        subtotal=subtotal,
        discount=discount,
        shipping=shipping,
        total=total,
        tax=tax,
        line_order=line_order,
        line_product=product,
        line_leaf=leaf,
        line_quantity=quantity,
        line_price=price,
        line_discount=line_discount,
        alive_until=alive_until,
    )


def taste_draw(
    rng: np.random.Generator,
    people: People,
    catalog: Catalog,
    customer: np.ndarray,
    number: np.ndarray,
) -> np.ndarray:
    """A leaf from the customer's tastes: the third favourite only from the third order on."""
    u = rng.random(len(customer))
    favourite = people.leaves[customer]
    explore = rng.choice(len(catalog.leaf_weight), len(customer), p=catalog.leaf_weight)
    third = np.where(number >= 2, favourite[:, 2], favourite[:, 0])
    return np.select(
        [u < 0.55, u < 0.8, u < 0.9], [favourite[:, 0], favourite[:, 1], third], explore
    )


def _related(rng: np.random.Generator, catalog: Catalog, leaf: np.ndarray) -> np.ndarray:
    sizes = np.array([len(r) for r in catalog.related])
    flat = np.concatenate(catalog.related)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pick = rng.integers(0, 1 << 30, len(leaf)) % sizes[leaf]
    return flat[offsets[leaf] + pick]  # type: ignore[no-any-return]


def _coupons(
    rng: np.random.Generator,
    people: People,
    customer: np.ndarray,
    placed: np.ndarray,
    number: np.ndarray,
) -> np.ndarray:
    day = placed.astype("datetime64[s]").astype("datetime64[D]")
    month = day.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (day - day.astype("datetime64[M]")).astype(np.int64) + 1
    doy = (day - day.astype("datetime64[Y]")).astype(np.int64)
    bday = people.birthday_doy[customer]
    near_birthday = (bday >= 0) & (np.abs(((doy - bday) + 182) % 365 - 182) <= 7)
    u = rng.random((5, len(customer)))
    return np.select(
        [
            (number == 0) & (u[0] < 0.25),
            (month == 11) & (dom >= 22) & (u[1] < 0.3),
            (month == 12) & (dom <= 20) & (u[2] < 0.12),
            near_birthday & (u[3] < 0.35),
            u[4] < people.deal_seeker[customer],
        ],
        [1, 2, 3, 4, 5],
        0,
    )
