"""API tokens: one query per lookup, then a per-process cache for TOKEN_CACHE_SECONDS
(revocation through this process at once, through another within that time)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, update

from patronage import db
from patronage.auth import service
from patronage.auth.models import ApiToken, User
from patronage.kit.clock import utcnow
from tests.conftest import bearer


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    service.clear_token_cache()
    yield
    service.clear_token_cache()


def _statements() -> tuple[list[str], Any]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0].upper())

    return seen, record


def test_a_lookup_is_one_query_and_then_none(client, staff) -> None:  # type: ignore[no-untyped-def]
    engine = db.get_engine()
    seen, record = _statements()
    event.listen(engine, "before_cursor_execute", record)
    try:
        with db.transaction() as session:
            first = service.resolve_token(session, staff["analyst"])
        assert first is not None and (first.username, first.via) == ("analyst", "token")
        # the token and its user in one SELECT, and last_used_at written (never used before)
        assert seen == ["SELECT", "UPDATE"]
        seen.clear()
        assert service.cached_token(staff["analyst"]) == first
        assert seen == []
        with db.transaction() as session:
            assert service.resolve_token(session, staff["analyst"]) == first
        assert seen == ["SELECT"]  # used less than a minute ago: no write
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert service.cached_token("pat_" + "x" * 43) is None


def test_revoked_elsewhere_is_refused_within_the_cache_lifetime(  # type: ignore[no-untyped-def]
    client, staff, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyst = bearer(staff["analyst"])
    assert client.get("/api/me", headers=analyst).status_code == 200
    # another process (a CLI, the other server worker) revokes it: this one does not know yet
    with db.transaction() as session:
        session.execute(update(ApiToken).values(revoked_at=utcnow()))
    assert client.get("/api/me", headers=analyst).status_code == 200
    later = service._clock() + service.TOKEN_CACHE_SECONDS + 0.01
    monkeypatch.setattr(service, "_clock", lambda: later)
    refused = client.get("/api/me", headers=analyst)
    assert refused.status_code == 401
    assert refused.json() == {
        "error": "not_authenticated",
        "detail": "the API token is unknown or revoked",
    }


def test_revoked_or_deactivated_through_this_process_is_refused_at_once(  # type: ignore[no-untyped-def]
    client, staff
) -> None:
    agent, marketer = bearer(staff["agent"]), bearer(staff["marketer"])
    assert client.get("/api/me", headers=agent).status_code == 200
    assert client.get("/api/me", headers=marketer).status_code == 200
    [mine] = client.get("/api/tokens", headers=agent).json()
    assert client.delete(f"/api/tokens/{mine['id']}", headers=agent).status_code == 200
    assert client.get("/api/me", headers=agent).status_code == 401
    with db.transaction() as session:
        admin = service.resolve_token(session, staff["admin"])
        assert admin is not None
        marketer_id = session.scalar(select(User.id).where(User.username == "marketer"))
        assert marketer_id is not None
        service.set_active(session, admin, marketer_id, False)
    assert client.get("/api/me", headers=marketer).status_code == 401


def test_the_cache_belongs_to_one_database(staff) -> None:  # type: ignore[no-untyped-def]
    from patronage import config

    with db.transaction() as session:
        assert service.resolve_token(session, staff["agent"]) is not None
    assert service.cached_token(staff["agent"]) is not None
    config.get_settings.cache_clear()  # what switching databases does
    assert service.cached_token(staff["agent"]) is None


def test_a_lookup_racing_the_revocation_is_dropped_at_its_commit(staff) -> None:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        agent = service.resolve_token(session, staff["agent"])
    assert agent is not None
    [token_id] = _token_ids("agent")
    with db.transaction() as session:
        service.revoke_token(session, agent, token_id)
        assert service.cached_token(staff["agent"]) is None
        # another request of this process reads the token before the revocation commits
        with db.transaction() as other:
            assert service.resolve_token(other, staff["agent"]) == agent
        assert service.cached_token(staff["agent"]) == agent
    assert service.cached_token(staff["agent"]) is None  # dropped again at the commit
    with db.transaction() as session:
        assert service.resolve_token(session, staff["agent"]) is None


def _token_ids(username: str) -> list[int]:
    with db.transaction() as session:
        rows = session.execute(
            select(ApiToken.id)
            .join(User, User.id == ApiToken.user_id)
            .where(User.username == username)
        )
        return [int(r[0]) for r in rows]


def _expiry(secret: str) -> float:
    return service._token_cache._entries[service.digest(secret)][0]


def test_a_token_in_use_is_resolved_again_once_shortly_before_it_expires(  # type: ignore[no-untyped-def]
    client, staff, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyst = bearer(staff["analyst"])
    assert client.get("/api/me", headers=analyst).status_code == 200
    first = _expiry(staff["analyst"])
    assert service.claim_token_refresh(staff["analyst"]) is False  # fresh: nobody refreshes

    almost = first - service.TOKEN_REFRESH_AHEAD / 2
    monkeypatch.setattr(service, "_clock", lambda: almost)
    # the request is answered from the cache; it starts one refresh in the background
    assert client.get("/api/me", headers=analyst).status_code == 200
    deadline = time.monotonic() + 10
    while _expiry(staff["analyst"]) == first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _expiry(staff["analyst"]) == almost + service.TOKEN_CACHE_SECONDS
    assert service.claim_token_refresh(staff["analyst"]) is False  # renewed: not due again


def test_one_caller_claims_the_refresh_until_it_is_over(staff, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        assert service.resolve_token(session, staff["agent"]) is not None
    almost = _expiry(staff["agent"]) - service.TOKEN_REFRESH_AHEAD / 2
    monkeypatch.setattr(service, "_clock", lambda: almost)
    assert [service.claim_token_refresh(staff["agent"]) for _ in range(3)] == [True, False, False]
    service.token_refreshed(staff["agent"])  # the refresh failed (the database was away)
    assert service.claim_token_refresh(staff["agent"]) is True  # the next request tries again
    assert service.claim_token_refresh("pat_" + "x" * 43) is False  # nothing cached


def test_a_refresh_that_finds_the_token_revoked_drops_it_before_expiry(staff, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        assert service.resolve_token(session, staff["agent"]) is not None
    with db.transaction() as session:  # revoked by another process
        session.execute(update(ApiToken).values(revoked_at=utcnow()))
    almost = _expiry(staff["agent"]) - service.TOKEN_REFRESH_AHEAD / 2
    monkeypatch.setattr(service, "_clock", lambda: almost)
    assert service.cached_token(staff["agent"]) is not None
    assert service.claim_token_refresh(staff["agent"]) is True
    with db.transaction() as session:
        assert service.resolve_token(session, staff["agent"]) is None
    assert service.cached_token(staff["agent"]) is None
