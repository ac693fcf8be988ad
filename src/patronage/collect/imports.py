"""Bulk imports as the CLI, the REST upload and the console run them.

`import_file` is the one code path behind `patronage import`, the benchmark, and every
recorded run: read, validate, write in ONE transaction (all-or-nothing unless
`skip_invalid`), then write the rejects report. Recorded runs (`import_runs`) keep the
upload in the data directory (`imports/<id>.upload`) and their rejects next to it
(`imports/<id>-rejects.csv`), so a preview can be confirmed later and the report downloaded.

Progress of a recorded run goes to its row in a transaction of its own, at most once a
second. On SQLite the import's transaction holds the one write lock while it writes, so
there the write phase reports to `imports/<id>.progress` beside the row instead, and
reading the run merges it in.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from patronage import db
from patronage.collect.importing import KINDS, ImportResult, Mapping, load_mapping, run_path
from patronage.collect.importing.readers import Rejection
from patronage.collect.models import ImportRun
from patronage.collect.schemas import ImportPage, ImportRead, ImportReject
from patronage.config import get_settings
from patronage.errors import NotFound, TooLarge, ValidationFailed
from patronage.kit.clock import utcnow
from patronage.kit.pagination import PageRequest

log = logging.getLogger("patronage.collect.imports")

UPLOAD_LIMIT = 200 * 1024 * 1024  # bytes; the BodyLimit of /api/imports and the page says so
INLINE_BYTES = 8 * 1024 * 1024  # larger uploads run as a background job
FIRST_REJECTS = 20  # how many rejects an answer or the preview lists
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

ORDER_LINES = """\
# One row per order line (the "Online Retail" export shape):
# InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
kind = "orders"
format = "csv"
date_formats = ["%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
currency = "GBP"
cancel_prefix = "C"
guest_customers = true

[fields]
order_id = "InvoiceNo"
product_id = "StockCode"
product_name = "Description"
quantity = "Quantity"
placed_at = "InvoiceDate"
unit_price = "UnitPrice"
customer_id = "CustomerID"
country = "Country"
"""

CDNOW = """\
# CDNOW master file: whitespace separated, customer_id date number_of_cds dollar_value
kind = "orders"
delimiter = "whitespace"
date_formats = ["%Y%m%d"]
currency = "USD"

[fields]
customer_id = "customer_id"
placed_at = "date"
quantity = "number_of_cds"
line_total = "dollar_value"

[constants]
product_id = "CD"
product_name = "CD"

[templates]
order_id = "cdnow-{customer_id}-{date}-{row}"
"""


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str
    label: str
    mapping: str  # empty: columns named like the fields


PRESETS = {
    p.name: p
    for p in (
        Preset(
            "order-lines", "orders", "Order lines (InvoiceNo, StockCode, … CDNOW-like)", ORDER_LINES
        ),
        Preset("cdnow", "orders", "CDNOW master file (whitespace separated)", CDNOW),
        Preset("customers", "customers", "Customers, columns named like the fields", ""),
        Preset("products", "products", "Products, columns named like the fields", ""),
        Preset("orders", "orders", "Order lines, columns named like the fields", ""),
        Preset("events", "events", "Events, columns named like the fields", ""),
    )
}


def resolve_mapping(kind: str, preset: str | None = None, text: str | None = None) -> Mapping:
    """The mapping of an upload: a preset, or TOML / JSON text, or the implicit one."""
    if kind not in KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}")
    if preset:
        if preset not in PRESETS:
            raise ValidationFailed(f"unknown preset; one of {', '.join(PRESETS)}")
        chosen = PRESETS[preset]
        if chosen.kind != kind:
            raise ValidationFailed(f"preset {preset} imports {chosen.kind}, not {kind}")
        text = chosen.mapping
    return load_mapping(kind, text=text or None)


# -- the one code path ----------------------------------------------------------------------


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def write_rejects(rejected: list[Rejection], path: Path) -> None:
    """row, column, reason; sorted by row; formula-like cells escaped; written then renamed."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", "column", "reason"])
        for r in sorted(rejected, key=lambda r: (r.row, r.column)):
            writer.writerow([r.row, safe_cell(r.column), safe_cell(r.reason)])
    partial.replace(path)


