"""The Import page: upload with a kind and a mapping, preview (dry run), confirm, follow
progress (HTMX polling), list past imports and download their rejects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from patronage.auth import service as auth_service
from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.collect import imports
from patronage.collect.importing import KINDS
from patronage.db import SessionDep
from patronage.errors import ValidationFailed
from patronage.kit.ids import RowId
from patronage.kit.pagination import PageRequest
from patronage.web.templating import render

router = APIRouter(include_in_schema=False)

ACTIVE = ("queued", "validating", "running")


def _list(
    request: Request, session: Session, error: str | None = None, status: int = 200
) -> HTMLResponse:
    context = {
        "runs": imports.page_runs(session, PageRequest(1, 50)).items,
        "kinds": KINDS,
        "presets": list(imports.PRESETS.values()),
        "limit_mb": imports.UPLOAD_LIMIT // (1024 * 1024),
        "error": error,
    }
    return render(request, "collect/imports.html", context, status)


@router.get("/collect/imports")
def imports_page(
    request: Request,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> HTMLResponse:
    return _list(request, session)


@router.post("/collect/imports")
def upload(
    request: Request,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=16)],
    preset: Annotated[str, Form(max_length=64)] = "",
    mapping: Annotated[str, Form(max_length=65_536)] = "",
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> Response:
    """Keep the file and validate it (a dry run): the preview shows what would be refused."""
    session.commit()
    try:
        run_id = imports.record_upload(
            file.file,
            file.filename,
            kind,
            principal.username,
            preset=preset or None,
            mapping=mapping or None,
        )
    except ValidationFailed as exc:
        return _list(request, session, str(exc.detail), 422)
    imports.start(run_id, "validate")
    auth_service.audit(session, principal, "import.upload", "import", str(run_id), {"kind": kind})
    return RedirectResponse(f"/collect/imports/{run_id}", status_code=303)


@router.get("/collect/imports/{import_id}")
def import_page(
    request: Request,
    import_id: RowId,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> HTMLResponse:
    run = imports.read_run(session, import_id)
    return render(request, "collect/import.html", {"run": run, "active": run.status in ACTIVE})


@router.get("/collect/imports/{import_id}/progress")
def progress(
    request: Request,
    import_id: RowId,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> HTMLResponse:
    """HTMX: the progress bar; once the run is over, the page reloads to show the outcome."""
    run = imports.read_run(session, import_id, rejects=False)
    active = run.status in ACTIVE
    response = render(request, "collect/_import_progress.html", {"run": run, "active": active})
    if not active:
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/collect/imports/{import_id}/run")
def confirm(
    import_id: RowId,
    skip_invalid: Annotated[bool, Form()] = False,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> Response:
    session.commit()
    imports.start(import_id, "import", skip_invalid=skip_invalid)
    auth_service.audit(session, principal, "import.run", "import", str(import_id))
    return RedirectResponse(f"/collect/imports/{import_id}", status_code=303)


@router.get("/collect/imports/{import_id}/rejects.csv")
def rejects(
    import_id: RowId,
    principal: Principal = require(Permission.DATA_IMPORT),
    session: Session = SessionDep,
) -> FileResponse:
    path = imports.rejects_file(session, import_id)
    return FileResponse(path, media_type="text/csv", filename=f"import-{import_id}-rejects.csv")
