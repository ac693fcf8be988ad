"""Public functions of the collect capability: the tracking API and the event log."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from patronage.auth import service as auth_service
from patronage.collect import ingest as pipeline  # a module: ingest imports us back
from patronage.collect import landing
from patronage.collect import repository as repo
from patronage.collect.schemas import Accepted, EventRead, IngestionStatus, Rejected
from patronage.collect.validate import (
    BATCH_LIMIT,
    MESSAGE_LIMIT,
    BadRequest,
    Refusal,
    decode_body,
    messages_of_batch,
    validate_messages,
)
from patronage.config import get_settings
from patronage.errors import AppError, NotAuthenticated
from patronage.kit.clock import utcnow

ENDPOINTS = ("identify", "track", "page", "screen", "group", "alias", "batch")
log = logging.getLogger("patronage.collect")


class InvalidMessage(AppError):
    status_code = 400
    code = "invalid_message"


def latest_events(session: Session, customer_id: int, limit: int = 25) -> list[EventRead]:
    return [
        EventRead(type=e.type, name=e.name, timestamp=e.timestamp, properties=e.properties)
        for e in repo.latest_for_customer(session, customer_id, limit)
    ]


def reassign_events(session: Session, from_customer_id: int, into_customer_id: int) -> int:
    """A profile merge: the merged profile's events now belong to the survivor."""
    return repo.reassign_events(session, from_customer_id, into_customer_id)


def count_events(session: Session) -> int:
    return repo.count_events(session)


def body_limit(endpoint: str) -> int:
    return BATCH_LIMIT if endpoint == "batch" else MESSAGE_LIMIT


