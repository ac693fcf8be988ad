"""Row ids as they arrive in URLs: bounded to what a BIGINT column holds.

An unbounded ``int`` path parameter lets ``/customers/10230104883801316392960`` reach the
driver, which overflows (a 500) instead of answering 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**63 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="internal id")]
