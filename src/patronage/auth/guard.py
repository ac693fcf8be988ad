"""Request guards for entrypoints: who is asking, may they, and is the form really theirs.

This is the auth capability's second public module (beside service.py): routes and pages of
every capability depend on it. API clients send `Authorization: Bearer <token>` (no CSRF
needed: browsers never attach it by themselves); the web console uses the session cookie, and
every unsafe request must then carry the session's CSRF token as a header or form field.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from patronage.auth import service
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.db import transaction
from patronage.errors import CsrfFailed, Forbidden, NotAuthenticated

log = logging.getLogger("patronage.auth.guard")

SESSION_COOKIE = "patronage_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class SessionExpired(NotAuthenticated):
    code = "session_expired"


# Declared so the OpenAPI description names the scheme (and /api/docs offers "Authorize");
# the header itself is parsed below, where a malformed one gets a precise message.
bearer_scheme = HTTPBearer(
    auto_error=False, description="an API token (`patronage tokens create USER`)"
)


def _token_principal(secret: str) -> Principal | None:
    with transaction() as session:
        return service.resolve_token(session, secret)


async def _refresh_token(secret: str) -> None:
    try:
        await run_in_threadpool(_token_principal, secret)
    except Exception as exc:  # the database is away: the entry expires and requests ask again
        log.warning("API token not refreshed: %s", type(exc).__name__)
    finally:
        service.token_refreshed(secret)


_refreshes: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones)


def _session_lookup(cookie: str) -> service.SessionLookup:
    with transaction() as session:
        return service.resolve_session(session, cookie)


async def resolve_principal(
    request: Request,
    _declared: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Principal:
    """Who is asking, checked on every request.

    The lookup is a short transaction of its own (one query; `last_used_at` / `last_seen_at`
    written at most once a minute), run in the thread pool, not the request's transaction:
    a route that needs no database pays nothing more, and an API token resolved less than
    `service.TOKEN_CACHE_SECONDS` ago by this process is answered from memory without a
    thread hop (revocation: see `service.cached_token`); shortly before that entry expires,
    one request resolves the token again in the background (`service.claim_token_refresh`).
    """
    header = request.headers.get("authorization")
    if header:
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise NotAuthenticated("send 'Authorization: Bearer <API token>'")
        principal = service.cached_token(credential)
        if principal is None:
            principal = await run_in_threadpool(_token_principal, credential)
        elif service.claim_token_refresh(credential):
            task = asyncio.get_running_loop().create_task(_refresh_token(credential))
            _refreshes.add(task)
            task.add_done_callback(_refreshes.discard)
        if principal is None:
            raise NotAuthenticated("the API token is unknown or revoked")
        request.state.principal = principal
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotAuthenticated("sign in, or send an API token")
    lookup = await run_in_threadpool(_session_lookup, cookie)
    if lookup.principal is None:
        if lookup.expired:
            raise SessionExpired("your session expired; sign in again")
        raise NotAuthenticated("sign in, or send an API token")
    request.state.principal = lookup.principal
    return lookup.principal


async def checked_principal(
    request: Request, principal: Principal = Depends(resolve_principal)
) -> Principal:
    """The principal, after the CSRF check for cookie-authenticated unsafe requests."""
    if principal.via == "session" and request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, principal.csrf_token or ""):
            raise CsrfFailed("the form is missing its security token or it is stale; reload")
    return principal


def require(permission: Permission) -> Any:
    """Dependency: an authenticated principal whose role grants `permission`."""

    async def guard(principal: Principal = Depends(checked_principal)) -> Principal:
        if not principal.can(permission):
            raise Forbidden(f"the role '{principal.role}' may not use this ({permission})")
        return principal

    guard.__permission__ = permission  # type: ignore[attr-defined]  # read by the route-walk test
    return Depends(guard)


Authenticated = Annotated[Principal, Depends(checked_principal)]
PrincipalGuard = Callable[..., Awaitable[Principal]]