def _basic_user(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise NotAuthenticated("send the source's write key as the HTTP Basic user name")
    try:
        decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated("the HTTP Basic credentials are malformed") from None
    return decoded.partition(":")[0]


# write key -> (source, valid until): a busy source sends hundreds of batches a second.
# A revocation takes effect at once in the process that made it, within KEY_TTL elsewhere.
KEY_TTL = 5.0
_keys: dict[str, tuple[pipeline.SourceRef, float]] = {}


def forget_write_keys() -> None:
    _keys.clear()


def _source(session: Session, write_key: Any) -> pipeline.SourceRef:
    if not isinstance(write_key, str) or not write_key or len(write_key) > 256:
        raise NotAuthenticated(
            "send the source's write key as the HTTP Basic user name (or writeKey in the body)"
        )
    cached = _keys.get(write_key)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    source = auth_service.resolve_write_key(session, write_key)
    if source is None:
        _keys.pop(write_key, None)
        raise NotAuthenticated("the write key is unknown or revoked")
    ref = pipeline.SourceRef(source.id, source.name)
    if len(_keys) > 1000:
        _keys.clear()
    _keys[write_key] = (ref, now + KEY_TTL)
    return ref


def receive(
    session: Session,
    endpoint: str,
    raw: bytes,
    *,
    content_encoding: str | None,
    authorization: str | None,
    received_at: datetime | None = None,
) -> Accepted:
    """One call of the tracking API: authenticate, validate, land (committed before the
    answer) for the background processor; or, inline, process right here.

    A single message that is refused is a 400; a batch stores its good messages and lists
    the refused ones (a batch whose every message is refused is a 400).
    """
    received_at = received_at or utcnow()
    key = _basic_user(authorization)
    source = _source(session, key) if key is not None else None
    body = decode_body(raw, content_encoding, body_limit(endpoint))
    if endpoint == "batch":
        raws, shared = messages_of_batch(body)
        forced = None
    else:
        if not isinstance(body, dict):
            raise BadRequest("a message is a JSON object")
        raws, shared, forced = [body], {}, endpoint
    if source is None:
        source = _source(session, shared.get("writeKey") or _first_key(raws))
    accepted, refusals = validate_messages(raws, shared, received_at, forced)
    if not accepted:
        if endpoint == "batch":
            raise InvalidMessage([_rejected(r).model_dump() for r in refusals])
        raise InvalidMessage(refusals[0].reason)
    if get_settings().ingest_inline:
        # processed here, in the request's transaction (tests; PATRONAGE_INGEST_PROCESSING)
        result = pipeline.ingest(session, source, accepted, received_at)
        _segments_changed(session, result, accepted)
    else:
        _land(session, source, accepted, received_at)
        start_processing()
    return Accepted(rejected=[_rejected(r) for r in refusals])


def _land(
    session: Session, source: pipeline.SourceRef, accepted: list[Any], received_at: datetime
) -> None:
    row = (
        landing.digest(accepted),
        source.id,
        source.name,
        received_at,
        len(accepted),
        landing.encode(accepted),
    )
    with landing.store(session) as store:
        # SQLite: queue on the landing file's write lock, woken at once, rather than poll in
        # SQLite's busy handler
        pipeline.one_writer_at_a_time(store)
        repo.land(store, row)


def start_processing() -> None:
    """This process's background processor, unless landed messages are processed inline."""
    if not get_settings().ingest_inline:
        from patronage.collect import processor  # imported late: it imports us

        processor.ensure_running()


# -- the processor: landed messages -> identities, consent, events, effects ----------------

PROCESS_BATCH = 5000  # landed messages per transaction of the processor
_LOCK_KEY = 0x70617472  # PostgreSQL advisory lock of the processor ("patr")


@dataclass
class Processed:
    messages: int = 0  # landed messages taken (and deleted from the landing table)
    stored: int = 0  # new events
    duplicates: int = 0  # message ids stored before (retries)
    dropped: int = 0  # not stored for want of analytics consent (events_without_consent=drop)
    locked_out: bool = False  # another processor holds the lock (wait=False)
    set_aside: int = 0  # messages that failed on their own (process_singly)

    def add(self, result: pipeline.IngestResult) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.dropped += result.dropped


def process_pending(
    session: Session, limit: int = PROCESS_BATCH, *, wait: bool = True
) -> Processed:
    """Process the oldest landed rows (about `limit` messages) in the session's transaction
    and delete them from the landing table: in that same transaction (PostgreSQL), or right
    after it commits (SQLite's landing file). A crash at any point loses and duplicates
    nothing.

    One processor at a time per database (a PostgreSQL advisory lock, the SQLite write
    lock); wait=False returns at once (locked_out) when another one holds it.
    """
    done = Processed()
    rows = _take(session, limit, wait, done)
    # consecutive runs of one source, in landing order: a person's messages stay in order
    runs = groupby(rows, key=lambda r: (r.source_id, r.source_name))
    for (source_id, source_name), group in runs:
        landed = list(group)
        messages = [
            m for r in landed for m in landing.decode(r.digest, r.received_at, r.payload)[r.done :]
        ]
        result = pipeline.ingest(
            session, pipeline.SourceRef(source_id, source_name), messages, landed[0].received_at
        )
        _segments_changed(session, result, messages)
        done.add(result)
        done.messages += len(messages)
    if rows:
        _after_processing(session, [r.id for r in rows], None)
    return done


def process_singly(session: Session) -> Processed:
    """The oldest landed row, one message a transaction (after its micro-batch failed): each
    message is processed and counted done in a transaction of its own; one that fails on its
    own is set aside in a row of its own, and the rest go on. Commits as it goes."""
    done = Processed()
    rows = _take(session, 1, True, done)
    if not rows:
        return done
    (row,) = rows[:1]
    messages = landing.decode(row.digest, row.received_at, row.payload)
    source = pipeline.SourceRef(row.source_id, row.source_name)
    session.rollback()  # every message below has a transaction of its own
    for position in range(row.done, len(messages)):
        message = messages[position]
        last = position == len(messages) - 1
        try:
            with session.begin():
                _processor_lock(session, True)
                result = pipeline.ingest(session, source, [message], row.received_at)
                _segments_changed(session, result, [message])
                _after_processing(session, [row.id] if last else [], (row.id, position + 1))
            done.add(result)
        except Exception as exc:  # kept for a look; messages never reach the logs
            reason = f"processing failed: {type(exc).__name__}"
            with session.begin():
                _processor_lock(session, True)
                aside = (
                    landing.digest([message]), row.source_id, row.source_name,
                    row.received_at, 1, landing.encode([message]),
                )  # fmt: skip
                with landing.store(session) as store:
                    pipeline.one_writer_at_a_time(store)
                    repo.set_aside(store, aside, reason)
                    if last:
                        repo.delete_landed(store, [row.id])
                    else:
                        repo.mark_done(store, row.id, position + 1)
            done.set_aside += 1
        done.messages += 1
    return done


def _take(session: Session, limit: int, wait: bool, done: Processed) -> list[Any]:
    with landing.store(session) as store:
        if not repo.any_landed(store):
            return []
        if not _processor_lock(session, wait):
            done.locked_out = True
            return []
        return repo.landed(store, limit)


def _after_processing(
    session: Session, finished: list[int], progress: tuple[int, int] | None
) -> None:
    """Rows whose every message is processed go; a row processed one message at a time
    records how far it got. PostgreSQL: in the processing transaction itself. SQLite: the
    landing file is another database, so right after the events are committed, while this
    processor still holds the write lock (no other processor can have taken them). A crash
    in between leaves them landed: processed again, they change nothing (as a client's retry
    would not: message ids are unique in the event log, and effects run for new events
    only)."""

    def record(store: Session) -> None:
        if finished:
            repo.delete_landed(store, finished)
        if progress is not None and progress[0] not in finished:
            repo.mark_done(store, *progress)

    if landing.separate_engine() is None:
        record(session)
        return

    def after_commit(_session: Session) -> None:
        try:
            with landing.store(_session) as store:
                pipeline.one_writer_at_a_time(store)
                record(store)
        except Exception as exc:  # committed already: never turn that into an error
            log.warning("landing rows not updated (%s): processed again", type(exc).__name__)

    event.listen(session, "after_commit", after_commit, once=True)


def newest_landing(session: Session) -> int | None:
    """The newest landing id: when it moves, the API is busy."""
    with landing.store(session) as store:
        return repo.newest_landing(store)


def ingestion_status(session: Session) -> IngestionStatus:
    waiting, aside = landing_backlog(session)
    return IngestionStatus(events=repo.count_events(session), waiting=waiting, set_aside=aside)


def landing_backlog(session: Session) -> tuple[int, int]:
    """(messages waiting for the processor, messages set aside after failing)."""
    with landing.store(session) as store:
        return repo.count_landed(store)


def _processor_lock(session: Session, wait: bool) -> bool:
    if session.get_bind().dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        got = session.execute(text(f"SELECT {function}(:key)"), {"key": _LOCK_KEY}).scalar()
        return wait or bool(got)
    # SQLite: the write lock itself, held to the end of the transaction; rows are read after
    # taking it, so two processors take turns and never take the same rows
    pipeline.one_writer_at_a_time(session)
    return True


def _segments_changed(session: Session, result: pipeline.IngestResult, accepted: list[Any]) -> None:
    """Segment freshness: these customers are re-evaluated once the batch commits."""
    if not result.customers:
        return
    from patronage.segments import service as segments_service  # imported late: a cycle

    topics = segments_service.topics_of_messages((m.type, m.name) for m in accepted)
    segments_service.customers_changed(session, result.customers, topics)


def _first_key(raws: list[Any]) -> Any:
    first = raws[0] if raws else None
    return first.get("writeKey") if isinstance(first, dict) else None


def _rejected(r: Refusal) -> Rejected:
    return Rejected(index=r.index, messageId=r.message_id, reason=r.reason)


def ingest_messages(
    session: Session, source_name: str, raws: list[dict[str, Any]], source_id: int | None = None
) -> tuple[pipeline.IngestResult, list[Rejected]]:
    """The tracking pipeline for callers inside patronage (bulk import of events)."""
    received_at = utcnow()
    accepted, refusals = validate_messages(raws, {}, received_at, None)
    result = pipeline.ingest(
        session, pipeline.SourceRef(source_id, source_name), accepted, received_at
    )
    _segments_changed(session, result, accepted)
    return result, [_rejected(r) for r in refusals]


# -- bulk write paths, used by the demo and imports (owned by the demo helper) --------------
# isort: split
from patronage.collect.bulk import insert_events as insert_events  # noqa: E402
from patronage.collect.bulk import prepare_batch as prepare_batch  # noqa: E402
# -- end bulk write paths ------------------------------------------------------------------
