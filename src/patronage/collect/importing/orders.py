"""Order lines (one row per line, the shape of every shop export) into orders.

Rows of one invoice become one order. An invoice whose number starts with the mapping's
`cancel_prefix` is a cancellation (status `cancelled`); an unmarked invoice whose lines all
have negative quantities is a return (status `returned`). Quantities and amounts of both
are stored as positive numbers; a negative line inside an ordinary invoice is refused.
Lines of one invoice for the same product are merged (quantities and amounts summed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from patronage.catalog import service as catalog_service
from patronage.collect.importing.checks import Checker
from patronage.collect.importing.countries import country_code
from patronage.customers import service as customers_service
from patronage.orders import service as orders_service

WRITE_CHUNK = 25_000  # orders per write step (progress, memory)


@dataclass
class OrderPlan:
    order_ids: list[str]
    order_customer: list[str]
    order_status: list[str]
    order_currency: list[str]
    order_total: np.ndarray
    order_placed: np.ndarray
    line_order: np.ndarray
    line_product: np.ndarray  # index into product_ids
    line_quantity: np.ndarray
    line_unit: np.ndarray
    product_ids: list[str]
    product_names: list[str | None]
    product_prices: list[int]
    customers: dict[str, str | None]  # user_id -> country
    rows: int

    @property
    def lines(self) -> int:
        return len(self.line_order)


def _codes(array: pa.Array) -> tuple[np.ndarray, list[Any]]:
    encoded = pc.dictionary_encode(array)
    return (
        np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64),
        encoded.dictionary.to_pylist(),
    )


def check(c: Checker) -> OrderPlan:
    m = c.mapping
    order_id = c.text("order_id", 128, required=True)
    product_id = c.text("product_id", 128, required=True)
    name = c.text("product_name", 512)
    customer = c.text("customer_id", 255)
    currency = c.text("currency", 3)
    country = c.text("country", 64)
    quantity = c.integer("quantity", required=True)
    placed = c.moment("placed_at", required=True)
    assert order_id is not None and product_id is not None
    assert quantity is not None and placed is not None
    qty = quantity[0]
    c.reject(quantity[1] & (qty == 0), "quantity", "zero quantity")
    unit = c.money("unit_price", required="line_total" not in m.fields)
    if unit is not None:
        line_total = qty * unit[0]
    else:
        given = c.money("line_total", required=True, negative=True)
        assert given is not None
        line_total = given[0]
        c.reject((line_total < 0) & (qty > 0), "line_total", "negative for a positive quantity")
    if customer is None or not m.guest_customers:
        missing = np.ones(c.rows, bool) if customer is None else _null(customer)
        c.reject(missing, "customer_id", "required, but empty (guest_customers is off)")
    c.duplicates(c.whole_row_key(), "order_id", "duplicates an earlier row")

    # invoice-level rules, on the rows still good
    ids = order_id.to_pylist()
    codes, _ = _codes(pc.fill_null(order_id, ""))
    good = ~c.bad
    orders_n = int(codes.max()) + 1 if len(codes) else 0
    first = np.full(orders_n, -1, dtype=np.int64)
    order_of_good = codes[good]
    good_index = np.flatnonzero(good)
    first[order_of_good[::-1]] = good_index[::-1]
    if customer is not None:
        cust_codes, _ = _codes(pc.fill_null(customer, ""))
        other = good & (cust_codes != cust_codes[first[codes]])
        c.reject(other, "customer_id", "differs from the invoice's first line")
    prefix = m.cancel_prefix
    marked_order = np.array(
        [bool(prefix) and str(i).startswith(prefix or "") for i in _dictionary(order_id)],
        dtype=bool,
    )
    good = ~c.bad
    positive = np.bincount(codes[good], weights=(qty[good] > 0), minlength=orders_n) > 0
    mixed = good & (qty < 0) & ~marked_order[codes] & positive[codes]
    c.reject(mixed, "quantity", "negative in an invoice that is not a return or cancellation")
    del ids
    return _plan(
        c, order_id, product_id, name, customer, currency, country, qty, line_total, placed
    )


def _dictionary(array: pa.Array) -> list[Any]:
    return pc.dictionary_encode(pc.fill_null(array, "")).dictionary.to_pylist()  # type: ignore[no-any-return]


def _null(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype=bool)


def _plan(
    c: Checker,
    order_id: pa.Array,
    product_id: pa.Array,
    name: pa.Array | None,
    customer: pa.Array | None,
    currency: pa.Array | None,
    country: pa.Array | None,
    qty: np.ndarray,
    line_total: np.ndarray,
    placed: np.ndarray,
) -> OrderPlan:
    m = c.mapping
    keep = np.flatnonzero(~c.bad)
    take = pa.array(keep)
    order_id = order_id.take(take)
    product_id = product_id.take(take)
    qty, line_total, placed = qty[keep], line_total[keep], placed[keep]
    codes, order_ids = _codes(order_id)
    n = len(order_ids)
    first = np.full(n, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    prefix = m.cancel_prefix
    marked = np.array([bool(prefix) and o.startswith(prefix or "") for o in order_ids], bool)
    negative = np.bincount(codes, weights=(qty < 0), minlength=n) > 0
    status = np.where(marked, "cancelled", np.where(negative, "returned", "placed")).tolist()
    moment = placed.astype(np.int64)
    earliest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, codes, moment)
    # lines: one per (order, product)
    product_codes, product_ids = _codes(product_id)
    key = codes * max(len(product_ids), 1) + product_codes
    _, line_first, inverse = np.unique(key, return_index=True, return_inverse=True)
    amount = np.abs(line_total)
    line_qty = np.bincount(inverse, weights=np.abs(qty)).astype(np.int64)
    line_amount = np.bincount(inverse, weights=amount).astype(np.int64)
    line_unit = np.rint(line_amount / np.maximum(line_qty, 1)).astype(np.int64)
    totals = np.bincount(codes[line_first], weights=line_amount, minlength=n).astype(np.int64)
    # products: first name and unit price seen
    p_first = np.full(len(product_ids), -1, dtype=np.int64)
    p_first[product_codes[::-1]] = np.arange(len(product_codes))[::-1]
    names = name.take(take).take(pa.array(p_first)).to_pylist() if name is not None else []
    unit_rows = np.rint(amount / np.maximum(np.abs(qty), 1)).astype(np.int64)
    # people: the invoice's customer, or one guest per invoice
    if customer is not None:
        first_customer = customer.take(take).take(pa.array(first)).to_pylist()
    else:
        first_customer = [None] * n
    order_customer = [
        cust if cust is not None else f"guest:{oid}"
        for cust, oid in zip(first_customer, order_ids, strict=True)
    ]
    countries: list[str | None] = (
        country.take(take).take(pa.array(first)).to_pylist() if country is not None else [None] * n
    )
    people: dict[str, str | None] = {}
    for person, place in zip(order_customer, countries, strict=True):
        if people.get(person) is None:
            people[person] = country_code(place)
    currencies = (
        [(v or m.currency).upper() for v in currency.take(take).take(pa.array(first)).to_pylist()]
        if currency is not None
        else [m.currency.upper()] * n
    )
    return OrderPlan(
        order_ids=order_ids,
        order_customer=order_customer,
        order_status=status,
        order_currency=currencies,
        order_total=totals,
        order_placed=earliest.astype("datetime64[us]"),
        line_order=codes[line_first],
        line_product=product_codes[line_first],
        line_quantity=line_qty,
        line_unit=line_unit,
        product_ids=product_ids,
        product_names=names or [None] * len(product_ids),
        product_prices=unit_rows[p_first].tolist(),
        customers=people,
        rows=len(keep),
    )


def write(session: Session, plan: OrderPlan, progress: Callable[[int], None]) -> dict[str, int]:
    people = [{"user_id": u, "country": c} for u, c in plan.customers.items()]
    customer_ids, people_counts = customers_service.upsert_customers(
        session, people, overwrite=False
    )
    products = [
        {"external_id": p, "name": n, "price_minor": price}
        for p, n, price in zip(
            plan.product_ids, plan.product_names, plan.product_prices, strict=True
        )
    ]
    product_ids, product_counts = catalog_service.upsert_products(
        session, products, overwrite=False
    )
    product_id = np.array([product_ids[p] for p in plan.product_ids], dtype=np.int64)
    customer_of_order = np.array([customer_ids[u] for u in plan.order_customer], dtype=np.int64)
    cancelled = np.where(
        np.array(plan.order_status) == "cancelled",
        plan.order_placed,
        np.datetime64("NaT", "us"),
    )
    counts = {"orders_inserted": 0, "orders_updated": 0, "orders_unchanged": 0, "lines_written": 0}
    n = len(plan.order_ids)
    order_lines = np.argsort(plan.line_order, kind="stable")
    bounds = np.searchsorted(
        plan.line_order[order_lines], np.arange(0, n + WRITE_CHUNK, WRITE_CHUNK)
    )
    done_rows = 0
    for step, start in enumerate(range(0, n, WRITE_CHUNK)):
        stop = min(start + WRITE_CHUNK, n)
        lines = order_lines[bounds[step] : bounds[step + 1]]
        result = orders_service.upsert_orders(
            session,
            orders_service.OrderColumns(
                external_id=plan.order_ids[start:stop],
                customer_id=customer_of_order[start:stop],
                status=plan.order_status[start:stop],
                currency=plan.order_currency[start:stop],
                subtotal_minor=plan.order_total[start:stop],
                total_minor=plan.order_total[start:stop],
                placed_at=plan.order_placed[start:stop],
                cancelled_at=cancelled[start:stop],
            ),
            orders_service.ItemColumns(
                order=plan.line_order[lines] - start,
                product_id=product_id[plan.line_product[lines]],
                quantity=plan.line_quantity[lines],
                unit_price_minor=plan.line_unit[lines],
            ),
        )
        counts["orders_inserted"] += result.inserted
        counts["orders_updated"] += result.updated
        counts["orders_unchanged"] += result.unchanged
        counts["lines_written"] += result.lines_written
        done_rows += int(plan.rows * (stop - start) / max(n, 1))
        progress(done_rows)
    counts["customers_created"] = people_counts.inserted
    counts["products_created"] = product_counts.inserted
    return counts
