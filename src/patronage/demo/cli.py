"""`patronage demo`: a generated shop to explore, with an admin login, served at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from patronage.console import console, friendly_errors


class _Bars:
    """Rich progress bars for the demo's stages."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            TextColumn("{task.completed:>10,.0f}/{task.total:<10,.0f}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._finish()
        self.progress.stop()

    def _finish(self) -> None:
        if self.task is not None:
            total = self.progress.tasks[-1].total
            self.progress.update(self.task, completed=total or 1, total=total or 1)

    def stage(self, name: str, total: int | None = None) -> None:
        self._finish()
        self.task = self.progress.add_task(name, total=total or 1)

    def advance(self, amount: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)

    def note(self, text: str) -> None:
        self.progress.console.print(text)


def make_command(serve: Callable[..., Any]) -> Callable[..., None]:
    """The `demo` command; `serve` is the CLI's own serve command, called at the end."""

    @friendly_errors
    def demo(
        customers: Annotated[
            int, typer.Option(min=1, max=10_000_000, help="how many customers to generate")
        ] = 5000,
        seed: Annotated[int, typer.Option(min=0, help="same seed, same shop")] = 42,
        until: Annotated[
            datetime | None,
            typer.Option(
                formats=["%Y-%m-%d"], help="the shop's last day of history (default 2026-06-30)"
            ),
        ] = None,
        reset: Annotated[bool, typer.Option(help="wipe the shop's data and generate anew")] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask before wiping")] = False,
        no_serve: Annotated[
            bool, typer.Option("--no-serve", help="do not start the server")
        ] = False,
        host: Annotated[str | None, typer.Option(help="default: PATRONAGE_HOST")] = None,
        port: Annotated[int | None, typer.Option(help="default: PATRONAGE_PORT")] = None,
    ) -> None:
        """Generate a realistic demo shop, print the admin login, and serve the console.

        Keeps an existing shop (only the admin password is reset) unless --reset is given.
        """
        from patronage.config import get_settings
        from patronage.demo import service
        from patronage.demo.generator import Plan
        from patronage.demo.timeline import DEFAULT_UNTIL

        last_day = date(until.year, until.month, until.day) if until else DEFAULT_UNTIL
        plan = Plan(customers=customers, seed=seed, until=last_day)
        if reset and not yes:
            typer.confirm(
                "This deletes every customer, order, event and product in the database "
                "(staff users and the audit log stay). Continue?",
                abort=True,
            )
        with _Bars() as bars:
            result = service.run(plan, reset=reset, reporter=bars)
            if result.generated:
                service.derive(plan, reporter=bars)
        settings = get_settings()
        url = f"http://{host or settings.host}:{port or settings.port}"
        if result.generated:
            total = sum(result.rows.values())
            console.print(
                f"generated {result.customers:,} customers, {result.rows['orders']:,} orders, "
                f"{result.rows['events']:,} events ({total:,} rows) in {result.seconds:.0f} s"
            )
        else:
            console.print(
                f"kept the existing shop ({result.customers:,} customers); "
                "use --reset to generate a new one"
            )
        console.print(f"open [bold]{url}[/] and log in as [bold]{result.login.username}[/]")
        console.print(f"password: [bold]{result.login.password}[/]", highlight=False)
        if not no_serve:
            serve(host=host, port=port, workers=1)

    return demo