def import_file(
    path: Path,
    mapping: Mapping,
    *,
    name: str | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    rejects: Path | None = None,
) -> ImportResult:
    """Import one file in one transaction; nothing is written when it fails half-way."""
    from patronage.migrations import import_models

    import_models()  # every mapper configured (a CLI process has loaded only a few)
    options: dict[str, Any] = {"dry_run": dry_run, "skip_invalid": skip_invalid}
    if progress is not None:
        options["progress"] = progress
    with db.transaction() as session:
        result = _run(session, path, name or path.name, mapping, options)
    if rejects is not None and result.rejected:
        write_rejects(result.rejected, rejects)
    return result


def _run(
    session: Session, path: Path, name: str, mapping: Mapping, options: dict[str, Any]
) -> ImportResult:
    if name == path.name:
        return run_path(session, path, mapping, **options)
    from patronage.collect.importing import run_import

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationFailed(f"cannot read {name}: {type(exc).__name__}") from None
    return run_import(session, data, name, mapping, **options)


# -- recorded runs -------------------------------------------------------------------------


def imports_dir() -> Path:
    folder = get_settings().data_dir / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def upload_path(run_id: int) -> Path:
    return imports_dir() / f"{run_id}.upload"


def rejects_path(run_id: int) -> Path:
    return imports_dir() / f"{run_id}-rejects.csv"


def _clean_name(name: str | None) -> str:
    base = Path(name or "upload").name.replace("\x00", "")[:255]
    return base or "upload"


def record_upload(
    stream: IO[bytes],
    file_name: str | None,
    kind: str,
    who: str,
    *,
    preset: str | None = None,
    mapping: str | None = None,
    skip_invalid: bool = False,
) -> int:
    """Keep an upload and record it (status uploaded); the mapping is checked first."""
    resolve_mapping(kind, preset, mapping)
    with db.transaction() as session:
        run = ImportRun(
            kind=kind,
            file_name=_clean_name(file_name),
            file_bytes=0,
            preset=preset or None,
            mapping=None if preset else (mapping or None),
            status="uploaded",
            skip_invalid=skip_invalid,
            progress_done=0,
            progress_total=0,
            rows=0,
            valid=0,
            rejected_rows=0,
            counts={},
            created_by=who[:64],
            started_at=utcnow(),
        )
        session.add(run)
        session.flush()
        run_id = run.id
    target = upload_path(run_id)
    for stale in (rejects_path(run_id), progress_path(run_id)):  # a database started afresh
        stale.unlink(missing_ok=True)
    size = 0
    try:
        with target.open("wb") as out:
            while chunk := stream.read(1024 * 1024):
                size += len(chunk)
                if size > UPLOAD_LIMIT:
                    raise TooLarge(f"the file is over {UPLOAD_LIMIT // (1024 * 1024)} MB")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        with db.transaction() as session:
            session.execute(
                update(ImportRun)
                .where(ImportRun.id == run_id)
                .values(status="failed", detail="upload refused", finished_at=utcnow())
            )
        raise
    with db.transaction() as session:
        session.execute(update(ImportRun).where(ImportRun.id == run_id).values(file_bytes=size))
    return run_id


def _set(run_id: int, **values: Any) -> None:
    with db.transaction() as session:
        session.execute(update(ImportRun).where(ImportRun.id == run_id).values(**values))


