"""Products from bulk imports, upserted by external id in chunks.

A products import (`overwrite=True`) makes each product say what the file says; an orders
import only creates the products it has not seen (the catalogue stays the source of truth).
Rows that already hold the same values are not written, so a re-run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patronage.catalog.ingest import ensure_categories
from patronage.catalog.models import Product
from patronage.kit.clock import utcnow
from patronage.kit.lookup import rows_by_keys

CHUNK = 2000
# the fields an import may set; None in a row means "not given", the stored value stays
FIELDS = ("name", "price_minor", "currency", "stock", "is_active", "category")


@dataclass
class ProductUpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Product)


def upsert_products(
    session: Session, rows: list[dict[str, Any]], *, overwrite: bool
) -> tuple[dict[str, int], ProductUpsertCounts]:
    """Rows are {"external_id", and any of FIELDS}; returns external id -> product id."""
    counts = ProductUpsertCounts()
    by_id = {r["external_id"]: r for r in rows}
    wanted = list(by_id)
    categories = ensure_categories(session, [r["category"] for r in rows if r.get("category")])
    columns = (
        Product.external_id,
        Product.id,
        Product.name,
        Product.price_minor,
        Product.currency,
        Product.stock,
        Product.is_active,
        Product.category_id,
    )
    stored: dict[str, dict[str, Any]] = {}
    for r in rows_by_keys(session, select(*columns), Product.external_id, wanted):
        stored[str(r[0])] = dict(zip([c.key for c in columns], r, strict=True))
    now = utcnow()
    fresh: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for ext, row in by_id.items():
        values = {k: row.get(k) for k in FIELDS if k != "category"}
        category = row.get("category")
        values["category_id"] = categories.get(category[:128]) if category else None
        current = stored.get(ext)
        if current is None:
            fresh.append(
                {
                    "external_id": ext,
                    "name": values["name"] or ext,
                    "price_minor": values["price_minor"] or 0,
                    "currency": values["currency"] or "EUR",
                    "stock": values["stock"] or 0,
                    "is_active": True if values["is_active"] is None else values["is_active"],
                    "category_id": values["category_id"],
                    "attributes": {},
                    "created_at": now,
                }
            )
        elif overwrite:
            diff = {k: v for k, v in values.items() if v is not None and current[k] != v}
            if diff:
                changed.append({"_id": current["id"], **diff})
    counts.inserted, counts.updated = len(fresh), len(changed)
    counts.unchanged = len(by_id) - len(fresh) - len(changed)
    statement = _insert(session).on_conflict_do_nothing(index_elements=["external_id"])
    for start in range(0, len(fresh), CHUNK):
        session.execute(statement, fresh[start : start + CHUNK])
    table = Product.__table__
    for row in changed:  # few: only products whose values differ
        session.connection().execute(
            update(table)  # type: ignore[arg-type]
            .where(table.c.id == row["_id"])
            .values({k: v for k, v in row.items() if k != "_id"})
        )
    ids = {ext: int(v["id"]) for ext, v in stored.items()}
    missing = [e for e in wanted if e not in ids]
    ids_query = select(Product.external_id, Product.id)
    for ext, pid in rows_by_keys(session, ids_query, Product.external_id, missing):
        ids[str(ext)] = int(pid)
    return ids, counts
