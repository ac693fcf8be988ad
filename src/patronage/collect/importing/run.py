"""One import, start to end: read, validate everything, then write (or not).

All-or-nothing by default: when any row is refused nothing is written. `skip_invalid`
writes the good rows; `dry_run` writes nothing either way. The caller owns the transaction
(one import is one transaction), so an error half-way leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from patronage.collect.importing import events, orders, simple
from patronage.collect.importing.checks import Checker
from patronage.collect.importing.mapping import Mapping, restrict
from patronage.collect.importing.readers import Rejection, read_file

# (phase, done, total): phases are "validate" and "write", counted in rows
Progress = Callable[[str, int, int], None]


@dataclass
class ImportResult:
    kind: str
    rows: int = 0
    valid: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    written: bool = False
    seconds: float = 0.0

    @property
    def aborted(self) -> bool:
        """Refused rows and not told to skip them: nothing was written."""
        return bool(self.rejected) and not self.written and not self.dry_run

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejected})

    def reasons(self, limit: int = 10) -> list[tuple[str, str, int]]:
        """(column, reason, rows) most common first; reasons quote no values."""
        counted = Counter((r.column, _base(r.reason)) for r in self.rejected)
        return [(col, why, n) for (col, why), n in counted.most_common(limit)]

    def report_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", "column", "reason"])
        for r in sorted(self.rejected, key=lambda r: (r.row, r.column)):
            writer.writerow([r.row, r.column, r.reason])
        return out.getvalue()

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "valid": self.valid,
            "rejected_rows": self.rejected_rows,
            "dry_run": self.dry_run,
            "written": self.written,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
            "reasons": [{"column": c, "reason": r, "rows": n} for c, r, n in self.reasons()],
        }


def _base(reason: str) -> str:
    return reason.split(" (first at row")[0]


def _quiet(phase: str, done: int, total: int) -> None:
    return None


def run_import(
    session: Session,
    data: bytes,
    name: str,
    mapping: Mapping,
    *,
    dry_run: bool = False,
    skip_invalid: bool = False,
    progress: Progress = _quiet,
) -> ImportResult:
    started = time.perf_counter()
    result = ImportResult(kind=mapping.kind, dry_run=dry_run)
    frame = read_file(data, name, mapping)
    restrict(mapping, list(frame.columns))
    total = frame.rows + len(frame.rejected)
    progress("validate", 0, total)
    checker = Checker(frame, mapping)
    plan: Any
    if mapping.kind == "orders":
        plan = orders.check(checker)
    elif mapping.kind == "customers":
        plan = simple.check_customers(checker)
    elif mapping.kind == "products":
        plan = simple.check_products(checker)
    else:
        plan = events.check(checker)
    result.rows = total
    result.rejected = checker.rejected
    result.valid = total - result.rejected_rows
    progress("validate", total, total)
    if dry_run or (result.rejected and not skip_invalid):
        result.seconds = time.perf_counter() - started
        return result
    progress("write", 0, result.valid)

    def advance(done: int) -> None:
        progress("write", done, result.valid)

    if mapping.kind == "orders":
        result.counts = orders.write(session, plan, advance)
    elif mapping.kind == "customers":
        result.counts = simple.write_customers(session, plan, advance)
    elif mapping.kind == "products":
        result.counts = simple.write_products(session, plan, advance)
    else:
        result.counts = events.write(session, plan, advance)
    session.flush()
    progress("write", result.valid, result.valid)
    result.written = True
    result.seconds = time.perf_counter() - started
    return result


def run_path(session: Session, path: Path, mapping: Mapping, **options: Any) -> ImportResult:
    from patronage.collect.importing.readers import read_path  # noqa: F401  (errors alike)

    try:
        data = path.read_bytes()
    except OSError as exc:
        from patronage.errors import ValidationFailed

        raise ValidationFailed(
            f"cannot read {path.name}: {exc.strerror or type(exc).__name__}"
        ) from None
    return run_import(session, data, path.name, mapping, **options)
