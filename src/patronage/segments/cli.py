"""`patronage segments …`: list, show, create, preview, refresh, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from patronage.console import console, friendly_errors
from patronage.db import transaction
from patronage.errors import ValidationFailed
from patronage.segments import service
from patronage.segments.schemas import SegmentCreate

segments = typer.Typer(
    help="Segments: list, build, preview, refresh, export.", no_args_is_help=True
)

RuleOption = Annotated[
    str,
    typer.Argument(help="the rule as JSON, @FILE to read it from a file, or - for stdin"),
]


def _rule(text: str) -> Any:
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        raise ValidationFailed([{"path": "$", "problem": "the rule is not JSON"}]) from None


@segments.command("list")
@friendly_errors
def list_() -> None:
    """Every segment with its size (creates the built-in families the first time)."""
    with transaction() as session:
        rows = service.overview(session)
    table = Table("id", "segment", "family", "members", "evaluated (UTC)", title="Segments")
    for s in rows:
        table.add_row(
            str(s.id),
            s.name,
            s.family or "custom",
            f"{s.size:,}" if s.evaluated_at else "–",
            s.evaluated_at.strftime("%Y-%m-%d %H:%M") if s.evaluated_at else "never",
        )
    console.print(table)


@segments.command("show")
@friendly_errors
def show(segment_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1)]) -> None:
    """A segment's rule (in words and as JSON), size and recent moves."""
    with transaction() as session:
        s = service.get_segment(session, segment_id)
        history = service.history(session, segment_id, 30)
    console.print(f"[bold]{s.name}[/] (#{s.id}, {s.family or 'custom'}): {s.size:,} members")
    console.print(f"customers where {s.text}", markup=False, highlight=False)
    console.print(json.dumps(s.rule, indent=2), markup=False, highlight=False)
    for d in history.days:
        console.print(f"{d.day}: +{d.entered:,} −{d.left:,}")


@segments.command("create")
@friendly_errors
def create(
    name: Annotated[str, typer.Argument(help="a unique name")],
    rule: RuleOption,
    description: Annotated[str, typer.Option(help="what the segment is for")] = "",
) -> None:
    """Create a segment and evaluate it."""
    with transaction() as session:
        s = service.create_segment(
            session, SegmentCreate(name=name, description=description, rule=_rule(rule)), "cli"
        )
    console.print(f"created segment {s.id} ({s.name}): {s.size:,} members")


@segments.command("preview")
@friendly_errors
def preview(rule: RuleOption) -> None:
    """Count and sample the members of a rule without saving it."""
    with transaction() as session:
        p = service.preview(session, _rule(rule))
    console.print(f"{p.count:,} of {p.customers:,} customers ({p.duration_ms} ms)")
    console.print(f"customers where {p.text}", markup=False, highlight=False)
    if p.sample:
        console.print("e.g. " + ", ".join(f"#{c}" for c in p.sample))
    for w in p.warnings:
        console.print(f"[yellow]warning:[/] {w}")


@segments.command("refresh")
@friendly_errors
def refresh(
    segment_id: Annotated[
        int | None, typer.Argument(min=1, max=2**63 - 1, help="one segment (default: all)")
    ] = None,
    builtins: Annotated[
        bool, typer.Option("--builtins", help="first create the missing built-in segments")
    ] = False,
) -> None:
    """Rebuild memberships now (only entries and exits are written)."""
    with transaction() as session, console.status("evaluating…") as status:
        if builtins:
            console.print(f"created {service.ensure_builtins(session)} built-in segments")
        results = service.evaluate(
            session, segment_id, dependents=True, progress=lambda s: status.update(f"{s}…")
        )
    table = Table("segment", "members", "entered", "left", "ms", title="Evaluated")
    for e in results:
        table.add_row(e.name, f"{e.size:,}", f"{e.entered:,}", f"{e.left:,}", str(e.duration_ms))
    console.print(table)


@segments.command("export")
@friendly_errors
def export(
    segment_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1)],
    with_pii: Annotated[
        bool, typer.Option("--with-pii", help="add email and names (audited)")
    ] = False,
    output: Annotated[Path | None, typer.Option("-o", help="file (default: stdout)")] = None,
) -> None:
    """Current members as CSV, with only the columns the user's role may see (audited)."""
    with transaction() as session:
        text, rows = service.export_csv(session, segment_id, with_pii=with_pii, actor="cli")
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {rows:,} members to {output}")
