"""The tracking API (Segment HTTP tracking spec): POST /v1/{identify,track,page,…,batch}.

Authenticated by a source's write key (HTTP Basic user, empty password, or `writeKey` in the
body). The body is read raw (gzip allowed) and validated message by message in the service.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.collect import service
from patronage.collect.schemas import Accepted, IngestionStatus, Ok, request_schema
from patronage.db import SessionDep

# the processor of landed messages starts with the server (a backlog left by a crash is
# drained even before the next request)
router = APIRouter(prefix="/v1", tags=["tracking"], on_startup=[service.start_processing])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed body, or every message refused (reasons in `detail`)"},
    401: {"description": "missing, unknown or revoked write key"},
    413: {"description": "over 32 KB for a message, 500 KB for a batch (after gunzip)"},
}


async def _raw_body(request: Request) -> bytes:
    return await request.body()


def _route(endpoint: str) -> None:
    # a sync endpoint (thread pool): a transaction waiting for another one's lock must never
    # block the event loop that would let the other one commit
    def receive(
        request: Request, raw: bytes = Depends(_raw_body), session: Session = SessionDep
    ) -> Accepted:
        return service.receive(
            session,
            endpoint,
            raw,
            content_encoding=request.headers.get("content-encoding"),
            authorization=request.headers.get("authorization"),
        )

    receive.__name__ = f"tracking_{endpoint}"
    router.add_api_route(
        f"/{endpoint}",
        receive,
        methods=["POST"],
        response_model=Accepted if endpoint == "batch" else Ok,
        summary=f"Segment-compatible {endpoint}",
        responses=_ERRORS,
        openapi_extra={"requestBody": request_schema(endpoint)},
    )


for _endpoint in service.ENDPOINTS:
    _route(_endpoint)


status_router = APIRouter(prefix="/api/collect", tags=["collect"])


@status_router.get("/ingestion", response_model=IngestionStatus)
def ingestion_status(
    principal: Principal = require(Permission.SOURCES_MANAGE),
    session: Session = SessionDep,
) -> IngestionStatus:
    """Events stored, messages acknowledged and waiting for the processor, messages set aside."""
    return service.ingestion_status(session)
