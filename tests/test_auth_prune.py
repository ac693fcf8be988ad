"""The hourly job forgets expired and idle sessions and failures outside the throttle window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from patronage import db, jobs
from patronage.auth import service as auth_service
from patronage.auth.models import LoginFailure, WebSession
from patronage.kit.clock import utcnow
from tests.conftest import PASSWORD


def test_prune_forgets_expired_and_idle_sessions(database):
    with db.transaction() as s:
        auth_service.create_user(s, "pat", PASSWORD, "analyst")
        for _ in range(3):
            assert auth_service.login(s, "pat", PASSWORD, "10.0.0.1").session_token
        assert auth_service.login(s, "pat", "wrong password", "10.0.0.1").error == "invalid"
    with db.transaction() as s:
        live, expired, idle = s.scalars(select(WebSession).order_by(WebSession.id)).all()
        expired.expires_at = utcnow() - timedelta(seconds=1)
        idle.last_seen_at = utcnow() - timedelta(minutes=481)
        old = s.scalars(select(LoginFailure)).all()
        for failure in old[:1]:
            failure.failed_at = utcnow() - timedelta(minutes=16)
        keep = live.id
    job = jobs.load_tasks()["auth.prune"]
    job.call_local()
    job.call_local()  # a retry removes nothing more
    with db.transaction() as s:
        assert s.scalars(select(WebSession.id)).all() == [keep]
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 1


def test_htmx_request_with_expired_session_redirects_the_whole_page(client, staff):
    from tests.conftest import login

    login(client, "admin")
    with db.transaction() as s:
        for web in s.scalars(select(WebSession)):
            web.expires_at = utcnow() - timedelta(seconds=1)
    r = client.post(
        "/api/analytics/snapshots",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/?x=1"},
    )
    # the API answers as an API does; pages answer HTMX with a full-page redirect
    assert r.status_code == 401
    page = client.get("/customers", headers={"HX-Request": "true"})
    assert page.status_code == 204
    assert page.headers["HX-Redirect"] == "/login?next=/&expired=1"
