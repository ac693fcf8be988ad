"""REST of bulk imports: upload (multipart), confirm a preview, list, rejects report.

`POST /api/imports` takes the file as multipart form data (up to 200 MB: the app's body
limit for this path, see web/middleware.py), streams it to the data directory, and either
runs it at once (files up to 8 MB: the answer carries the outcome and the first rejects)
or queues a background job (202: poll `GET /api/imports/{id}`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy.orm import Session

from patronage.auth import service as auth_service
from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.collect import imports
from patronage.collect.importing import KINDS
from patronage.collect.schemas import ImportConfirm, ImportPage, ImportRead
from patronage.db import SessionDep
from patronage.kit.ids import RowId
from patronage.kit.pagination import MAX_PAGE_SIZE, PageRequest

router = APIRouter(prefix="/api/imports", tags=["imports"])

_OUTCOME: dict[int | str, dict[str, Any]] = {
    201: {"model": ImportRead, "description": "validated or imported now (small files)"},
    202: {"model": ImportRead, "description": "queued as a background job: poll the import"},
    413: {"description": "the file is over 200 MB"},
}


def _answer(session: Session, run_id: int, queued: bool) -> JSONResponse:
    session.expire_all()
    body = imports.read_run(session, run_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=202 if queued else 201)


@router.post("", response_model=ImportRead, status_code=201, responses=_OUTCOME)
def upload(
    file: Annotated[UploadFile, File(description="CSV, JSON Lines or Parquet")],
    kind: Annotated[str, Form(description=" | ".join(KINDS), max_length=16)],
    preset: Annotated[
        str | None, Form(description=" | ".join(imports.PRESETS), max_length=64)
    ] = None,
    mapping: Annotated[
        str | None, Form(description="mapping as TOML or JSON (docs/import.md)", max_length=65_536)
    ] = None,
    skip_invalid: Annotated[bool, Form()] = False,
    dry_run: Annotated[bool, Form(description="validate only; confirm with …/run")] = False,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> JSONResponse:
    session.commit()  # the guard's writes: the import runs in transactions of its own
    run_id = imports.record_upload(
        file.file,
        file.filename,
        kind,
        principal.username,
        preset=preset,
        mapping=mapping,
        skip_invalid=skip_invalid,
    )
    queued = imports.start(run_id, "validate" if dry_run else "import")
    auth_service.audit(session, principal, "import.upload", "import", str(run_id), {"kind": kind})
    return _answer(session, run_id, queued)


@router.post("/{import_id}/run", response_model=ImportRead, status_code=201, responses=_OUTCOME)
def confirm(
    import_id: RowId,
    body: ImportConfirm,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> JSONResponse:
    """Import a validated (dry-run) upload."""
    session.commit()
    queued = imports.start(import_id, "import", skip_invalid=body.skip_invalid)
    auth_service.audit(session, principal, "import.run", "import", str(import_id))
    return _answer(session, import_id, queued)


@router.get("", response_model=ImportPage)
def list_imports(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> ImportPage:
    return imports.page_runs(session, PageRequest(page, size))


@router.get("/{import_id}", response_model=ImportRead)
def get_import(
    import_id: RowId,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> ImportRead:
    return imports.read_run(session, import_id)


@router.get(
    "/{import_id}/rejects",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "row,column,reason"}},
)
def rejects(
    import_id: RowId,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> FileResponse:
    """Every refused row as CSV (cells that look like formulas are escaped)."""
    path = imports.rejects_file(session, import_id)
    return FileResponse(path, media_type="text/csv", filename=f"import-{import_id}-rejects.csv")
