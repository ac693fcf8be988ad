"""Land, acknowledge, then process: the landing table and its processor (background mode).

The background thread itself runs in the real-server tests (test_sdks.py); here the
processor is called directly, so every step can be looked at.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from patronage import config, db
from patronage.collect import ingest, landing, processor, service
from tests.collect.helpers import basic, mid, new_source, track


@pytest.fixture
def background(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PATRONAGE_INGEST_PROCESSING", "background")
    config.get_settings.cache_clear()
    monkeypatch.setattr(processor, "ensure_running", lambda: None)  # the test processes
    yield
    config.get_settings.cache_clear()


def counts() -> tuple[int, int, int]:
    """(events, landed and waiting, landed and set aside)"""
    with db.transaction() as s:
        events = s.execute(text("SELECT count(*) FROM events")).scalar_one()
        waiting, aside = service.landing_backlog(s)
    return int(events), waiting, aside


def landing_rows(sql: str) -> list[Any]:
    """Rows of the landing table, wherever it is (SQLite: a file of its own)."""
    engine = landing.separate_engine() or db.get_engine()
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def batch_of(n: int, user: str = "u-land") -> dict[str, Any]:
    return {"batch": [track("Product Viewed", {"n": i}, userId=user) for i in range(n)]}


def test_a_batch_is_acknowledged_once_landed_and_stored_by_the_processor(
    client: Any, background: None
) -> None:
    h = basic(new_source())
    body = batch_of(3)
    body["batch"].append({"type": "track", "messageId": mid(), "event": "No id"})
    r = client.post("/v1/batch", json=body, headers=h)
    assert r.status_code == 200
    assert r.json()["rejected"] == [
        {
            "index": 3,
            "messageId": body["batch"][3]["messageId"],
            "reason": "userId or anonymousId is required",
        }
    ]
    assert counts() == (0, 3, 0)
    with db.transaction() as s:
        done = service.process_pending(s)
    assert (done.messages, done.stored, done.duplicates, done.locked_out) == (3, 3, 0, False)
    assert counts() == (3, 0, 0)
    with db.transaction() as s:
        rows = s.execute(text("SELECT name, user_id, properties FROM events ORDER BY id")).all()
    assert [(name, user) for name, user, _ in rows] == [("Product Viewed", "u-land")] * 3
    with db.transaction() as s:
        assert service.process_pending(s).messages == 0


def test_the_landed_payload_is_sealed(client: Any, background: None) -> None:
    message = {
        "type": "identify",
        "messageId": mid(),
        "userId": "u-sealed",
        "traits": {"email": "sealed.person@example.com"},
    }
    assert client.post("/v1/identify", json=message, headers=basic(new_source())).status_code == 200
    ((payload,),) = landing_rows("SELECT payload FROM landed_batches")
    assert "sealed.person" not in payload and "u-sealed" not in payload


def test_a_batch_lands_as_one_row(client: Any, background: None) -> None:
    body = batch_of(3)
    assert client.post("/v1/batch", json=body, headers=basic(new_source())).status_code == 200
    ((digest, messages, done, payload, at),) = landing_rows(
        "SELECT digest, messages, done, payload, received_at FROM landed_batches"
    )
    assert (messages, done) == (3, 0)
    ids = [m["messageId"] for m in body["batch"]]
    assert digest == hashlib.sha256("\n".join(ids).encode()).hexdigest()
    opened = landing.decode(digest, datetime.fromisoformat(str(at)), payload)
    assert [(m.message_id, m.name, m.properties) for m in opened] == [
        (ids[i], "Product Viewed", {"n": i}) for i in range(3)
    ]


def test_a_retried_batch_lands_once_and_is_stored_once(client: Any, background: None) -> None:
    h = basic(new_source())
    body = batch_of(4)
    for _ in range(2):  # a retry before the processor ran: lands nothing twice
        assert client.post("/v1/batch", json=body, headers=h).status_code == 200
    assert counts() == (0, 4, 0)
    with db.transaction() as s:
        assert service.process_pending(s).stored == 4
    # a retry after it ran lands again, and stores nothing
    assert client.post("/v1/batch", json=body, headers=h).status_code == 200
    assert counts() == (4, 4, 0)
    with db.transaction() as s:
        done = service.process_pending(s)
    assert (done.messages, done.stored, done.duplicates) == (4, 0, 4)
    assert counts() == (4, 0, 0)


def test_a_crash_while_processing_loses_and_duplicates_nothing(
    client: Any, background: None
) -> None:
    h = basic(new_source())
    assert client.post("/v1/batch", json=batch_of(5), headers=h).status_code == 200

    class Crash(Exception):
        pass

    # the processor's transaction dies after its work, before the commit (kill -9 alike)
    with pytest.raises(Crash), db.transaction() as s:
        assert service.process_pending(s).stored == 5
        raise Crash
    assert counts() == (0, 5, 0)
    assert processor.drain() == 5
    assert counts() == (5, 0, 0)


def test_micro_batches_keep_landing_order(client: Any, background: None) -> None:
    h = basic(new_source())
    sent = [
        track("First", anonymousId="a-order"),
        {"type": "identify", "messageId": mid(), "userId": "u-order", "anonymousId": "a-order"},
        track("Second", userId="u-order"),
    ]
    for message in sent:
        assert client.post("/v1/batch", json={"batch": [message]}, headers=h).status_code == 200
    assert processor.drain(limit=1) == 3  # one message a transaction
    with db.transaction() as s:
        customers = s.execute(text("SELECT DISTINCT customer_id FROM events")).scalars().all()
        live = s.execute(text("SELECT count(*) FROM customers WHERE merged_into_id IS NULL"))
        assert live.scalar_one() == 1
    assert len(customers) == 1


def test_a_message_that_fails_is_set_aside_and_the_rest_go_on(
    client: Any, background: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = basic(new_source())
    body = batch_of(3)
    poison = body["batch"][1]["messageId"]
    assert client.post("/v1/batch", json=body, headers=h).status_code == 200
    real = ingest.ingest

    def fragile(session: Any, source: Any, messages: list[Any], received_at: Any) -> Any:
        if any(m.message_id == poison for m in messages):
            raise RuntimeError("cannot process")
        return real(session, source, messages, received_at)

    monkeypatch.setattr(ingest, "ingest", fragile)
    assert processor.drain_once() == 3  # two processed one by one, one set aside
    assert counts() == (2, 0, 1)
    ((digest, messages, failed, payload, at),) = landing_rows(
        "SELECT digest, messages, failed, payload, received_at FROM landed_batches"
    )
    assert (messages, failed) == (1, "processing failed: RuntimeError")
    (kept,) = landing.decode(digest, datetime.fromisoformat(str(at)), payload)
    assert kept.message_id == poison


def test_a_batch_that_failed_half_way_goes_on_where_it_stopped(
    client: Any, background: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One message a transaction: a crash after the first leaves the row with done = 1; the
    next run starts at the second."""
    h = basic(new_source())
    body = batch_of(3)
    assert client.post("/v1/batch", json=body, headers=h).status_code == 200
    real = ingest.ingest
    calls: list[int] = []

    class Crash(BaseException):  # not an Exception: nothing sets it aside (a kill -9 alike)
        pass

    def crashing(session: Any, source: Any, messages: list[Any], received_at: Any) -> Any:
        calls.append(len(messages))
        if len(messages) > 1:
            raise RuntimeError("the micro-batch fails")
        if len(calls) == 3:
            raise Crash
        return real(session, source, messages, received_at)

    monkeypatch.setattr(ingest, "ingest", crashing)
    with pytest.raises(Crash):
        processor.drain_once()
    assert calls == [3, 1, 1]
    assert counts() == (1, 2, 0)
    assert [tuple(r) for r in landing_rows("SELECT messages, done FROM landed_batches")] == [(3, 1)]
    monkeypatch.setattr(ingest, "ingest", real)
    assert processor.drain() == 2
    assert counts() == (3, 0, 0)


