"""Public functions of the auth capability: users, sessions, tokens, sources, throttling, audit."""

from __future__ import annotations

import re
import secrets as pysecrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from patronage.auth import repository as repo
from patronage.auth.models import ApiToken, AuditEntry, LoginFailure, Source, User, WebSession
from patronage.auth.roles import ROLE_PERMISSIONS, Permission, Role
from patronage.auth.secrets import digest, hash_password, new_secret, verify_password
from patronage.config import get_settings
from patronage.errors import Conflict, NotFound, ValidationFailed
from patronage.kit.clock import utcnow

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class Principal:
    """Who is asking: a staff user through a web session or an API token."""

    user_id: int
    username: str
    role: Role
    via: str  # "session" | "token"
    csrf_token: str | None = None
    permissions: frozenset[Permission] = field(default_factory=frozenset)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def actor(self) -> str:
        return f"{self.via}:{self.username}"


def _principal(user: User, via: str, csrf: str | None = None) -> Principal:
    role = Role(user.role)
    return Principal(user.id, user.username, role, via, csrf, ROLE_PERMISSIONS[role])


# -- the per-process cache of resolved API tokens ---------------------------------------------

TOKEN_CACHE_SECONDS = 5.0
# A token in use is resolved again (by one request, in the background) this long before its
# entry expires: otherwise every request arriving while the entry is gone resolves it too,
# at once (measured at 500 requests/s: four lookups of 6-15 ms, requests behind them 64 ms).
TOKEN_REFRESH_AHEAD = 1.0
TOKEN_CACHE_ENTRIES = 10_000


def _clock() -> float:
    return time.monotonic()


class _TokenCache:
    """token digest -> (expiry on the monotonic clock, principal), for TOKEN_CACHE_SECONDS.

    Only positive answers are kept (an unknown or revoked token always costs a query). The
    cache belongs to one database: it is emptied when the settings change (tests, a CLI
    switching databases). Bounded: emptied when full.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: object = None
        self._entries: dict[bytes, tuple[float, Principal]] = {}
        self._refreshing: set[bytes] = set()

    def _check_owner(self) -> None:
        settings = get_settings()
        if self._owner is not settings:
            self._entries.clear()
            self._owner = settings

    def get(self, token_hash: bytes) -> Principal | None:
        with self._lock:
            self._check_owner()
            hit = self._entries.get(token_hash)
            if hit is None:
                return None
            if hit[0] < _clock():
                del self._entries[token_hash]
                return None
            return hit[1]

    def claim_refresh(self, token_hash: bytes) -> bool:
        """True once per entry that expires within TOKEN_REFRESH_AHEAD (until `put` or
        `refreshed`): its caller resolves the token again."""
        with self._lock:
            hit = self._entries.get(token_hash)
            if hit is None or token_hash in self._refreshing:
                return False
            if hit[0] - _clock() > TOKEN_REFRESH_AHEAD:
                return False
            self._refreshing.add(token_hash)
            return True

    def refreshed(self, token_hash: bytes) -> None:
        with self._lock:
            self._refreshing.discard(token_hash)

    def put(self, token_hash: bytes, principal: Principal) -> None:
        with self._lock:
            self._check_owner()
            if len(self._entries) >= TOKEN_CACHE_ENTRIES:
                self._entries.clear()
            self._entries[token_hash] = (_clock() + TOKEN_CACHE_SECONDS, principal)
            self._refreshing.discard(token_hash)

    def forget(self, *, token_hash: bytes | None = None, user_id: int | None = None) -> None:
        with self._lock:
            if token_hash is not None:
                self._entries.pop(token_hash, None)
            if user_id is not None:
                for key, (_, principal) in list(self._entries.items()):
                    if principal.user_id == user_id:
                        del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._refreshing.clear()


_token_cache = _TokenCache()


def _forget_tokens(
    session: Session, *, token_hash: bytes | None = None, user_id: int | None = None
) -> None:
    """Drop cached principals now and again once the change is committed (a request of this
    process that read the row in between must not keep it for TOKEN_CACHE_SECONDS)."""
    _token_cache.forget(token_hash=token_hash, user_id=user_id)
    event.listen(
        session,
        "after_commit",
        lambda _: _token_cache.forget(token_hash=token_hash, user_id=user_id),
        once=True,
    )


def clear_token_cache() -> None:
    _token_cache.clear()


# -- users ------------------------------------------------------------------------------


def create_user(session: Session, username: str, password: str, role: str) -> User:
    if not USERNAME.match(username):
        raise ValidationFailed("username must be 3-64 letters, digits or . _ @ -")
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password must be at least {MIN_PASSWORD} characters")
    if role not in {r.value for r in Role}:
        raise ValidationFailed(f"role must be one of: {', '.join(r.value for r in Role)}")
    if repo.user_by_name(session, username):
        raise Conflict(f"user '{username}' already exists")
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return repo.list_users(session)


def set_active(session: Session, principal: Principal, user_id: int, active: bool) -> User:
    """Deactivate (or reactivate) a staff user; their sessions and tokens stop working at once."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    if user.id == principal.user_id and not active:
        raise ValidationFailed("you cannot deactivate yourself")
    user.is_active = active
    _forget_tokens(session, user_id=user.id)
    audit(
        session, principal, "user.activate" if active else "user.deactivate", "user", str(user.id)
    )
    return user


