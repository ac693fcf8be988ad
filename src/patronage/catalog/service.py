"""Public functions of the catalog capability."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from patronage.catalog import repository as repo


def product_names(session: Session, product_ids: Iterable[int]) -> dict[int, str]:
    return repo.names(session, product_ids)


# -- collect: products seen in tracked events (owned by the collect helper) ----------------
# isort: split
from patronage.catalog.ingest import ProductSeen as ProductSeen  # noqa: E402
from patronage.catalog.ingest import ensure_products as ensure_products  # noqa: E402

# -- end collect ---------------------------------------------------------------------------


# -- bulk write paths, used by the demo and imports (owned by the demo helper) --------------
# isort: split
from patronage.catalog.bulk import insert_categories as insert_categories  # noqa: E402
from patronage.catalog.bulk import insert_products as insert_products  # noqa: E402
from patronage.catalog.bulk import prepare_batch as prepare_batch  # noqa: E402

# -- end bulk write paths ------------------------------------------------------------------


# -- bulk import: products upserted by external id (owned by the import helper) -------------
# isort: split
from patronage.catalog.upserts import ProductUpsertCounts as ProductUpsertCounts  # noqa: E402
from patronage.catalog.upserts import upsert_products as upsert_products  # noqa: E402

# -- end bulk import -----------------------------------------------------------------------
