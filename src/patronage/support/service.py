"""Public functions of the support capability."""

from __future__ import annotations

# -- bulk write paths, used by the demo and imports (owned by the demo helper) --------------
# isort: split
from patronage.support.bulk import insert_tickets as insert_tickets
from patronage.support.bulk import prepare_batch as prepare_batch
# -- end bulk write paths ------------------------------------------------------------------