def set_password(session: Session, username: str, password: str) -> User:
    user = repo.user_by_name(session, username)
    if user is None:
        raise NotFound(f"no user '{username}'")
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password must be at least {MIN_PASSWORD} characters")
    user.password_hash = hash_password(password)
    return user


# -- login, throttling, sessions ----------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    principal: Principal | None
    session_token: str | None = None
    error: str | None = None  # "invalid" | "throttled"
    retry_after: int = 0


def _throttled(session: Session, username: str, ip: str) -> int:
    """Seconds until the next attempt is allowed (0 = allowed now)."""
    settings = get_settings()
    window = timedelta(minutes=settings.login_throttle_minutes)
    since = utcnow() - window
    for scope, key, limit in (
        ("account", username.lower(), settings.login_max_failures_per_account),
        ("ip", ip, settings.login_max_failures_per_ip),
    ):
        if repo.count_failures(session, scope, key, since) >= limit:
            oldest = repo.oldest_failure(session, scope, key, since) or utcnow()
            return max(1, int((oldest + window - utcnow()).total_seconds()))
    return 0


def login(session: Session, username: str, password: str, ip: str) -> LoginResult:
    """Check a password with per-account and per-IP throttling; failures are recorded.

    Returns rather than raises, so the caller commits the recorded failure.
    """
    retry = _throttled(session, username, ip)
    if retry:
        return LoginResult(None, error="throttled", retry_after=retry)
    user = repo.user_by_name(session, username) if USERNAME.match(username) else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        now = utcnow()
        session.add_all(
            [
                LoginFailure(scope="account", key=username.lower()[:128], failed_at=now),
                LoginFailure(scope="ip", key=ip[:128], failed_at=now),
            ]
        )
        session.flush()
        return LoginResult(None, error="invalid")
    repo.clear_failures(session, "account", username.lower())
    user.last_login_at = utcnow()
    token = new_secret("pss")
    settings = get_settings()
    web = WebSession(
        token_hash=digest(token),
        user_id=user.id,
        csrf_token=pysecrets.token_urlsafe(32),
        expires_at=utcnow() + timedelta(hours=settings.session_max_hours),
    )
    session.add(web)
    session.flush()
    audit(session, _principal(user, "session"), "login")
    return LoginResult(_principal(user, "session", web.csrf_token), session_token=token)


@dataclass(frozen=True)
class SessionLookup:
    principal: Principal | None
    expired: bool = False


def resolve_session(session: Session, token: str) -> SessionLookup:
    """The principal of a console session cookie: one query (session and user joined).

    An expired session is left in place (the hourly `prune` removes it), so every request
    that presents it is told it expired rather than that it is unknown.
    """
    row = repo.session_with_user(session, digest(token))
    if row is None:
        return SessionLookup(None)
    now = utcnow()
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    if (
        now >= row.expires_at
        or now - row.last_seen_at > idle
        or row.user_id is None
        or not row.is_active
    ):
        return SessionLookup(None, expired=True)
    if now - row.last_seen_at > timedelta(minutes=1):  # spare a write on every request
        repo.touch_session(session, row.id, now)
    role = Role(row.role)
    principal = Principal(
        row.user_id, row.username, role, "session", row.csrf_token, ROLE_PERMISSIONS[role]
    )
    return SessionLookup(principal)


def logout(session: Session, token: str) -> None:
    web = repo.session_by_hash(session, digest(token))
    if web is not None:
        session.delete(web)
        session.flush()


# -- API tokens ---------------------------------------------------------------------------


def create_token(session: Session, username: str, name: str) -> tuple[ApiToken, str]:
    """Returns the token row and the secret, which is shown once and never stored."""
    user = repo.user_by_name(session, username)
    if user is None:
        raise NotFound(f"no user '{username}'")
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise ValidationFailed("token name must be 1-128 characters")
    secret = new_secret("pat")
    token = ApiToken(user_id=user.id, name=name, prefix=secret[:10], token_hash=digest(secret))
    session.add(token)
    session.flush()
    return token, secret


