"""REST: who am I, staff users, API tokens, data sources, audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from patronage.auth import service
from patronage.auth.guard import Authenticated, require
from patronage.auth.roles import Permission
from patronage.auth.schemas import (
    AuditPage,
    AuditRead,
    Me,
    SourceCreate,
    SourceCreated,
    SourceRead,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
)
from patronage.auth.service import Principal
from patronage.db import SessionDep
from patronage.kit.ids import RowId

router = APIRouter(prefix="/api", tags=["auth"])


@router.get("/me", response_model=Me)
def me(principal: Authenticated) -> Me:
    return Me(
        user_id=principal.user_id,
        username=principal.username,
        role=principal.role,
        permissions=sorted(principal.permissions),
    )


@router.get("/users", response_model=list[UserRead])
def list_users(
    principal: Principal = require(Permission.USERS_MANAGE), session: Session = SessionDep
) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in service.list_users(session)]


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(
    body: UserCreate,
    principal: Principal = require(Permission.USERS_MANAGE),
    session: Session = SessionDep,
) -> UserRead:
    user = service.create_user(session, body.username, body.password, body.role.value)
    service.audit(session, principal, "user.create", "user", str(user.id), {"role": user.role})
    return UserRead.model_validate(user)


@router.get("/tokens", response_model=list[TokenRead])
def list_tokens(
    principal: Principal = require(Permission.TOKENS_OWN), session: Session = SessionDep
) -> list[TokenRead]:
    return [TokenRead.model_validate(t) for t in service.list_tokens(session, principal.user_id)]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(
    body: TokenCreate,
    principal: Principal = require(Permission.TOKENS_OWN),
    session: Session = SessionDep,
) -> TokenCreated:
    token, secret = service.create_token(session, principal.username, body.name)
    service.audit(session, principal, "token.create", "api_token", str(token.id))
    return TokenCreated(**TokenRead.model_validate(token).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", response_model=TokenRead)
def revoke_token(
    token_id: RowId,
    principal: Principal = require(Permission.TOKENS_OWN),
    session: Session = SessionDep,
) -> TokenRead:
    return TokenRead.model_validate(service.revoke_token(session, principal, token_id))


@router.get("/sources", response_model=list[SourceRead])
def list_sources(
    principal: Principal = require(Permission.SOURCES_MANAGE), session: Session = SessionDep
) -> list[SourceRead]:
    return [SourceRead.model_validate(s) for s in service.list_sources(session)]


@router.post("/sources", response_model=SourceCreated, status_code=201)
def create_source(
    body: SourceCreate,
    principal: Principal = require(Permission.SOURCES_MANAGE),
    session: Session = SessionDep,
) -> SourceCreated:
    source, key = service.create_source(session, body.name)
    service.audit(session, principal, "source.create", "source", str(source.id))
    return SourceCreated(**SourceRead.model_validate(source).model_dump(), write_key=key)


@router.get("/audit", response_model=AuditPage)
def audit_log(
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
    principal: Principal = require(Permission.AUDIT_READ),
    session: Session = SessionDep,
) -> AuditPage:
    rows, total = service.audit_log(session, target_type, target_id, limit, offset)
    return AuditPage(items=[AuditRead.model_validate(r) for r in rows], total=total)
