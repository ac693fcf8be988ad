"""Products and categories seen in tracked events or imports: created once, by external id.

Idempotent and race-free: INSERT … ON CONFLICT DO NOTHING on the unique external ids, then
one lookup. The catalog stays the source of truth: a product that exists is not changed by
what an event says about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patronage.catalog.models import Category, Product
from patronage.kit.clock import utcnow


@dataclass(slots=True)
class ProductSeen:
    external_id: str
    name: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    category: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


_IDS = select(Product.external_id, Product.id).where(
    Product.external_id.in_(bindparam("ids", expanding=True))
)


def product_ids(session: Session, external_ids: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    wanted = sorted(set(external_ids))
    for start in range(0, len(wanted), 500):
        rows = session.connection().execute(_IDS, {"ids": wanted[start : start + 500]})
        found.update({str(ext): int(pid) for ext, pid in rows})
    return found


def ensure_categories(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Category name -> id; unknown names become top-level categories."""
    wanted = sorted({n[:128] for n in names if n})
    if not wanted:
        return {}
    rows = session.execute(
        select(Category.external_id, Category.id).where(Category.external_id.in_(wanted))
    )
    found = {str(ext): int(cid) for ext, cid in rows}
    missing = [n for n in wanted if n not in found]
    if missing:
        session.execute(
            _insert(session, Category)
            .values([{"external_id": n, "name": n[:255], "path": "/"} for n in missing])
            .on_conflict_do_nothing(index_elements=["external_id"])
        )
        created = session.execute(
            select(Category.external_id, Category.id, Category.path).where(
                Category.external_id.in_(missing)
            )
        )
        for ext, cid, path in created:
            found[str(ext)] = int(cid)
            if path == "/":
                session.execute(
                    update(Category)
                    .where(Category.id == cid, Category.path == "/")
                    .values(path=f"/{cid}/")
                    .execution_options(synchronize_session=False)
                )
    return found


def ensure_products(session: Session, seen: Iterable[ProductSeen]) -> dict[str, int]:
    """External id -> product id for every product seen; unknown ones are created."""
    first: dict[str, ProductSeen] = {}
    for item in seen:
        if item.external_id and len(item.external_id) <= 128:
            first.setdefault(item.external_id, item)
    if not first:
        return {}
    found = product_ids(session, first)
    missing = [first[ext] for ext in sorted(first) if ext not in found]
    if missing:
        categories = ensure_categories(session, [p.category for p in missing if p.category])
        now = utcnow()
        session.execute(
            _insert(session, Product)
            .values(
                [
                    {
                        "external_id": p.external_id,
                        "name": (p.name or p.external_id)[:512],
                        "category_id": categories.get(p.category[:128]) if p.category else None,
                        "price_minor": p.price_minor or 0,
                        "currency": p.currency or "EUR",
                        "stock": 0,
                        "is_active": True,
                        "attributes": p.attributes,
                        "created_at": now,
                    }
                    for p in missing
                ]
            )
            .on_conflict_do_nothing(index_elements=["external_id"])
        )
        found.update(product_ids(session, [p.external_id for p in missing]))
    return found