class _Progress:
    """Writes a run's progress to its row, at most once a second (see the module doc)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.last = 0.0
        self.phase = ""
        self.sqlite = db.get_engine().dialect.name == "sqlite"

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        changed = phase != self.phase
        if not changed and now - self.last < 1.0 and done != total:
            return
        self.phase, self.last = phase, now
        if self.sqlite and phase == "write" and not (changed and done == 0):
            # the import's transaction holds the write lock (see the module doc)
            _write_json(progress_path(self.run_id), {"done": done, "total": total})
            return
        _set(self.run_id, phase=phase, progress_done=done, progress_total=total)


def progress_path(run_id: int) -> Path:
    return imports_dir() / f"{run_id}.progress"


def _write_json(path: Path, value: dict[str, int]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value), encoding="utf-8")
    partial.replace(path)


def _side_progress(run_id: int) -> tuple[int, int] | None:
    try:
        value = json.loads(progress_path(run_id).read_text(encoding="utf-8"))
        return int(value["done"]), int(value["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process(run_id: int, action: str) -> None:
    """Validate (`action` = "validate": a dry run) or import a recorded upload, recording
    the outcome. Called inline for small files and by the `collect.import_run` job."""
    with db.transaction() as session:
        run = session.get(ImportRun, run_id)
        if run is None:
            raise NotFound(f"no import {run_id}")
        kind, preset, text, name = run.kind, run.preset, run.mapping, run.file_name
        skip_invalid = run.skip_invalid
    dry_run = action == "validate"
    _set(
        run_id,
        status="validating" if dry_run else "running",
        phase="validate",
        progress_done=0,
        progress_total=0,
        detail=None,
        finished_at=None,
    )
    try:
        mapping = resolve_mapping(kind, preset, text)
        result = import_file(
            upload_path(run_id),
            mapping,
            name=name,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            progress=_Progress(run_id),
        )
    except ValidationFailed as exc:
        _set(
            run_id,
            status="invalid" if dry_run else "failed",
            phase=None,
            detail=str(exc.detail)[:500],
            finished_at=utcnow(),
        )
        return
    except Exception as exc:
        log.exception("import %d failed", run_id)
        _set(
            run_id,
            status="failed",
            phase=None,
            detail=f"unexpected error ({type(exc).__name__}); nothing was written",
            finished_at=utcnow(),
        )
        raise
    progress_path(run_id).unlink(missing_ok=True)
    target = rejects_path(run_id)
    if result.rejected:
        write_rejects(result.rejected, target)
    else:
        target.unlink(missing_ok=True)
    if dry_run:
        status = "validated" if not result.rejected or skip_invalid else "invalid"
    else:
        status = "aborted" if result.aborted else "done"
    _set(
        run_id,
        status=status,
        phase=None,
        rows=result.rows,
        valid=result.valid,
        rejected_rows=result.rejected_rows,
        counts=result.counts,
        progress_done=result.rows,
        progress_total=result.rows,
        finished_at=utcnow(),
    )


def start(run_id: int, action: str, *, skip_invalid: bool | None = None) -> bool:
    """Validate or import now (small files) or queue a job (large ones): True when queued."""
    if action not in ("validate", "import"):
        raise ValidationFailed("action must be validate or import")
    with db.transaction() as session:
        run = session.get(ImportRun, run_id)
        if run is None:
            raise NotFound(f"no import {run_id}")
        if run.status in ("queued", "validating", "running"):
            raise ValidationFailed(f"import {run_id} is {run.status} already")
        if run.status in ("done", "failed") and action == "import":
            raise ValidationFailed(f"import {run_id} is {run.status}; upload the file again")
        if not upload_path(run_id).exists():
            raise ValidationFailed(f"the file of import {run_id} is gone; upload it again")
        if skip_invalid is not None:
            run.skip_invalid = skip_invalid
        size = run.file_bytes
        if size > INLINE_BYTES:
            run.status = "queued"
    if size > INLINE_BYTES:
        from patronage.collect import tasks  # the job module imports this one

        tasks.import_run(run_id, action)
        return True
    process(run_id, action)
    return False


def get_run(session: Session, run_id: int) -> ImportRun:
    run = session.get(ImportRun, run_id)
    if run is None:
        raise NotFound(f"no import {run_id}")
    return run


def list_runs(session: Session, limit: int = 50, offset: int = 0) -> tuple[list[ImportRun], int]:
    total = int(session.scalar(select(func.count()).select_from(ImportRun)) or 0)
    runs = session.scalars(
        select(ImportRun).order_by(ImportRun.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(runs), total


def first_rejects(run_id: int, limit: int = FIRST_REJECTS) -> list[dict[str, Any]]:
    path = rejects_path(run_id)
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            out.append({"row": int(row["row"]), "column": row["column"], "reason": row["reason"]})
            if len(out) >= limit:
                break
    return out


def read_run(session: Session, run_id: int, *, rejects: bool = True) -> ImportRead:
    run = get_run(session, run_id)
    result = ImportRead.model_validate(run)
    if run.status == "running" and run.phase == "write":
        side = _side_progress(run_id)  # SQLite: the write phase reports beside the row
        if side is not None:
            result.progress_done, result.progress_total = side
    if rejects and run.rejected_rows:
        result.rejects = [ImportReject(**r) for r in first_rejects(run_id)]
    return result


def page_runs(session: Session, request: PageRequest) -> ImportPage:
    runs, total = list_runs(session, request.size, request.offset)
    items = [ImportRead.model_validate(r) for r in runs]
    pages = max(1, -(-total // request.size))
    return ImportPage(items=items, total=total, page=request.page, size=request.size, pages=pages)


def rejects_file(session: Session, run_id: int) -> Path:
    get_run(session, run_id)
    path = rejects_path(run_id)
    if not path.exists():
        raise NotFound(f"import {run_id} refused no rows")
    return path
