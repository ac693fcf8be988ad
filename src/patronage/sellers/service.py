"""Public functions of the sellers capability."""

from __future__ import annotations

# -- bulk write paths, used by the demo and imports (owned by the demo helper) --------------
# isort: split
from patronage.sellers.bulk import insert_sellers as insert_sellers
from patronage.sellers.bulk import prepare_batch as prepare_batch
# -- end bulk write paths ------------------------------------------------------------------
