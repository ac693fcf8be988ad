"""`patronage users …` and `patronage tokens …`."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from rich.table import Table

from patronage.auth import service
from patronage.auth.roles import Role
from patronage.console import console, friendly_errors
from patronage.db import transaction

users = typer.Typer(help="Staff users and their roles.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens for the REST API (shown once).", no_args_is_help=True)


@users.command("create")
@friendly_errors
def create_user(
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[Role, typer.Option(help="what the user may do")] = Role.ANALYST,
    password: Annotated[
        str | None,
        typer.Option(help="default: prompt; '-' generates one and prints it", envvar=None),
    ] = None,
) -> None:
    """Create a staff user."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    generated = password == "-"  # noqa: S105  (the "generate one" marker)
    if generated:
        password = secrets.token_urlsafe(12)
    with transaction() as session:
        user = service.create_user(session, username, password, role.value)
        service.audit(session, None, "user.create", "user", str(user.id), actor="cli")
    console.print(f"created user [bold]{username}[/] with role [bold]{role.value}[/]")
    if generated:
        console.print(f"password: [bold]{password}[/]")


@users.command("list")
@friendly_errors
def list_users() -> None:
    """List staff users."""
    with transaction() as session:
        rows = service.list_users(session)
        table = Table("username", "role", "active", "last login")
        for u in rows:
            last = u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never"
            table.add_row(u.username, u.role, "yes" if u.is_active else "no", last)
    console.print(table)


@users.command("set-password")
@friendly_errors
def set_password(username: str) -> None:
    """Set a user's password (prompted)."""
    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with transaction() as session:
        service.set_password(session, username, password)
    console.print(f"password of [bold]{username}[/] changed")


@tokens.command("create")
@friendly_errors
def create_token(
    username: Annotated[str, typer.Argument(help="the user the token acts as")],
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
) -> None:
    """Create an API token and print it once."""
    with transaction() as session:
        token, secret = service.create_token(session, username, name)
        service.audit(session, None, "token.create", "api_token", str(token.id), actor="cli")
    console.print("API token (shown once, store it now):")
    console.print(secret, highlight=False, soft_wrap=True)