def resolve_token(session: Session, secret: str) -> Principal | None:
    """The principal of an API token, None if unknown, revoked or its user is inactive.

    One query (token and user joined). The answer is kept in a per-process cache for
    `TOKEN_CACHE_SECONDS` (see `cached_token`); `last_used_at` is written at most once a
    minute.
    """
    token_hash = digest(secret)
    row = repo.token_with_user(session, token_hash)
    if row is None or row.revoked_at is not None or not row.is_active:
        _token_cache.forget(token_hash=token_hash)  # revoked elsewhere: not even until expiry
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        repo.touch_token(session, row.id, now)
    role = Role(row.role)
    principal = Principal(row.user_id, row.username, role, "token", None, ROLE_PERMISSIONS[role])
    _token_cache.put(token_hash, principal)
    return principal


def cached_token(secret: str) -> Principal | None:
    """The principal of an API token resolved by this process less than
    `TOKEN_CACHE_SECONDS` ago, without touching the database; None means "ask
    `resolve_token`" (unknown, expired, or never resolved here).

    Revoking a token or deactivating its user through this process takes effect at once
    (the entries are dropped again after the commit); through another process (the other
    server workers, the CLI) within `TOKEN_CACHE_SECONDS`.
    """
    return _token_cache.get(digest(secret))


def claim_token_refresh(secret: str) -> bool:
    """True for one caller when the cached principal of this token expires within
    `TOKEN_REFRESH_AHEAD`: that caller resolves it again (`resolve_token`, in the background)
    and then calls `token_refreshed`, so a token in steady use is never met expired. A
    revocation elsewhere is still seen within `TOKEN_CACHE_SECONDS`: no entry outlives that."""
    return _token_cache.claim_refresh(digest(secret))


def token_refreshed(secret: str) -> None:
    """The refresh claimed with `claim_token_refresh` is over (even if it failed)."""
    _token_cache.refreshed(digest(secret))


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return repo.tokens_of(session, user_id)


def revoke_token(session: Session, principal: Principal, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != principal.user_id and principal.role != Role.ADMIN):
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit(session, principal, "token.revoke", "api_token", str(token.id))
    _forget_tokens(session, token_hash=token.token_hash)
    return token


# -- data sources (tracking write keys) -------------------------------------------------------


def create_source(session: Session, name: str) -> tuple[Source, str]:
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise ValidationFailed("source name must be 1-128 characters")
    if repo.source_by_name(session, name):
        raise Conflict(f"source '{name}' already exists")
    key = new_secret("wk")
    source = Source(name=name, prefix=key[:9], write_key_hash=digest(key))
    session.add(source)
    session.flush()
    return source, key


def resolve_write_key(session: Session, key: str) -> Source | None:
    source = repo.source_by_hash(session, digest(key))
    return source if source is not None and source.revoked_at is None else None


def list_sources(session: Session) -> list[Source]:
    return repo.list_sources(session)


# -- audit --------------------------------------------------------------------------------------


def audit(
    session: Session,
    principal: Principal | None,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, object] | None = None,
    *,
    actor: str | None = None,
) -> None:
    """Record an access or change; `details` must never hold personal values."""
    session.add(
        AuditEntry(
            at=utcnow(),
            user_id=principal.user_id if principal else None,
            actor=actor or (principal.actor if principal else "system"),
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details or {},
        )
    )


def audit_log(
    session: Session, target_type: str | None, target_id: str | None, limit: int, offset: int
) -> tuple[list[AuditEntry], int]:
    return repo.audit_entries(
        session, target_type=target_type, target_id=target_id, limit=limit, offset=offset
    )


def prune(session: Session) -> int:
    """Forget sessions past their lifetime or idle limit and failures outside the window.

    A request that meets an expired session cannot delete it (its transaction is rolled back
    with the 401), so this hourly job is what actually removes them. Returns sessions removed.
    """
    settings = get_settings()
    now = utcnow()
    removed = repo.delete_sessions_before(
        session,
        expired_by=now,
        idle_since=now - timedelta(minutes=settings.session_idle_minutes),
    )
    repo.prune_failures(session, now - timedelta(minutes=settings.login_throttle_minutes))
    return removed


# -- collect: revoking a data source's write key (owned by the collect helper) -------------
def revoke_source(session: Session, source_id: int) -> Source:
    """Revoke a source's write key: the tracking API refuses it from now on."""
    source = session.get(Source, source_id)
    if source is None:
        raise NotFound(f"no source {source_id}")
    if source.revoked_at is None:
        source.revoked_at = utcnow()
        session.flush()
    return source


def source_by_name(session: Session, name: str) -> Source | None:
    return repo.source_by_name(session, name.strip())


# -- end collect ---------------------------------------------------------------------------
