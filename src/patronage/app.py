"""The ASGI application: routers of every capability, one error shape, static assets."""

from __future__ import annotations

import gc
import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patronage.analytics import api as analytics_api
from patronage.analytics import views as analytics_views
from patronage.auth import api as auth_api
from patronage.auth import views as auth_views
from patronage.auth.guard import SessionExpired
from patronage.collect import api as collect_api
from patronage.collect import import_api as collect_import_api
from patronage.collect import import_views as collect_import_views
from patronage.collect import views as collect_views
from patronage.config import check_production_ready, get_settings
from patronage.customers import api as customers_api
from patronage.customers import views as customers_views
from patronage.errors import AppError, NotAuthenticated
from patronage.recommend import api as recommend_api
from patronage.recommend import views as recommend_views
from patronage.segments import api as segments_api
from patronage.segments import views as segments_views
from patronage.web import views as web_views
from patronage.web.middleware import BodyLimit, SecurityHeaders
from patronage.web.templating import render

log = logging.getLogger("patronage")
_PACKAGE = str(Path(__file__).resolve().parent)

IMPORT_BODY_LIMIT = 200 * 1024 * 1024 + 64 * 1024  # the file and its form fields

API_PREFIXES = ("/api/", "/v1/", "/health", "/openapi.json")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def _page_error(request: Request, status: int, title: str, detail: Any) -> Response:
    return render(
        request, "error.html", {"status": status, "title": title, "detail": detail}, status
    )


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    if _wants_json(request):
        headers = dict(exc.headers or {})
        if isinstance(exc, NotAuthenticated):
            # the tracking API takes a write key as HTTP Basic user; everything else a bearer token
            scheme = "Basic" if request.url.path.startswith("/v1/") else "Bearer"
            headers.setdefault("WWW-Authenticate", f'{scheme} realm="patronage"')
        return JSONResponse(
            {"error": exc.code, "detail": exc.detail}, exc.status_code, headers=headers
        )
    if isinstance(exc, NotAuthenticated):
        target = "/login?next=" + quote(request.url.path)
        if isinstance(exc, SessionExpired):
            target += "&expired=1"
        if request.headers.get("HX-Request"):
            # an HTMX fragment request: send the whole page to the login, not into a fragment
            referer_path = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
            target = target.replace(quote(request.url.path), quote(referer_path), 1)
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    return _page_error(request, exc.status_code, exc.code.replace("_", " "), exc.detail)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # never echo the submitted value back: it may be personal data
    detail = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    if _wants_json(request):
        return JSONResponse({"error": "validation_error", "detail": detail}, 422)
    return _page_error(request, 422, "invalid input", "; ".join(d["msg"] for d in detail))


async def _unstorable(request: Request, exc: Exception) -> Response:
    # The database refused a value that validation let through (PostgreSQL: a NUL character,
    # a string too long for its column, a number out of range): bad input, not a crash. The
    # driver's message quotes the value, so it is not passed on.
    log.info(
        "refused by the database: %s on %s %s", type(exc).__name__, request.method, request.url.path
    )
    detail = "a value cannot be stored: it holds a NUL character, or is too long or out of range"
    if _wants_json(request):
        return JSONResponse({"error": "validation_error", "detail": detail}, 422)
    return _page_error(request, 422, "invalid input", detail)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error"
    )
    if _wants_json(request):
        return JSONResponse({"error": code, "detail": exc.detail}, exc.status_code, exc.headers)
    return _page_error(request, exc.status_code, code.replace("_", " "), exc.detail)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # the type and where (file, line, function), never the message: messages of low-level
    # errors can quote row values
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_PACKAGE)] or frames[-3:]
    where = "".join(traceback.format_list(ours)).rstrip()
    log.error(
        "unhandled %s on %s %s\n%s", type(exc).__name__, request.method, request.url.path, where
    )
    detail = "an unexpected error occurred; it has been logged"
    if _wants_json(request):
        return JSONResponse({"error": "internal_error", "detail": detail}, 500)
    return _page_error(request, 500, "internal error", detail)


class ContainErrors:
    """Answer unexpected errors here, inside the middleware stack.

    Starlette's outermost error middleware answers them too, but then re-raises them so that
    the server logs them, message and all; a message can quote personal data.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except StarletteHTTPException:
            raise
        except Exception as exc:
            response = await _unexpected(Request(scope), exc)
            if not started:
                await response(scope, receive, send)


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    # What the imports and the app built lives as long as the process (~300k objects with
    # the analytics libraries). Frozen, a full collection no longer walks them: it took
    # 100-270 ms here, a pause that lands on whichever request is running (the p99).
    gc.collect()
    gc.freeze()
    yield
    # given back at shutdown, so what the extensions hold is released as usual (DuckDB's
    # bindings otherwise report their frozen objects as leaks at exit)
    gc.unfreeze()


def create_app() -> FastAPI:
    settings = get_settings()
    check_production_ready(settings)
    app = FastAPI(
        title="patronage",
        version="0.1.0",
        description="Open-source, data-driven customer relationship platform.",
        docs_url=None,  # served by web.views from vendored assets (no CDN)
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(psycopg.DataError, _unstorable)  # raw cursors (bulk writes)
    app.add_exception_handler(Exception, _unexpected)
    # Routes are matched in order, one by one (a route of the last router cost 221 us to
    # find, the first 8 us): the busiest API paths first. Their prefixes overlap no page's.
    for router in (
        collect_api.router,
        recommend_api.router,
        customers_api.router,
        auth_api.router,
        analytics_api.router,
        segments_api.router,
        collect_import_api.router,
        collect_api.status_router,
        web_views.router,
        auth_views.router,
        customers_views.router,
        collect_views.router,
        collect_import_views.router,
        analytics_views.router,
        recommend_views.router,
        segments_views.router,
    ):
        app.include_router(router)
    static = Path(__file__).parent / "web" / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(ContainErrors)  # innermost: its 500 still gets the security headers
    app.add_middleware(SecurityHeaders)
    # tracking API: 500 KB a batch, 32 KB a single message (as Segment)
    # bulk import uploads: 200 MB, streamed to a temporary file (collect.imports.UPLOAD_LIMIT)
    app.add_middleware(
        BodyLimit,
        limits={
            "/v1/batch": 512_000,
            "/v1/": 32_768,
            "/api/imports": IMPORT_BODY_LIMIT,
            "/collect/imports": IMPORT_BODY_LIMIT,
        },
    )
    generate = app.openapi
    app.openapi = lambda: _document_errors(generate())  # type: ignore[method-assign]
    return app


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "machine-readable code, e.g. not_found"},
        "detail": {"description": "a message, or a list of {loc, msg} for invalid input"},
    },
}


def _document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe the one error shape every route answers with, in place of FastAPI's own 422.

    Every error status (documented or not) is `{"error": CODE, "detail": ...}`, so clients
    and schema-driven tests can rely on it.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "Error" in components:
        return schema  # already done (the schema is generated once and cached)
    components["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "invalid input", "content": error}
            responses.setdefault("default", {"description": "an error", "content": error})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
