"""Web pages: sign in, sign out, the user's own settings (API tokens)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from patronage.auth import service
from patronage.auth.guard import SESSION_COOKIE, require
from patronage.auth.roles import Permission, Role
from patronage.auth.service import Principal
from patronage.config import get_settings
from patronage.db import SessionDep
from patronage.kit.ids import RowId
from patronage.web.templating import render

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "patronage_login_csrf"


def _safe_next(target: str | None) -> str:
    # only same-site paths: never redirect a freshly signed-in user to another host. Browsers
    # read "/\\host" as "//host" and drop tabs and newlines, so those are refused too.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ch >= " " and ch != "\x7f" for ch in target)
    ):
        return target
    return "/"


def _login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "auth/login.html",
        {
            "login_csrf": token,
            "error": error,
            "next": _safe_next(request.query_params.get("next")),
            "expired": request.query_params.get("expired") == "1",
        },
        status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=get_settings().cookies_secure,
    )
    return response


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=256)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
    session: Session = SessionDep,
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        return _login_page(request, "The form expired. Please try again.", 403)
    ip = request.client.host if request.client else "unknown"
    result = service.login(session, username, password, ip)
    if result.error == "throttled":
        page = _login_page(
            request, f"Too many failed attempts. Try again in {result.retry_after} s.", 429
        )
        page.headers["Retry-After"] = str(result.retry_after)
        return page
    if result.session_token is None:
        return _login_page(request, "Wrong username or password.", 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        result.session_token,
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
        max_age=settings.session_max_hours * 3600,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(
    request: Request,
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> Response:
    service.logout(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/settings")
def settings_page(
    request: Request,
    principal: Principal = require(Permission.TOKENS_OWN),
    session: Session = SessionDep,
) -> HTMLResponse:
    tokens = service.list_tokens(session, principal.user_id)
    return render(request, "auth/settings.html", {"tokens": tokens, "created": None})


@router.post("/settings/tokens")
def create_token(
    request: Request,
    name: Annotated[str, Form(min_length=1, max_length=128)],
    principal: Principal = require(Permission.TOKENS_OWN),
    session: Session = SessionDep,
) -> HTMLResponse:
    token, secret = service.create_token(session, principal.username, name)
    service.audit(session, principal, "token.create", "api_token", str(token.id))
    tokens = service.list_tokens(session, principal.user_id)
    return render(request, "auth/settings.html", {"tokens": tokens, "created": secret}, 201)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(
    token_id: RowId,
    principal: Principal = require(Permission.TOKENS_OWN),
    session: Session = SessionDep,
) -> Response:
    service.revoke_token(session, principal, token_id)
    return RedirectResponse("/settings", status_code=303)


@router.get("/settings/users")
def users_page(
    request: Request,
    principal: Principal = require(Permission.USERS_MANAGE),
    session: Session = SessionDep,
) -> HTMLResponse:
    return render(
        request,
        "auth/users.html",
        {"users": service.list_users(session), "roles": [r.value for r in Role], "error": None},
    )


@router.post("/settings/users")
def create_user(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(max_length=32)],
    principal: Principal = require(Permission.USERS_MANAGE),
    session: Session = SessionDep,
) -> Response:
    user = service.create_user(session, username, password, role)
    service.audit(session, principal, "user.create", "user", str(user.id), {"role": user.role})
    return RedirectResponse("/settings/users", status_code=303)


@router.post("/settings/users/{user_id}/active")
def set_user_active(
    user_id: RowId,
    active: Annotated[bool, Form()],
    principal: Principal = require(Permission.USERS_MANAGE),
    session: Session = SessionDep,
) -> Response:
    service.set_active(session, principal, user_id, active)
    return RedirectResponse("/settings/users", status_code=303)
