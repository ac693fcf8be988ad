"""The shared Jinja2 environment: every capability's `templates/` folder plus the layout here.

Capabilities keep their pages in `patronage/<capability>/templates/<capability>/…` and
render them with `render(request, "<capability>/page.html", {...})`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from patronage.kit.money import from_minor
from patronage.web.navigation import visible_sections

PACKAGE = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def environment() -> Environment:
    capabilities = sorted(p for p in PACKAGE.glob("*/templates") if p.parent.name != "web")
    folders = [PACKAGE / "web" / "templates", *capabilities]
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders]),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda minor, cur="EUR": f"{from_minor(minor):,.2f} {cur}"
    env.filters["thousands"] = lambda n: f"{n:,}" if n is not None else "–"
    env.filters["pct"] = lambda x: f"{x * 100:.1f}%" if x is not None else "–"
    env.filters["dt"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else "–"
    env.filters["date"] = lambda d: d.strftime("%Y-%m-%d") if d else "–"
    return env


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    ctx = {
        "request": request,
        "principal": principal,
        "csrf_token": getattr(principal, "csrf_token", None),
        "nav": visible_sections(principal),
        "path": request.url.path,
    }
    ctx.update(context or {})
    html = environment().get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code)
