"""All queries of the catalog capability."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.catalog.models import Product
from patronage.kit.lookup import rows_by_keys


def names(session: Session, product_ids: Iterable[int]) -> dict[int, str]:
    ids = list(product_ids)
    if not ids:
        return {}
    # one statement text whatever the number of ids (an array on PostgreSQL), so the server
    # prepares it once instead of planning every list length anew
    rows = rows_by_keys(session, select(Product.id, Product.name), Product.id, ids)
    return {int(pid): str(name) for pid, name in rows}
