"""What happens after an order: payments, shipments, cancellations, returns, refunds,
reviews and support tickets, each shaped by who fulfilled the order and how well.

Ids here are local to the chunk (0, 1, …); the generator shifts them to their final values.
A nullable reference is -1 when absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from patronage.demo import reference as ref
from patronage.demo.catalog import (
    HANDLING_DAYS,
    LOST_RATE,
    PROMISE_DAYS,
    RATING_SHIFT,
    RETURN_FACTOR,
    Catalog,
)
from patronage.demo.people import PAYMENT_METHODS, PAYMENT_P, People
from patronage.demo.shopping import Orders
from patronage.demo.timeline import DAY, HOUR, Timeline

CANCEL_RATE = 0.03
FAILURE_RATE = np.array([0.05, 0.02, 0.07, 0.01])  # by payment method
RETURN_SCALE = 0.72  # calibrates returns to ~8% of lines
REVIEW_RATE = 0.095
APPAREL = "Fashion"
TICKET_CHANNELS = np.array(["email", "chat", "phone", "form"], dtype=object)
TICKET_CHANNEL_P = (0.4, 0.3, 0.2, 0.1)

Table = dict[str, Any]


@dataclass
class Aftersale:
    tables: dict[str, Table]
    order_status: np.ndarray
    cancelled: np.ndarray
    cancelled_at: np.ndarray  # epoch seconds, -1 when not cancelled
    order_updated: np.ndarray  # epoch seconds of the order's last change
    line_delivered: np.ndarray  # epoch seconds, -1 when not delivered


def make_aftersale(
    rng: np.random.Generator,
    people: People,
    orders: Orders,
    catalog: Catalog,
    tl: Timeline,
    order_ids: np.ndarray,
    line_ids: np.ndarray,
) -> Aftersale:
    """`order_ids` and `line_ids` are the final ids of the chunk's orders and lines; the
    rows made here take theirs from them (see the generator's id scheme)."""
    m = len(orders.customer)
    placed = orders.placed
    cancelled = (rng.random(m) < CANCEL_RATE) & (placed < tl.end - 2 * HOUR)
    cancelled_at = np.minimum(placed + rng.exponential(5 * HOUR, m).astype(np.int64), tl.end - 1)

    payments, failed = _payments(rng, people, orders, cancelled, order_ids)
    ship, line_shipment = _shipments(rng, people, orders, catalog, tl, cancelled)
    line_delivered = np.where(line_shipment >= 0, ship["delivered"][line_shipment], -1)
    line_late = (line_shipment >= 0) & ship["late"][np.maximum(line_shipment, 0)]
    returns, refunds, returned_line = _returns(
        rng, people, orders, catalog, tl, line_delivered, line_late, cancelled, cancelled_at
    )
    refunds["id"] = np.where(
        refunds["return"] >= 0,
        line_ids[np.maximum(refunds["return"], 0)],
        order_ids[refunds["order"]] * 8 + 7,
    )
    refunds["return_id"] = _nullable(line_ids, refunds.pop("return"))
    refunds["order_id"] = order_ids[refunds.pop("order")]
    reviews = _reviews(rng, people, orders, catalog, tl, line_delivered, line_late, returned_line)
    reviews["id"] = line_ids[reviews.pop("line")]
    reviews["order_id"] = order_ids[reviews["order_id"]]

    # order status: what a customer would see today
    status = np.full(m, "delivered", dtype=object)
    order_of_ship = ship["order"]
    pending = np.bincount(order_of_ship, ship["status"] == "pending", minlength=m) > 0
    moving = (
        np.bincount(order_of_ship, np.isin(ship["status"], ["in_transit", "lost"]), minlength=m) > 0
    )
    status[moving] = "shipped"
    status[pending] = "paid"
    has_return = np.bincount(returns["order"], returns["status"] != "rejected", minlength=m) > 0
    status[has_return] = "returned"
    status[cancelled] = "cancelled"

    # the last change a customer could see: dispatch, delivery, a return, the cancellation
    updated = orders.placed.copy()
    np.maximum.at(updated, order_of_ship, np.maximum(ship["shipped"], ship["delivered"]))
    np.maximum.at(updated, returns["order"], np.maximum(returns["requested"], returns["received"]))
    updated = np.where(cancelled, cancelled_at, updated)

    tickets = _tickets(rng, people, orders, tl, ship, returns, failed, cancelled, cancelled_at)
    local_order = tickets.pop("order")
    tickets["id"] = np.where(
        local_order >= 0, order_ids[np.maximum(local_order, 0)], tickets["customer_id"] * 1000 + 999
    )
    tickets["order_id"] = _nullable(order_ids, local_order)
    carriers = ship.pop("carrier_name")
    tables: dict[str, Table] = {
        "payments": payments,
        "shipments": {
            "id": order_ids[ship["order"]] * 32 + ship["fulfiller"],
            "order_id": order_ids[ship["order"]],
            "carrier": carriers,
            "tracking_number": ship["tracking"],
            "status": ship["status"],
            "shipped_at": _dt(ship["shipped"]),
            "promised_at": _dt(ship["promised"]),
            "delivered_at": _dt(ship["delivered"]),
        },
        "returns": {
            "id": line_ids[returns["line"]],
            "order_id": order_ids[returns["order"]],
            "order_item_id": line_ids[returns["line"]],
            "quantity": returns["quantity"],
            "reason": returns["reason"],
            "status": returns["status"],
            "requested_at": _dt(returns["requested"]),
            "received_at": _dt(returns["received"]),
        },
        "refunds": refunds,
        "reviews": reviews,
        "tickets": tickets,
    }
    return Aftersale(
        tables, status, cancelled, np.where(cancelled, cancelled_at, -1), updated, line_delivered
    )


def _rank_within(group: np.ndarray) -> np.ndarray:
    """0, 1, 2 … within runs of equal values (the array is sorted by group)."""
    first = np.searchsorted(group, group, side="left")
    return np.arange(len(group)) - first


def _nullable(ids: np.ndarray, local: np.ndarray) -> list[int | None]:
    """Final ids for local indexes, None where the index is -1."""
    final = ids[np.maximum(local, 0)].tolist()
    return [None if k < 0 else v for v, k in zip(final, local.tolist(), strict=True)]


def _dt(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds -> datetime64[s]; negative means NULL (NaT)."""
    moments = np.maximum(seconds, 0).astype("datetime64[s]")
    return np.where(seconds >= 0, moments, np.datetime64("NaT", "s"))


def _payments(
    rng: np.random.Generator,
    people: People,
    orders: Orders,
    cancelled: np.ndarray,
    order_ids: np.ndarray,
) -> tuple[Table, np.ndarray]:
    m = len(orders.customer)
    preferred = people.pay_method[orders.customer]
    method = np.where(rng.random(m) < 0.85, preferred, rng.choice(len(PAYMENT_P), m, p=PAYMENT_P))
    failed = rng.random(m) < FAILURE_RATE[method]
    retry_method = np.where(rng.random(m) < 0.5, method, 1)  # many retry with PayPal
    first_at = orders.placed + 5
    retry_at = orders.placed + rng.integers(120, 1800, m)
    final_status = np.where(cancelled, "refunded", "captured")
    # rows: a failed attempt (when there was one), then the final one, per order
    rows_order = np.concatenate([np.flatnonzero(failed), np.arange(m)])
    rows_method = np.concatenate([method[failed], np.where(failed, retry_method, method)])
    rows_status = np.concatenate(
        [np.full(int(failed.sum()), "failed", dtype=object), final_status.astype(object)]
    )
    rows_at = np.concatenate([first_at[failed], np.where(failed, retry_at, first_at)])
    rank = np.lexsort((rows_at, rows_order))
    table: Table = {
        "id": order_ids[rows_order[rank]] * 4 + _rank_within(rows_order[rank]),
        "order_id": order_ids[rows_order[rank]],
        "method": PAYMENT_METHODS[rows_method[rank]],
        "status": rows_status[rank],
        "amount_minor": orders.total[rows_order[rank]],
        "created_at": rows_at[rank].astype("datetime64[s]"),
    }
    return table, failed


def _shipments(
    rng: np.random.Generator,
    people: People,
    orders: Orders,
    catalog: Catalog,
    tl: Timeline,
    cancelled: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One shipment per order and fulfiller (the shop or a seller); lines point at theirs."""
    fulfillers = len(catalog.fulfiller_tier)
    line_fulfiller = catalog.product_fulfiller[orders.line_product]
    key = orders.line_order.astype(np.int64) * fulfillers + line_fulfiller
    live = ~cancelled[orders.line_order]
    groups, inverse = np.unique(key[live], return_inverse=True)
    line_shipment = np.full(len(key), -1, dtype=np.int64)
    line_shipment[live] = inverse
    order = groups // fulfillers
    fulfiller = groups % fulfillers
    tier = catalog.fulfiller_tier[fulfiller]
    k = len(groups)
    placed = orders.placed[order]
    customer = orders.customer[order]
    handling = rng.gamma(2.0, HANDLING_DAYS[tier] / 2.0) * DAY
    shipped = placed + handling.astype(np.int64)
    promised = placed + PROMISE_DAYS[tier] * DAY
    transit = (1.0 + rng.gamma(2.0, 0.4, k) + 0.6 * people.remote[customer]) * DAY
    delivered = shipped + transit.astype(np.int64)
    lost = rng.random(k) < LOST_RATE[tier]
    status = np.full(k, "delivered", dtype=object)
    status[delivered >= tl.end] = "in_transit"
    status[lost] = "lost"
    not_shipped = shipped >= tl.end
    status[not_shipped] = "pending"
    delivered = np.where((status == "delivered"), delivered, -1)
    shipped = np.where(not_shipped, -1, shipped)
    late = (delivered > promised) | lost

    country = people.country[customer]
    carrier_name = np.empty(k, dtype=object)
    tracking = np.empty(k, dtype=object)
    pick = rng.integers(0, 1 << 30, k)
    number = rng.integers(10**11, 10**12, k)
    for c, spec in enumerate(ref.COUNTRIES):
        rows = np.flatnonzero(country == c)
        if rows.size == 0:
            continue
        choice = pick[rows] % len(spec.carriers)
        names = np.array([name for name, _ in spec.carriers], dtype=object)
        prefixes = [prefix for _, prefix in spec.carriers]
        carrier_name[rows] = names[choice]
        tracking[rows] = [
            f"{prefixes[i]}{n}" for i, n in zip(choice.tolist(), number[rows].tolist(), strict=True)
        ]
    tracking[not_shipped] = None
    return (
        {
            "order": order,
            "fulfiller": fulfiller,
            "tier": tier,
            "carrier_name": carrier_name,
            "tracking": tracking,
            "status": status,
            "shipped": shipped,
            "promised": promised,
            "delivered": delivered,
            "late": late,
            "lost": lost,
        },
        line_shipment,
    )


def _returns(
    rng: np.random.Generator,
    people: People,
    orders: Orders,
    catalog: Catalog,
    tl: Timeline,
    delivered: np.ndarray,
    late: np.ndarray,
    cancelled: np.ndarray,
    cancelled_at: np.ndarray,
) -> tuple[dict[str, np.ndarray], Table, np.ndarray]:
    lines = len(orders.line_order)
    leaves = ref.LEAVES
    rate = np.array([leaf.return_rate for leaf in leaves])[orders.line_leaf]
    tier = catalog.fulfiller_tier[catalog.product_fulfiller[orders.line_product]]
    quality = catalog.product_quality[orders.line_product]
    customer = orders.customer[orders.line_order]
    p = (
        RETURN_SCALE
        * rate
        * RETURN_FACTOR[tier]
        * np.where(late, 1.4, 1.0)
        * people.returner[customer]
        * np.exp(-0.6 * quality)
    )
    requested = delivered + rng.gamma(2.0, 2.5 * DAY, lines).astype(np.int64)
    chosen = (delivered >= 0) & (rng.random(lines) < p) & (requested < tl.end)
    rows = np.flatnonzero(chosen)
    r = rows.size
    received = requested[rows] + ((3.0 + rng.gamma(2.0, 1.0, r)) * DAY).astype(np.int64)
    rejected = rng.random(r) < 0.06
    arrived = received < tl.end
    status = np.where(arrived, np.where(rejected, "rejected", "received"), "requested").astype(
        object
    )
    apparel = np.array([leaves[leaf].top == APPAREL for leaf in range(len(leaves))])[
        orders.line_leaf[rows]
    ]
    reason = np.where(
        apparel,
        _pick(rng, ref.RETURN_REASONS_APPAREL, r),
        _pick(rng, ref.RETURN_REASONS_OTHER, r),
    ).astype(object)
    reason = np.where(late[rows] & (rng.random(r) < 0.3), "arrived_late", reason).astype(object)
    returns = {
        "order": orders.line_order[rows],
        "line": rows,
        "quantity": orders.line_quantity[rows],
        "reason": reason,
        "status": status,
        "requested": requested[rows],
        "received": np.where(arrived, received, -1),
    }
    returned_line = np.zeros(lines, dtype=bool)
    returned_line[rows[status != "rejected"]] = True

    # refunds: received returns (a day or so later) and cancelled orders
    refunded = np.flatnonzero(status == "received")
    refund_at = received[refunded] + rng.exponential(DAY, refunded.size).astype(np.int64)
    in_time = refund_at < tl.end
    refunded, refund_at = refunded[in_time], refund_at[in_time]
    line = rows[refunded]
    amount = orders.line_price[line] * orders.line_quantity[line] - orders.line_discount[line]
    cancelled_orders = np.flatnonzero(cancelled)
    cancel_refund_at = np.minimum(cancelled_at[cancelled_orders] + HOUR, tl.end - 1)
    order = np.concatenate([orders.line_order[line], cancelled_orders])
    at = np.concatenate([refund_at, cancel_refund_at])
    rank = np.lexsort((at, order))
    refunds: Table = {
        "order": order[rank],
        "return": np.concatenate([line, np.full(cancelled_orders.size, -1)])[rank],
        "amount_minor": np.concatenate([amount, orders.total[cancelled_orders]])[rank],
        "reason": np.array(
            ["return"] * refunded.size + ["cancelled"] * cancelled_orders.size, dtype=object
        )[rank],
        "created_at": at[rank].astype("datetime64[s]"),
    }
    return returns, refunds, returned_line


def _pick(
    rng: np.random.Generator, options: tuple[tuple[str, float], ...], size: int
) -> np.ndarray:
    names = np.array([name for name, _ in options], dtype=object)
    weights = np.array([w for _, w in options])
    return names[rng.choice(len(names), size, p=weights / weights.sum())]


def _reviews(
    rng: np.random.Generator,
    people: People,
    orders: Orders,
    catalog: Catalog,
    tl: Timeline,
    delivered: np.ndarray,
    late: np.ndarray,
    returned: np.ndarray,
) -> Table:
    lines = len(orders.line_order)
    at = delivered + DAY + rng.exponential(6 * DAY, lines).astype(np.int64)
    p = REVIEW_RATE * np.where(returned, 2.0, 1.0)
    rows = np.flatnonzero((delivered >= 0) & (rng.random(lines) < p) & (at < tl.end))
    product = orders.line_product[rows]
    tier = catalog.fulfiller_tier[catalog.product_fulfiller[product]]
    score = (
        4.2
        + 1.1 * catalog.product_quality[product]
        + RATING_SHIFT[tier]
        - 0.8 * late[rows]
        - 1.6 * returned[rows]
        + rng.normal(0.0, 0.8, rows.size)
    )
    rating = np.clip(np.round(score), 1, 5).astype(np.int64)
    variant = rng.integers(0, 3, rows.size)
    titles = np.array([[t for t, _ in ref.REVIEW_TEXTS[s]] for s in range(1, 6)], dtype=object)
    bodies = np.array([[b for _, b in ref.REVIEW_TEXTS[s]] for s in range(1, 6)], dtype=object)
    order = orders.line_order[rows]
    return {
        "line": rows,
        "customer_id": people.ids[orders.customer[order]],
        "product_id": catalog.product_ids[product],
        "order_id": order,
        "rating": rating,
        "title": titles[rating - 1, variant],
        "body": bodies[rating - 1, variant],
        "created_at": at[rows].astype("datetime64[s]"),
    }


def _tickets(
    rng: np.random.Generator,
    people: People,
    orders: Orders,
    tl: Timeline,
    ship: dict[str, np.ndarray],
    returns: dict[str, np.ndarray],
    failed: np.ndarray,
    cancelled: np.ndarray,
    cancelled_at: np.ndarray,
) -> Table:
    """More contacts where things went wrong: lost or late parcels, returns, payments."""
    m = len(orders.customer)
    never = np.iinfo(np.int64).max
    lost_at = np.full(m, never)
    np.minimum.at(lost_at, ship["order"][ship["lost"]], ship["promised"][ship["lost"]] + 3 * DAY)
    late = ship["late"] & ~ship["lost"]
    late_at = np.full(m, never)
    np.minimum.at(late_at, ship["order"][late], ship["promised"][late] + DAY)
    return_at = np.full(m, never)
    np.minimum.at(return_at, returns["order"], returns["requested"])
    causes = (
        ("delivery", lost_at, 0.85),
        ("delivery", late_at, 0.2),
        ("return", return_at, 0.15),
        ("payment", np.where(failed, orders.placed, never), 0.2),
        ("payment", np.where(cancelled, cancelled_at, never), 0.12),
        ("product", orders.placed + 5 * DAY, 0.012),
    )
    topic = np.full(m, None, dtype=object)
    cause_at = np.full(m, never)
    for name, at, p in causes:
        hit = (topic == None) & (at < never) & (rng.random(m) < p)  # noqa: E711
        topic[hit] = name
        cause_at[hit] = at[hit]
    rows = np.flatnonzero(topic != None)  # noqa: E711
    opened = cause_at[rows] + rng.exponential(10 * HOUR, rows.size).astype(np.int64)
    keep = opened < tl.end
    rows, opened = rows[keep], opened[keep]

    n = len(people.ids)
    account = np.flatnonzero(rng.random(n) < 0.015)
    account_at = people.signup[account] + (
        rng.random(account.size) * (tl.end - people.signup[account])
    ).astype(np.int64)
    customer = np.concatenate([people.ids[orders.customer[rows]], people.ids[account]])
    order = np.concatenate([rows, np.full(account.size, -1)])
    topics = np.concatenate([topic[rows], np.full(account.size, "account", dtype=object)])
    opened = np.concatenate([opened, account_at])
    solved = opened + rng.gamma(2.0, 8 * HOUR, len(opened)).astype(np.int64)
    status = np.where(solved < tl.end, "solved", np.where(opened > tl.end - DAY, "open", "pending"))
    rank = np.lexsort((order, opened))
    return {
        "order": order[rank],
        "customer_id": customer[rank],
        "channel": TICKET_CHANNELS[rng.choice(4, len(opened), p=TICKET_CHANNEL_P)][rank],
        "topic": topics[rank],
        "status": status.astype(object)[rank],
        "opened_at": opened[rank].astype("datetime64[s]"),
        "solved_at": _dt(np.where(solved < tl.end, solved, -1))[rank],
    }
