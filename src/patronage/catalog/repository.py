"""All queries of the catalog capability."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.catalog.models import Product


def names(session: Session, product_ids: Iterable[int]) -> dict[int, str]:
    ids = list(product_ids)
    if not ids:
        return {}
    rows = session.execute(select(Product.id, Product.name).where(Product.id.in_(ids)))
    return {int(pid): str(name) for pid, name in rows}