def test_inline_processing_answers_after_the_events_are_stored(client: Any) -> None:
    """The default under env=test (and PATRONAGE_INGEST_PROCESSING=inline): nothing lands."""
    assert config.get_settings().ingest_inline
    assert (
        client.post("/v1/batch", json=batch_of(2), headers=basic(new_source())).status_code == 200
    )
    assert counts() == (2, 0, 0)


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL: requests land in rows of their own
def test_sqlite_lands_while_a_processor_holds_the_write_lock(
    client: Any, background: None, backend: str
) -> None:
    """The landing table is a file of its own on SQLite: requests never queue behind the
    processor's transactions on the database."""
    h = basic(new_source())
    statuses: list[int] = []
    with db.transaction() as s:
        ingest.one_writer_at_a_time(s)  # what a processor's transaction holds
        s.execute(text("UPDATE sources SET name = name"))  # and SQLite's own write lock
        sender = threading.Thread(
            target=lambda: statuses.append(
                client.post("/v1/batch", json=batch_of(2), headers=h).status_code
            )
        )
        sender.start()
        sender.join(timeout=20)
        assert statuses == [200]
    assert counts() == (0, 2, 0)


def test_the_backlog_is_shown_in_the_api_the_cli_and_the_console(
    client: Any, background: None, staff: Any
) -> None:
    from typer.testing import CliRunner

    from patronage.cli import app
    from tests.conftest import login

    h = basic(new_source())
    assert client.post("/v1/batch", json=batch_of(3), headers=h).status_code == 200
    assert client.post("/v1/batch", json=batch_of(2, user="u-two"), headers=h).status_code == 200
    login(client, "admin")
    assert client.get("/api/collect/ingestion").json() == {
        "events": 0,
        "waiting": 5,
        "set_aside": 0,
    }
    page = client.get("/collect").text
    assert "0 events stored." in page and "5 messages acknowledged and waiting" in page
    shown = CliRunner().invoke(app, ["ingestion", "status"])
    assert shown.exit_code == 0, shown.output
    assert shown.output == "0 events stored; 5 messages waiting to be processed; 0 set aside\n"
    assert processor.drain() == 5
    assert client.get("/api/collect/ingestion").json() == {
        "events": 5,
        "waiting": 0,
        "set_aside": 0,
    }
    login(client, "marketer")
    assert client.get("/api/collect/ingestion").status_code == 403
