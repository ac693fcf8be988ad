"""Customers and products: one row per record, upserted by external id.

Personal fields (email, phone, names, street, birthday) pass through the customers
capability, which encrypts them and keeps their blind indexes; they are never logged and
rejections name their column, never their value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from patronage.catalog import service as catalog_service
from patronage.collect.importing.checks import Checker
from patronage.collect.importing.countries import country_code
from patronage.customers import service as customers_service

CHUNK = 20_000
_TRUE = {"1", "true", "yes", "y", "t", "active"}
_FALSE = {"0", "false", "no", "n", "f", "inactive"}


def _keep(c: Checker, array: pa.Array | None) -> list[Any] | None:
    if array is None:
        return None
    return array.take(pa.array(np.flatnonzero(~c.bad))).to_pylist()  # type: ignore[no-any-return]


def check_customers(c: Checker) -> list[dict[str, Any]]:
    user_id = c.text("user_id", 255, required=True)
    assert user_id is not None
    texts = {
        "first_name": c.text("first_name", 255),
        "last_name": c.text("last_name", 255),
        "street": c.text("street", 255),
        "gender": c.text("gender", 16),
        "language": c.text("language", 8),
        "region": c.text("region", 64),
        "city": c.text("city", 64),
        "email": c.email(),
        "phone": c.phone(),
    }
    country = c.text("country", 64)
    postcode = c.text("postcode", 16)
    birthday = c.moment("birthday")
    signup = c.moment("signup_at")
    if country is not None:
        codes = [country_code(v) for v in country.to_pylist()]
        unknown = np.array(
            [v is not None and k is None for v, k in zip(country.to_pylist(), codes, strict=True)]
        )
        c.reject(unknown, "country", "not a country code or known country name")
    c.duplicates(user_id, "user_id", "the same user_id again")
    keep = np.flatnonzero(~c.bad)
    columns: dict[str, list[Any]] = {"user_id": _keep(c, user_id) or []}
    for name, array in texts.items():
        values = _keep(c, array)
        if values is not None:
            columns[name] = values
    if country is not None:
        columns["country"] = [country_code(v) for v in _keep(c, country) or []]
    if postcode is not None:
        columns["postcode_prefix"] = [
            v.replace(" ", "")[:4] if v else None for v in _keep(c, postcode) or []
        ]
    if birthday is not None:
        columns["birthday"] = [
            None if np.isnat(v) else str(v.astype("datetime64[D]")) for v in birthday[keep]
        ]
    if signup is not None:
        columns["signup_at"] = [
            None if v is None else v.replace(tzinfo=UTC)
            for v in signup[keep].astype(object).tolist()
        ]
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def write_customers(
    session: Session, rows: list[dict[str, Any]], progress: Callable[[int], None]
) -> dict[str, int]:
    counts = {"customers_inserted": 0, "customers_updated": 0, "customers_unchanged": 0}
    for start in range(0, len(rows), CHUNK):
        _, result = customers_service.upsert_customers(session, rows[start : start + CHUNK])
        counts["customers_inserted"] += result.inserted
        counts["customers_updated"] += result.updated
        counts["customers_unchanged"] += result.unchanged
        progress(min(start + CHUNK, len(rows)))
    return counts


def check_products(c: Checker) -> list[dict[str, Any]]:
    product_id = c.text("product_id", 128, required=True)
    assert product_id is not None
    name = c.text("name", 512)
    category = c.text("category", 128)
    currency = c.text("currency", 3)
    price = c.money("price")
    stock = c.integer("stock")
    active = c.text("is_active", 16)
    flags: list[bool | None] = []
    if active is not None:
        lowered = pc.utf8_lower(active).to_pylist()
        flags = [None if v is None else v in _TRUE for v in lowered]
        wrong = np.array([v is not None and v not in _TRUE | _FALSE for v in lowered], bool)
        c.reject(wrong, "is_active", "not yes/no, true/false or 1/0")
    c.duplicates(product_id, "product_id", "the same product_id again")
    keep = np.flatnonzero(~c.bad)
    rows: list[dict[str, Any]] = []
    ids = _keep(c, product_id) or []
    names = _keep(c, name)
    categories = _keep(c, category)
    currencies = _keep(c, currency)
    for j, i in enumerate(keep.tolist()):
        rows.append(
            {
                "external_id": ids[j],
                "name": names[j] if names is not None else None,
                "category": categories[j] if categories is not None else None,
                "currency": currencies[j].upper() if currencies and currencies[j] else None,
                "price_minor": int(price[0][i]) if price is not None and price[1][i] else None,
                "stock": int(stock[0][i]) if stock is not None and stock[1][i] else None,
                "is_active": flags[i] if flags else None,
            }
        )
    return rows


def write_products(
    session: Session, rows: list[dict[str, Any]], progress: Callable[[int], None]
) -> dict[str, int]:
    counts = {"products_inserted": 0, "products_updated": 0, "products_unchanged": 0}
    for start in range(0, len(rows), CHUNK):
        _, result = catalog_service.upsert_products(
            session, rows[start : start + CHUNK], overwrite=True
        )
        counts["products_inserted"] += result.inserted
        counts["products_updated"] += result.updated
        counts["products_unchanged"] += result.unchanged
        progress(min(start + CHUNK, len(rows)))
    return counts
