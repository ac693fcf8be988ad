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
from patronage.segments.schemas import PersonasRead, SegmentCreate

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


# -- personas and next category ----------------------------------------------------------------

personas = typer.Typer(help="Personas: k-means clusters described in words.", no_args_is_help=True)
segments.add_typer(personas, name="personas")
next_category = typer.Typer(
    help="The categories customers are likely to branch into next.", no_args_is_help=True
)
segments.add_typer(next_category, name="next-category")


def _print_personas(result: PersonasRead) -> None:
    if result.computed_at is None:
        console.print(result.message or "no personas yet")
        return
    scores = ", ".join(f"k={s.k}: {s.silhouette:.3f}" for s in result.silhouettes)
    console.print(
        f"{len(result.personas)} personas of {result.customers:,} customers "
        f"(k={result.k} by silhouette; {scores}) computed {result.computed_at:%Y-%m-%d %H:%M} UTC"
    )
    table = Table("id", "persona", "customers", "share", "mean spend", "mean CLV", "in words")
    for p in result.personas:
        table.add_row(
            str(p.id),
            p.name,
            f"{p.size:,}",
            f"{p.share:.1%}",
            f"{p.mean_spend_minor / 100:,.2f}",
            f"{p.mean_clv_minor / 100:,.2f}" if p.mean_clv_minor is not None else "–",
            p.description,
        )
    console.print(table)


@personas.command("list")
@friendly_errors
def personas_list() -> None:
    """The personas of the latest clustering."""
    with transaction() as session:
        result = service.personas_overview(session)
    _print_personas(result)


@personas.command("refresh")
@friendly_errors
def personas_refresh(
    k_min: Annotated[int, typer.Option(min=2, max=50, help="fewest personas")] = 3,
    k_max: Annotated[int, typer.Option(min=2, max=50, help="most personas")] = 8,
) -> None:
    """Re-cluster the customers now (ids and names of matched personas are kept)."""
    with transaction() as session, console.status("clustering…") as status:
        result = service.refresh_personas(
            session, k_min=k_min, k_max=k_max, progress=lambda s: status.update(f"{s}…")
        )
    _print_personas(result)


@next_category.command("refresh")
@friendly_errors
def next_category_refresh(
    k: Annotated[int, typer.Option(min=1, max=20, help="categories per customer")] = 3,
) -> None:
    """Predict every buyer's next categories now."""
    with transaction() as session, console.status("predicting…"):
        run = service.refresh_next_categories(session, k=k)
    console.print(
        f"{run.customers:,} customers: top {run.k} of {run.categories} categories "
        f"(from {run.transitions:,} consecutive-order pairs) in {run.duration_ms:,} ms"
    )


@next_category.command("evaluate")
@friendly_errors
def next_category_evaluate(
    holdout_days: Annotated[
        int, typer.Option(min=1, max=3650, help="the last N days of orders are the holdout")
    ] = 90,
) -> None:
    """Holdout hit rate of the model against the most-popular baseline, in one run."""
    with transaction() as session, console.status("evaluating…"):
        e = service.evaluate_next_category(session, holdout_days)
    cut = f"{e.cut:%Y-%m-%d}" if e.cut else "–"
    console.print(f"{e.customers:,} customers branched into a new category after {cut}")
    table = Table("k", "hit rate", "baseline", "recall", "baseline recall", title="Next category")
    for r in e.results:
        table.add_row(
            str(r.k),
            f"{r.hit_rate:.1%}",
            f"{r.baseline_hit_rate:.1%}",
            f"{r.recall:.1%}",
            f"{r.baseline_recall:.1%}",
        )
    console.print(table)


@next_category.command("show")
@friendly_errors
def next_category_show(customer_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1)]) -> None:
    """A customer's persona and predicted next categories."""
    with transaction() as session:
        persona = service.persona_of(session, customer_id)
        cats = service.next_categories_of(session, customer_id)
    console.print(f"persona: {persona.persona.name if persona.persona else '–'}")
    if not cats.categories:
        console.print("no prediction (no orders, or no refresh yet)")
    for c in cats.categories:
        console.print(f"{c.rank}. {c.name} ({c.score:.3f})", markup=False, highlight=False)
