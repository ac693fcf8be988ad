"""The `patronage` command: every capability's commands under one roof.

Sub-commands are imported only when they run: `patronage --help` or `patronage users list`
must not pay for loading NumPy, SciPy and every capability (seconds on a small machine).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer import _click  # Typer vendors click; its group API is typed against this copy
from typer.core import TyperGroup

from patronage.console import console, friendly_errors


def _typer_group(path: str) -> Callable[[], Any]:
    def load() -> Any:
        module, attribute = path.split(":")
        return typer.main.get_group(getattr(importlib.import_module(module), attribute))

    return load


def _demo() -> Any:
    from patronage.demo.cli import make_command

    single = typer.Typer()
    single.command("demo")(make_command(serve))
    return typer.main.get_command(single)


# name -> (loader, one-line help shown by `patronage --help` without importing anything)
LAZY: dict[str, tuple[Callable[[], Any], str]] = {
    "users": (_typer_group("patronage.auth.cli:users"), "Staff users and their roles."),
    "tokens": (_typer_group("patronage.auth.cli:tokens"), "API tokens for the REST API."),
    "sources": (
        _typer_group("patronage.auth.sources_cli:sources"),
        "Data sources and their tracking write keys.",
    ),
    "keys": (_typer_group("patronage.customers.cli:keys"), "Encryption keys and rotation."),
    "analytics": (
        _typer_group("patronage.analytics.cli:analytics"),
        "Customer analytics and statistics.",
    ),
    "recommend": (
        _typer_group("patronage.recommend.cli:recommend"),
        "Recommendations: build, evaluate, show.",
    ),
    "segments": (
        _typer_group("patronage.segments.cli:segments"),
        "Segments: list, build, preview, refresh, export.",
    ),
    "demo": (_demo, "Generate the demo shop and serve the console."),
    "import": (
        _typer_group("patronage.collect.cli:imports"),
        "Bulk import customers, products, orders or events from CSV, JSON Lines, Parquet.",
    ),
    "export": (
        _typer_group("patronage.collect.cli:exports"),
        "Export events as Parquet partitioned by day (incremental).",
    ),
    "ingestion": (
        _typer_group("patronage.collect.cli:ingestion"),
        "The tracking API's ingestion: what waits for processing.",
    ),
}


class LazyGroup(TyperGroup):
    def list_commands(self, ctx: _click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: _click.Context, cmd_name: str) -> Any | None:
        if cmd_name in LAZY:
            command = LAZY[cmd_name][0]()
            command.name = cmd_name
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: _click.Context, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY:
                rows.append((name, LAZY[name][1]))
            elif (command := super().get_command(ctx, name)) is not None:
                rows.append((name, command.get_short_help_str(limit=80)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=LazyGroup,
    help="patronage: open-source customer relationship platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.command()
@friendly_errors
def migrate(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Create or upgrade the database schema."""
    from patronage import migrate as migrations
    from patronage.config import get_settings

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(revision=revision)
    console.print(f"database at revision [bold]{revision}[/]")


@app.command()
@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(help="default: PATRONAGE_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: PATRONAGE_PORT")] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes")] = 1,
) -> None:
    """Serve the web console and the APIs."""
    import uvicorn

    from patronage.config import check_production_ready, get_settings

    settings = get_settings()
    check_production_ready(settings)
    uvicorn.run(
        "patronage.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,  # URLs can carry search terms; logged by our own middleware if needed
    )


@app.command()
@friendly_errors
def worker(
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker threads")] = 2,
    periodic: Annotated[
        bool, typer.Option("--periodic/--no-periodic", help="run the periodic schedule")
    ] = True,
) -> None:
    """Run background jobs (and the nightly schedule) until SIGINT or SIGTERM."""
    from patronage import jobs

    jobs.run_worker(workers=workers, periodic=periodic)


def main() -> None:
    app()
