"""From validated messages to stored events and their effects, one batch at a time.

Order of work, per batch (one transaction, committed before the response):
1. duplicates inside the batch are set aside;
2. every id of the batch is looked up in one query; profiles are created, linked, stitched;
3. consent (stored + what this batch says) decides what context the events may keep;
4. personal data leaves the events (profile fields get it), the events are inserted in one
   statement with ON CONFLICT (message_id) DO NOTHING;
5. only for messages that were really new: consent changes, profile traits, e-commerce facts.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic_core
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from patronage.collect import ecommerce, privacy
from patronage.collect import repository as repo
from patronage.collect.validate import Incoming
from patronage.config import get_settings
from patronage.customers import service as customers_service
from patronage.customers.consent import DEFAULTS, Purpose

BEHAVIOUR = {"track", "page", "screen"}
USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"


@dataclass(frozen=True)
class SourceRef:
    id: int | None
    name: str


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    dropped: int = 0  # not stored for want of analytics consent (events_without_consent=drop)
    customers: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Work:
    message: Incoming
    customer_id: int
    properties: dict[str, Any]
    context: dict[str, Any]
    facts: customers_service.ProfileFacts | None
    overwrite: bool
    prefs: dict[Purpose, bool]
    channel: str | None


def ingest(
    session: Session, source: SourceRef, messages: list[Incoming], received_at: datetime
) -> IngestResult:
    result = IngestResult()
    unique: dict[str, Incoming] = {}
    for m in messages:
        if m.message_id in unique:
            result.duplicates += 1
        else:
            unique[m.message_id] = m
    # no look-up of stored message ids first: a retried message resolves to the profiles
    # that exist already, and its insert and side effects are skipped below
    fresh = list(unique.values())

    resolver = customers_service.Resolver(session, f"source:{source.name}")
    keys: set[tuple[str, str]] = set()
    for m in fresh:
        if m.user_id:
            keys.add((USER_ID, m.user_id))
        if m.anonymous_id:
            keys.add((ANONYMOUS_ID, m.anonymous_id))
        if m.previous_id:
            keys.add((USER_ID, m.previous_id))
            keys.add((ANONYMOUS_ID, m.previous_id))
    resolver.preload(keys, adopt=False)
    one_writer_at_a_time(session)
    resolver.adopt_pending()
    resolver.create_new([(m.user_id, m.anonymous_id) for m in fresh if m.type != "alias"])
    work = [_prepare(resolver, m) for m in fresh]

    consents = resolver.consents_of({resolver.live(w.customer_id) for w in work})
    before = {cid: dict(said) for cid, said in consents.items()}
    drop = get_settings().events_without_consent == "drop"
    default_analytics = DEFAULTS[Purpose.ANALYTICS]
    rows: list[repo.EventRow] = []
    stored_ids: set[str] = set()
    for w in work:
        w.customer_id = resolver.live(w.customer_id)
        said = consents.setdefault(w.customer_id, {})
        said.update(w.prefs)  # the message's own preferences apply to it and what follows
        m = w.message
        if not said.get(Purpose.ANALYTICS, default_analytics):
            if drop and m.type in BEHAVIOUR:
                result.dropped += 1
                continue
            privacy.strip_without_consent(m.type, w.context, w.properties)
        rows.append(_row(w, source.id, received_at))
        stored_ids.add(m.message_id)

    inserted = repo.insert_events(session, rows)
    result.stored = len(inserted)
    result.duplicates += len(stored_ids) - len(inserted)
    effects = [
        w
        for w in work
        if w.message.message_id in inserted or w.message.message_id not in stored_ids
    ]
    _side_effects(session, resolver, source, effects, before)
    result.customers = {resolver.live(w.customer_id) for w in work}
    return result


def _prepare(resolver: customers_service.Resolver, m: Incoming) -> _Work:
    if m.type == "alias":
        assert m.previous_id and m.user_id
        customer_id = resolver.alias(m.previous_id, m.user_id, m.anonymous_id)
    else:
        customer_id = resolver.customer_for(m.user_id, m.anonymous_id)
    context = dict(m.context)
    channel = _channel(context)
    facts: customers_service.ProfileFacts | None = None
    overwrite = False
    ctx_traits = context.get("traits")
    if m.type == "identify":
        traits = {**ctx_traits, **m.traits} if isinstance(ctx_traits, dict) else m.traits
        facts, properties = privacy.profile_from(traits)
        overwrite = True
        if isinstance(ctx_traits, dict):
            context["traits"] = privacy.profile_from(ctx_traits)[1]
    elif m.type == "group":
        properties = {"groupId": m.group_id, "traits": privacy.profile_from(m.traits)[1]}
        if isinstance(ctx_traits, dict):
            context["traits"] = privacy.profile_from(ctx_traits)[1]
    elif m.type == "alias":
        properties = {"previousId": m.previous_id}
    else:
        properties = dict(m.properties)
        if isinstance(ctx_traits, dict) and ctx_traits:
            facts, context["traits"] = privacy.profile_from(ctx_traits)
        found, any_pii = privacy.redact_properties(properties)
        if any_pii:
            facts = _fill(facts, found)
    if facts is not None and facts.is_empty():
        facts = None
    if facts is not None and not overwrite:
        facts.traits = {}  # custom traits come from identify only
    return _Work(
        message=m,
        customer_id=customer_id,
        properties=properties,
        context=context,
        facts=facts,
        overwrite=overwrite,
        prefs=privacy.consent_preferences(context),
        channel=channel,
    )


def _fill(
    facts: customers_service.ProfileFacts | None, more: customers_service.ProfileFacts
) -> customers_service.ProfileFacts:
    if facts is None:
        return more
    for name in ("email", "phone", "first_name", "last_name", "birthday"):
        if getattr(facts, name) is None:
            setattr(facts, name, getattr(more, name))
    return facts


def _channel(context: dict[str, Any]) -> str | None:
    if isinstance(context.get("app"), dict) or isinstance(context.get("os"), dict):
        return "app"
    if "page" in context or "userAgent" in context:
        return "web"
    return None


def _row(w: _Work, source_id: int | None, received_at: datetime) -> repo.EventRow:
    m = w.message
    props = pydantic_core.to_json(w.properties)
    ctx = pydantic_core.to_json(w.context)
    if privacy.has_email(props):
        props = pydantic_core.to_json(privacy.redact_emails(w.properties))
    if privacy.has_email(ctx):
        ctx = pydantic_core.to_json(privacy.redact_emails(w.context))
    return (
        m.message_id,
        m.type,
        m.name,
        w.customer_id,
        m.anonymous_id,
        m.user_id,
        source_id,
        props.decode(),
        ctx.decode(),
        m.timestamp,
        m.sent_at,
        m.received_at or received_at,
    )


def _side_effects(
    session: Session,
    resolver: customers_service.Resolver,
    source: SourceRef,
    effects: list[_Work],
    recorded: dict[int, dict[Purpose, bool]],
) -> None:
    consent_changes: list[tuple[int, Purpose, bool, str]] = []
    commerce: list[tuple[_Work, int]] = []
    label = f"event:{source.name}"[:64]
    for w in effects:
        customer_id = resolver.live(w.customer_id)
        if w.prefs:
            # record what changed only: analytics.js repeats the preferences on every event
            current = recorded.setdefault(customer_id, {})
            for purpose, granted in w.prefs.items():
                if current.get(purpose) != granted:
                    consent_changes.append((customer_id, purpose, granted, label))
                    current[purpose] = granted
        if w.facts is not None:
            customer_id = resolver.apply_profile(customer_id, w.facts, overwrite=w.overwrite)
        if w.message.type == "track" and w.message.name in ecommerce.ECOMMERCE_EVENTS:
            commerce.append((w, customer_id))
    customers_service.record_consents(
        session, [(resolver.live(c), p, g, s) for c, p, g, s in consent_changes]
    )
    if commerce:
        ecommerce.apply(
            session,
            [
                ecommerce.CommerceMessage(
                    message_id=w.message.message_id,
                    name=w.message.name or "",
                    customer_id=resolver.live(customer_id),
                    timestamp=w.message.timestamp,
                    properties=w.message.properties,
                    channel=w.channel,
                )
                for w, customer_id in commerce
            ],
        )


def one_writer_at_a_time(session: Session) -> None:
    """SQLite: queue the writing part of batches on a file lock until commit or rollback.

    SQLite allows one writer; a blocked writer polls with growing sleeps (up to 100 ms) and
    waits far longer than the lock is held. A kernel lock (flock) wakes the next one at once.
    Released when the session's transaction ends (commit, rollback or close), whichever
    thread runs it.
    """
    bind = session.get_bind()
    database = bind.engine.url.database if bind.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or session.info.get("sqlite_write_lock"):
        return
    # a session transaction must exist for its end to release the lock (a session that has
    # run no statement yet has none, and its rollback would not tell us)
    session.connection()
    fd = os.open(f"{database}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    session.info["sqlite_write_lock"] = fd

    def release(_session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is not None:  # a savepoint, not the request's transaction
            return
        held = session.info.pop("sqlite_write_lock", None)
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)
            os.close(held)

    event.listen(session, "after_transaction_end", release)
