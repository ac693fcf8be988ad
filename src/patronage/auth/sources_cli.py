"""`patronage sources …`: data sources and their tracking write keys (shown once)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from patronage.auth import service
from patronage.console import console, friendly_errors
from patronage.db import transaction
from patronage.errors import NotFound

sources = typer.Typer(
    help="Data sources (web shop, app, back office) and their write keys.", no_args_is_help=True
)


@sources.command("create")
@friendly_errors
def create_source(name: Annotated[str, typer.Argument(help="e.g. 'web shop'")]) -> None:
    """Create a data source and print its write key once."""
    with transaction() as session:
        source, key = service.create_source(session, name)
        service.audit(session, None, "source.create", "source", str(source.id), actor="cli")
    console.print(f"created source [bold]{source.name}[/] (#{source.id})")
    console.print("write key (shown once, store it now):")
    console.print(key, highlight=False, soft_wrap=True)


@sources.command("list")
@friendly_errors
def list_sources() -> None:
    """List data sources (write keys are never shown again, only their prefix)."""
    with transaction() as session:
        rows = service.list_sources(session)
        table = Table("id", "name", "key prefix", "created", "status")
        for s in rows:
            status = f"revoked {s.revoked_at:%Y-%m-%d}" if s.revoked_at else "active"
            table.add_row(str(s.id), s.name, s.prefix + "…", f"{s.created_at:%Y-%m-%d}", status)
    console.print(table)


@sources.command("revoke")
@friendly_errors
def revoke_source(name: Annotated[str, typer.Argument(help="the source's name or #id")]) -> None:
    """Revoke a source's write key: the tracking API refuses it from now on."""
    with transaction() as session:
        found = service.source_by_name(session, name)
        if found is None and name.lstrip("#").isdigit():
            source_id = int(name.lstrip("#"))
        elif found is None:
            raise NotFound(f"no source '{name}'")
        else:
            source_id = found.id
        source = service.revoke_source(session, source_id)
        service.audit(session, None, "source.revoke", "source", str(source.id), actor="cli")
    console.print(f"revoked the write key of [bold]{source.name}[/]")
