"""Shared ground of every CLI command: Rich consoles, clear errors and exit codes, no tracebacks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one message, one line, even in pipes


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's known error types into a one-line message and exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from sqlalchemy.exc import OperationalError

        from patronage.config import ConfigError
        from patronage.errors import AppError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise fail(str(exc), 2) from None
        except AppError as exc:
            detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            raise fail(detail, 1) from None
        except OperationalError as exc:
            # the driver's first line says what is wrong (refused, unknown host, no table)
            reason = str(exc.orig).splitlines()[0] if exc.orig else "database error"
            raise fail(f"database unavailable or not migrated: {reason}", 3) from None

    return wrapper
