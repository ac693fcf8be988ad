"""All queries of the auth capability."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from patronage.auth.models import ApiToken, AuditEntry, LoginFailure, Source, User, WebSession


def user_by_name(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.username) == username.lower()))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def session_by_hash(session: Session, token_hash: bytes) -> WebSession | None:
    return session.scalar(select(WebSession).where(WebSession.token_hash == token_hash))


def token_by_hash(session: Session, token_hash: bytes) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


# The API token or web session and its user in one indexed query, built once (Core columns: no
# ORM objects, no statement construction per request; the compiled SQL is cached).
_users = User.__table__.c
_tokens = ApiToken.__table__.c
_sessions = WebSession.__table__.c
_USER = (_users.id.label("user_id"), _users.username, _users.role, _users.is_active)
_TOKEN_WITH_USER = (
    select(
        _tokens.id,
        _tokens.revoked_at,
        _tokens.last_used_at,
        *_USER,
    )
    .join_from(ApiToken.__table__, User.__table__, _users.id == _tokens.user_id)
    .where(_tokens.token_hash == bindparam("token_hash"))
)
_SESSION_WITH_USER = (
    select(
        _sessions.id,
        _sessions.csrf_token,
        _sessions.last_seen_at,
        _sessions.expires_at,
        *_USER,
    )
    .outerjoin_from(WebSession.__table__, User.__table__, _users.id == _sessions.user_id)
    .where(_sessions.token_hash == bindparam("token_hash"))
)


def token_with_user(session: Session, token_hash: bytes) -> Any:
    """(id, revoked_at, last_used_at, user_id, username, role, is_active) of a token."""
    return session.execute(_TOKEN_WITH_USER, {"token_hash": token_hash}).first()


def session_with_user(session: Session, token_hash: bytes) -> Any:
    """(id, csrf_token, last_seen_at, expires_at, user_id, username, role, is_active) of a web
    session; the user columns are None when the user is gone."""
    return session.execute(_SESSION_WITH_USER, {"token_hash": token_hash}).first()


def touch_token(session: Session, token_id: int, at: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at))


def touch_session(session: Session, session_id: int, at: datetime) -> None:
    session.execute(update(WebSession).where(WebSession.id == session_id).values(last_seen_at=at))


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    stmt = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    return list(session.scalars(stmt))


def source_by_hash(session: Session, key_hash: bytes) -> Source | None:
    return session.scalar(select(Source).where(Source.write_key_hash == key_hash))


def source_by_name(session: Session, name: str) -> Source | None:
    return session.scalar(select(Source).where(Source.name == name))


def list_sources(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.name)))


def count_failures(session: Session, scope: str, key: str, since: datetime) -> int:
    stmt = select(func.count()).where(
        LoginFailure.scope == scope, LoginFailure.key == key, LoginFailure.failed_at >= since
    )
    return int(session.scalar(stmt) or 0)


def oldest_failure(session: Session, scope: str, key: str, since: datetime) -> datetime | None:
    stmt = select(func.min(LoginFailure.failed_at)).where(
        LoginFailure.scope == scope, LoginFailure.key == key, LoginFailure.failed_at >= since
    )
    return session.scalar(stmt)


def clear_failures(session: Session, scope: str, key: str) -> None:
    session.execute(
        delete(LoginFailure).where(LoginFailure.scope == scope, LoginFailure.key == key)
    )


def prune_failures(session: Session, before: datetime) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.failed_at < before))


def audit_entries(
    session: Session, *, target_type: str | None, target_id: str | None, limit: int, offset: int
) -> tuple[list[AuditEntry], int]:
    stmt = select(AuditEntry)
    if target_type:
        stmt = stmt.where(AuditEntry.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditEntry.target_id == target_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def delete_sessions_before(session: Session, *, expired_by: datetime, idle_since: datetime) -> int:
    stmt = delete(WebSession).where(
        (WebSession.expires_at <= expired_by) | (WebSession.last_seen_at < idle_since)
    )
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
