"""`patronage recommend …`: rebuild, evaluate, and look at the lists of a product."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from patronage.console import console, friendly_errors
from patronage.db import transaction
from patronage.kit.money import from_minor
from patronage.recommend import service

recommend = typer.Typer(help="Recommendations: build, evaluate, show.", no_args_is_help=True)


@recommend.command("build")
@friendly_errors
def build(
    engine: Annotated[
        str | None,
        typer.Option(
            help="where the similar-items table is computed: duckdb (in process), spark; "
            "default: PATRONAGE_ANALYTICS_ENGINE"
        ),
    ] = None,
) -> None:
    """Rebuild every recommendation table now and make it the one served."""
    with console.status("fitting and writing the recommendation tables…"):
        result = service.build(engine=engine)
    console.print(
        f"build {result.id} is current: {result.rows:,} rows from "
        f"{result.order_lines:,} order lines in {result.detail}"
    )


@recommend.command("evaluate")
@friendly_errors
def evaluate(
    test_days: Annotated[
        float, typer.Option(min=1, help="the last N days of orders are the test set")
    ] = 30,
) -> None:
    """Temporal-split evaluation of patronage's models and the baselines on this store."""
    with transaction() as session, console.status("evaluating…") as status:
        report = service.evaluate(
            session,
            test_days=test_days,
            progress=lambda name: status.update(f"fitting {name}…"),
        )
    console.print(report.table())
    winners = report.winners()
    console.print(
        f"best patronage model on ndcg@10: [bold]{report.best('ndcg@10')}[/]; "
        f"winner overall: {winners.get('ndcg@10', '–')}"
    )


@recommend.command("show")
@friendly_errors
def show(
    product_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1, help="internal product id")],
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Also bought, upsell and bought together for one product."""
    with transaction() as session:
        lists = service.show(session, product_id, limit=limit)
    for title, result in lists.items():
        table = Table("#", "product", "name", "price", "score", "why", title=title.capitalize())
        for rank, item in enumerate(result.items, 1):
            table.add_row(
                str(rank),
                str(item.product_id),
                item.name,
                f"{from_minor(item.price_minor):,}",
                f"{item.score:.4f}",
                item.explanation,
            )
        if not result.items:
            table.add_row("–", "", "nothing to recommend", "", "", "")
        console.print(table)
