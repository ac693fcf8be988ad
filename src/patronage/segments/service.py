"""Public functions of the segments capability (docs/segments.md).

- CRUD of segments: the rule is validated (precise errors), segment references must exist and
  never form a cycle; nothing is saved unless all of it is valid.
- `preview`: count and sample without saving. `evaluate`: full rebuild of one or every
  segment, writing only the difference (entries and exits) with its history.
- Freshness: `customers_changed` (called by collect when it stores events, orders, traits)
  queues `refresh_customers` after the commit; it re-evaluates only those customers, in only
  the segments the change can affect.
- Subscribers: `on_membership_change(fn)`; fn(session, changes) runs in the transaction that
  writes the changes (so what it writes commits with them, or not at all).
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from patronage.auth import service as auth_service
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.customers import service as customers_service
from patronage.errors import Conflict, NotFound, ValidationFailed
from patronage.kit.clock import utcnow
from patronage.kit.pagination import PageMeta, PageRequest
from patronage.segments import builtins, engine
from patronage.segments import repository as repo
from patronage.segments import rules as r
from patronage.segments.compiler import naive_utc
from patronage.segments.local import LocalCompiler
from patronage.segments.models import Segment
from patronage.segments.schemas import (
    DayMoves,
    EvaluationRead,
    HistoryRead,
    MemberPage,
    MemberRead,
    MembershipRead,
    PreviewRead,
    SegmentCreate,
    SegmentRead,
    SegmentUpdate,
)

log = logging.getLogger("patronage.segments")

SAMPLE = 20
EXPORT_LIMIT = 100_000


# -- subscribers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipChange:
    segment_id: int
    customer_id: int
    kind: str  # entered | left
    at: datetime


Subscriber = Callable[[Session, list[MembershipChange]], None]
_subscribers: list[Subscriber] = []


def on_membership_change(fn: Subscriber) -> Subscriber:
    """Register `fn(session, changes)`; usable as a decorator. Called once per write."""
    if fn not in _subscribers:
        _subscribers.append(fn)
    return fn


def remove_subscriber(fn: Subscriber) -> None:
    if fn in _subscribers:
        _subscribers.remove(fn)


def _publish(session: Session, changes: list[MembershipChange]) -> None:
    if not changes:
        return
    for fn in list(_subscribers):
        fn(session, changes)


# -- rules of the stored segments ----------------------------------------------------------------

# parsed rules by (id, updated_at): parsing 200 rules each time an event arrives would cost
# more than evaluating them
_parsed: dict[tuple[int, datetime], r.Node] = {}


def _rule_of(segment: Segment) -> r.Node:
    key = (segment.id, segment.updated_at)
    rule = _parsed.get(key)
    if rule is None:
        if len(_parsed) > 10_000:
            _parsed.clear()
        rule = _parsed[key] = r.parse_rule(segment.rule)
    return rule


class _Catalogue:
    """Every stored segment and its parsed rule, for reference lookups."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = {s.id: s for s in segments}
        self.rules: dict[int, r.Node] = {s.id: _rule_of(s) for s in segments}

    def lookup(self, segment_id: int) -> r.Node:
        rule = self.rules.get(segment_id)
        if rule is None:
            raise ValidationFailed(f"segment {segment_id} does not exist")
        return rule

    def closure(self, rule: r.Node) -> list[r.Node]:
        """The rule and every rule it reaches through segment references."""
        out, stack, seen = [rule], list(r.segment_refs(rule)), set()
        while stack:
            sid = stack.pop()
            if sid in seen:
                continue
            seen.add(sid)
            ref = self.lookup(sid)
            out.append(ref)
            stack.extend(r.segment_refs(ref))
        return out

    def topics(self, rule: r.Node) -> set[str]:
        return set().union(*(r.topics(x) for x in self.closure(rule)))

    def time_based(self, rule: r.Node) -> bool:
        return any(r.time_based(x) for x in self.closure(rule))


def _catalogue(session: Session) -> _Catalogue:
    return _Catalogue(repo.all_segments(session))


@dataclass(frozen=True)
class _Live:
    """A segment as the per-customer refresh needs it (no ORM object: cached across
    sessions)."""

    id: int
    topics: frozenset[str]


_live: dict[str, tuple[Any, list[_Live], dict[int, r.Node]]] = {}
# compiled per-customer predicates, per database: (signature, expiry, compiler, predicates)
_compiled: dict[tuple[str, int], tuple[Any, float, LocalCompiler, dict[int, Any]]] = {}
COMPILED_TTL = 60.0  # percentile thresholds are baked in: recompiled at least this often


def _live_catalogue(session: Session) -> tuple[list[_Live], dict[int, r.Node]]:
    """Every segment and its rule, cached per database until a segment changes: an event
    must not pay for loading and parsing 200 rules."""
    key = str(session.get_bind().engine.url)
    sig = repo.signature(session)
    cached = _live.get(key)
    if cached is not None and cached[0] == sig:
        return cached[1], cached[2]
    cat = _catalogue(session)
    live = [_Live(s.id, frozenset(s.topics or ())) for s in cat.segments.values()]
    _live[key] = (sig, live, dict(cat.rules))
    return live, dict(cat.rules)


def _check_references(cat: _Catalogue, rule: r.Node, segment_id: int | None) -> None:
    """Every referenced segment exists, and no chain of references comes back."""
    graph = {sid: r.segment_refs(rule) for sid, rule in cat.rules.items()}
    me = segment_id if segment_id is not None else 0
    graph[me] = r.segment_refs(rule)
    for ref in sorted(graph[me]):
        if ref not in cat.rules or ref == 0:
            raise ValidationFailed([{"path": "$", "problem": f"segment {ref} does not exist"}])
    # depth-first search for a path back to `me`
    stack: list[tuple[int, list[int]]] = [(ref, [me, ref]) for ref in sorted(graph[me])]
    visited: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node == me:
            chain = " → ".join(
                f'"{cat.segments[p].name}"' if p in cat.segments else "this segment" for p in path
            )
            raise ValidationFailed(
                [{"path": "$", "problem": f"segments may not include each other: {chain}"}]
            )
        if node in visited:
            continue
        visited.add(node)
        stack.extend((nxt, [*path, nxt]) for nxt in sorted(graph.get(node, ())))


def _check_personas(session: Session, rule: r.Node) -> None:
    """Every persona a condition names exists and is active (in the latest clustering);
    every problem is reported, by the path of its value."""
    conditions = [(p, n) for p, n in r.with_paths(rule) if isinstance(n, r.InPersona)]
    if not conditions:
        return
    known = {pid: (name, active) for pid, name, active in repo.personas(session)}
    active = [f'{pid} "{name}"' for pid, (name, on) in known.items() if on]
    choices = (
        f"the personas are: {', '.join(active)}"
        if active
        else ("there are no personas yet: run `patronage segments personas refresh`")
    )
    problems = []
    for path, node in conditions:
        assert isinstance(node, r.InPersona)
        for i, pid in enumerate(node.personas):
            where = f"{path}.personas[{i}]"
            if pid not in known:
                problems.append(
                    {"path": where, "problem": f"persona {pid} does not exist; {choices}"}
                )
            elif not known[pid][1]:
                problems.append(
                    {
                        "path": where,
                        "problem": f'persona {pid} "{known[pid][0]}" was retired by a later '
                        f"clustering (it has no customers); {choices}",
                    }
                )
    if problems:
        raise ValidationFailed(problems)


def _check(session: Session, cat: _Catalogue, rule: r.Node, segment_id: int | None) -> None:
    _check_references(cat, rule, segment_id)
    _check_personas(session, rule)


def _names(cat: _Catalogue) -> dict[int, str]:
    return {sid: s.name for sid, s in cat.segments.items()}


def persona_names(session: Session) -> dict[int, str]:
    """Every persona's name by id (retired ones too: old rules may name them)."""
    return {pid: name for pid, name, _ in repo.personas(session)}


def persona_choices(session: Session) -> list[tuple[int, str]]:
    """(id, name) of the active personas, largest first: what a rule may name."""
    return [(pid, name) for pid, name, active in repo.personas(session) if active]


def _describe(session: Session, rule: r.Node, cat: _Catalogue | None) -> str:
    personas = (
        persona_names(session) if any(isinstance(n, r.InPersona) for n in r.walk(rule)) else {}
    )
    return r.describe(rule, _names(cat) if cat is not None else {}, personas)


def to_read(
    segment: Segment, cat: _Catalogue | None = None, personas: dict[int, str] | None = None
) -> SegmentRead:
    rule = _rule_of(segment)
    names = _names(cat) if cat is not None else {}
    return SegmentRead(
        id=segment.id,
        name=segment.name,
        description=segment.description,
        family=segment.family,
        builtin=segment.builtin,
        rule=segment.rule,
        text=r.describe(rule, names, personas),
        size=segment.size,
        evaluated_at=segment.evaluated_at,
        time_based=segment.time_based,
        topics=sorted(segment.topics),
        created_by=segment.created_by,
        updated_by=segment.updated_by,
        created_at=segment.created_at,
        updated_at=segment.updated_at,
    )


# -- CRUD -----------------------------------------------------------------------------------------


def list_segments(session: Session) -> list[SegmentRead]:
    cat = _catalogue(session)
    personas = persona_names(session)
    return [to_read(s, cat, personas) for s in cat.segments.values()]


def _get(session: Session, segment_id: int) -> Segment:
    segment = repo.get(session, segment_id)
    if segment is None:
        raise NotFound(f"no segment {segment_id}")
    return segment


def get_segment(session: Session, segment_id: int) -> SegmentRead:
    return to_read(_get(session, segment_id), _catalogue(session), persona_names(session))


def _unique_name(session: Session, name: str, segment_id: int | None) -> None:
    other = repo.by_name(session, name)
    if other is not None and other.id != segment_id:
        raise Conflict(f"a segment named {name!r} exists already")


def create_segment(
    session: Session,
    data: SegmentCreate,
    actor: str | None,
    *,
    evaluate_now: bool = True,
    builtin_key: str | None = None,
    now: datetime | None = None,
) -> SegmentRead:
    rule = r.parse_rule(data.rule)
    cat = _catalogue(session)
    _check(session, cat, rule, None)
    _unique_name(session, data.name, None)
    stamp = utcnow()
    segment = repo.add(
        session,
        Segment(
            name=data.name,
            description=data.description,
            family=data.family,
            rule=r.dump_rule(rule),
            builtin=builtin_key is not None,
            builtin_key=builtin_key,
            topics=sorted(cat.topics(rule)),
            time_based=cat.time_based(rule),
            refs=sorted(r.segment_refs(rule)),
            size=0,
            created_by=actor,
            updated_by=actor,
            created_at=stamp,
            updated_at=stamp,
        ),
    )
    if evaluate_now:
        evaluate(session, segment.id, now=now)
    return get_segment(session, segment.id)


def update_segment(
    session: Session,
    segment_id: int,
    data: SegmentUpdate,
    actor: str | None,
    *,
    now: datetime | None = None,
) -> SegmentRead:
    segment = _get(session, segment_id)
    changed_rule = False
    if data.rule is not None:
        rule = r.parse_rule(data.rule)
        cat = _catalogue(session)
        _check(session, cat, rule, segment.id)
        dumped = r.dump_rule(rule)
        changed_rule = dumped != segment.rule
        segment.rule = dumped
        segment.refs = sorted(r.segment_refs(rule))
    if data.name is not None:
        _unique_name(session, data.name, segment.id)
        segment.name = data.name
    if data.description is not None:
        segment.description = data.description
    if "family" in data.model_fields_set:
        segment.family = data.family
    segment.updated_by = actor
    segment.updated_at = utcnow()
    session.flush()
    if changed_rule:
        # this segment's topics, and those of every segment that includes it, follow the rule
        cat = _catalogue(session)
        for other in cat.segments.values():
            other_rule = cat.rules[other.id]
            topics = sorted(cat.topics(other_rule))
            if topics != sorted(other.topics or ()) or other.time_based != cat.time_based(
                other_rule
            ):
                other.topics = topics
                other.time_based = cat.time_based(other_rule)
                other.updated_at = segment.updated_at  # caches of the live segments notice
        session.flush()
        evaluate(session, segment.id, now=now, dependents=True)
    return get_segment(session, segment.id)


def delete_segment(session: Session, segment_id: int) -> None:
    segment = _get(session, segment_id)
    users = [s.name for s in repo.all_segments(session) if segment_id in (s.refs or [])]
    if users:
        raise Conflict(f"segment {segment.name!r} is included by: {', '.join(sorted(users))}")
    repo.delete(session, segment)


# -- evaluation -----------------------------------------------------------------------------------


def _warnings(count: int, total: int) -> list[str]:
    if total and count == total:
        return ["the rule matches every customer"]
    if count == 0:
        return ["the rule matches no customer"]
    return []


def preview(session: Session, raw_rule: Any, now: datetime | None = None) -> PreviewRead:
    """Members of an unsaved rule: count, a sample, the text form; nothing is written."""
    started = time.perf_counter()
    now = (now or utcnow()).astimezone(UTC)
    rule = r.parse_rule(raw_rule)
    cat = _catalogue(session)
    _check(session, cat, rule, None)
    eng = engine.engine_class().from_store(session, cat.closure(rule), now)
    try:
        compiler = eng.compiler(cat.lookup, engine.store_percentiles(session))
        members = eng.members(compiler, rule)
        total = int(eng.backend.execute(compiler.customers.count()))
    finally:
        eng.close()
    return PreviewRead(
        count=len(members),
        customers=total,
        sample=members[:SAMPLE],
        text=_describe(session, rule, cat),
        warnings=_warnings(len(members), total),
        duration_ms=round((time.perf_counter() - started) * 1000),
    )


def _apply(session: Session, segment: Segment, members: set[int], now: datetime) -> tuple[int, int]:
    current = repo.current_members(session, segment.id)
    entered = sorted(members - current)
    left = sorted(current - members)
    repo.enter(session, [(segment.id, c) for c in entered], now)
    repo.leave(session, segment.id, left, now)
    repo.log(
        session,
        [(segment.id, c, "entered") for c in entered] + [(segment.id, c, "left") for c in left],
        now,
    )
    segment.size = len(members)
    segment.evaluated_at = now
    session.flush()
    _publish(
        session,
        [MembershipChange(segment.id, c, "entered", now) for c in entered]
        + [MembershipChange(segment.id, c, "left", now) for c in left],
    )
    return len(entered), len(left)


def _dependents(cat: _Catalogue, segment_id: int) -> list[int]:
    """Segments that include `segment_id`, directly or not."""
    found: list[int] = []
    frontier = {segment_id}
    while frontier:
        nxt = {
            sid
            for sid, rule in cat.rules.items()
            if r.segment_refs(rule) & frontier and sid not in found and sid != segment_id
        }
        found.extend(sorted(nxt))
        frontier = nxt
    return found


def evaluate(
    session: Session,
    segment_id: int | None = None,
    *,
    now: datetime | None = None,
    only: Callable[[Segment], bool] | None = None,
    dependents: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[EvaluationRead]:
    """Full rebuild of one segment (with `dependents`: and those including it) or of every
    segment (`only` filters them); writes only entries and exits."""
    now = (now or utcnow()).astimezone(UTC)
    cat = _catalogue(session)
    if segment_id is not None:
        if segment_id not in cat.segments:
            raise NotFound(f"no segment {segment_id}")
        ids = [segment_id, *(_dependents(cat, segment_id) if dependents else [])]
    else:
        ids = sorted(cat.segments)
    chosen = [cat.segments[i] for i in ids if only is None or only(cat.segments[i])]
    if not chosen:
        return []
    needed = [x for s in chosen for x in cat.closure(cat.rules[s.id])]
    step = progress or (lambda _: None)
    step("reading the store")
    eng = engine.engine_class().from_store(session, needed, now)
    results = []
    try:
        percentiles = engine.store_percentiles(session)
        for segment in chosen:
            step(segment.name)
            started = time.perf_counter()
            compiler = eng.compiler(cat.lookup, percentiles)
            members = set(eng.members(compiler, cat.rules[segment.id]))
            entered, left = _apply(session, segment, members, now)
            results.append(
                EvaluationRead(
                    segment_id=segment.id,
                    name=segment.name,
                    size=len(members),
                    entered=entered,
                    left=left,
                    duration_ms=round((time.perf_counter() - started) * 1000),
                )
            )
    finally:
        eng.close()
    return results


def evaluate_time_based(session: Session, now: datetime | None = None) -> list[EvaluationRead]:
    """The periodic job: segments whose answer changes with time alone."""
    return evaluate(session, now=now, only=lambda s: s.time_based)


# -- freshness ------------------------------------------------------------------------------------


def topics_of_messages(messages: Iterable[tuple[str, str | None]]) -> set[str]:
    """Topics of tracked (type, name) pairs: the events themselves, the profile (identify
    traits and consent travel with any message), orders (e-commerce events), visits (page
    views)."""
    found = {"profile"}
    for kind, name in messages:
        if name:
            found.add(f"event:{name}")
        if kind == "track":
            found.add("orders")
        elif kind == "page":
            found.add("visits")  # visit reasons come from page views
    return found


def affected(segments: Iterable[Segment], topics: set[str] | None) -> list[Segment]:
    if topics is None:
        return list(segments)
    return [s for s in segments if topics.intersection(s.topics or ())]


def refresh_customers(
    session: Session,
    customer_ids: Sequence[int],
    topics: set[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Re-evaluate these customers in the segments `topics` can affect (all without topics),
    from their own rows; returns the number of entries and exits written."""
    now = (now or utcnow()).astimezone(UTC)
    live, rules = _live_catalogue(session)
    chosen = [s for s in live if topics is None or topics & s.topics]
    if not chosen or not customer_ids:
        return 0

    def lookup(segment_id: int) -> r.Node:
        if segment_id not in rules:
            raise ValidationFailed(f"segment {segment_id} does not exist")
        return rules[segment_id]

    needed = _expand([rules[s.id] for s in chosen], lookup)
    tables, names = engine.needs(needed)
    facts = engine.load_facts(session, customer_ids, tables, names)
    key = str(session.get_bind().engine.url)
    slot = (key, threading.get_ident())  # the compiler's `now` is per thread
    cached = _compiled.get(slot)
    if cached is None or cached[0] != _live[key][0] or cached[1] < time.monotonic():
        compiler = LocalCompiler(now, rules=lookup, percentile=engine.store_percentiles(session))
        cached = (_live[key][0], time.monotonic() + COMPILED_TTL, compiler, {})
        _compiled[slot] = cached
    compiler, predicates = cached[2], cached[3]
    compiler.now = naive_utc(now)
    current = repo.current_of(session, customer_ids, [s.id for s in chosen])
    changes: list[MembershipChange] = []
    entered: list[tuple[int, int]] = []
    deltas: dict[int, int] = {}
    for segment in chosen:
        predicate = predicates.get(segment.id)
        if predicate is None:
            predicate = predicates[segment.id] = compiler.compile(rules[segment.id])
        gone: list[int] = []
        for cid in customer_ids:
            inside = cid in facts and predicate(facts[cid])
            was = (segment.id, cid) in current
            if inside and not was:
                entered.append((segment.id, cid))
                changes.append(MembershipChange(segment.id, cid, "entered", now))
            elif was and not inside:
                gone.append(cid)
                changes.append(MembershipChange(segment.id, cid, "left", now))
        if gone:
            repo.leave(session, segment.id, gone, now)
        deltas[segment.id] = sum(1 for s, _ in entered if s == segment.id) - len(gone)
    repo.enter(session, entered, now)
    repo.log(session, [(c.segment_id, c.customer_id, c.kind) for c in changes], now)
    repo.bump_sizes(session, deltas)
    session.flush()
    _publish(session, changes)
    return len(changes)


def _expand(roots: list[r.Node], lookup: Callable[[int], r.Node]) -> list[r.Node]:
    out, stack, seen = list(roots), [i for x in roots for i in r.segment_refs(x)], set()
    while stack:
        sid = stack.pop()
        if sid not in seen:
            seen.add(sid)
            out.append(lookup(sid))
            stack.extend(r.segment_refs(out[-1]))
    return out


_PENDING = "segments_pending"
_LISTENING = "segments_listening"
_EVALUATE_ALL = "segments_evaluate_all"


def customers_changed(session: Session, customer_ids: Iterable[int], topics: set[str]) -> None:
    """Queue a re-evaluation of these customers once the session's transaction commits
    (nothing is queued if it rolls back)."""
    _listen(session)
    pending: dict[int, set[str]] = session.info.setdefault(_PENDING, {})
    for cid in customer_ids:
        pending.setdefault(cid, set()).update(topics)


def _listen(session: Session) -> None:
    if not session.info.get(_LISTENING):
        # kept for the session's life: listeners may not be removed while they run
        session.info[_LISTENING] = True
        # queued once the transaction has ended, not in after_commit: on SQLite the ingest
        # path holds its write lock until then, and the first enqueue of a process loads
        # every job module (seconds) -- every other writer would wait on it
        event.listen(session, "after_rollback", _drop_pending)
        event.listen(session, "after_transaction_end", _enqueue_when_ended)


def _enqueue_when_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction, not a savepoint
        _enqueue_pending(session)


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_EVALUATE_ALL, None)


def _enqueue_pending(session: Session) -> None:
    from patronage.segments import tasks  # the queue is wired above the service

    if session.info.pop(_EVALUATE_ALL, False):
        try:
            tasks.evaluate_all()
        except Exception as exc:
            log.warning("could not queue the segment evaluation: %s", type(exc).__name__)
    pending: dict[int, set[str]] = session.info.pop(_PENDING, None) or {}
    if not pending:
        return
    topics = sorted(set().union(*pending.values()))
    try:
        tasks.refresh_customers(sorted(pending), topics)
    except Exception as exc:  # the data is stored; the periodic job catches up
        log.warning("could not queue a segment refresh: %s", type(exc).__name__)


# -- members, history, export ---------------------------------------------------------------------


def _may_see_pii(principal: Principal) -> bool:
    return principal.can(Permission.CUSTOMERS_PII)


def members(
    session: Session, principal: Principal, segment_id: int, page: PageRequest
) -> MemberPage:
    """Current members, with personal data only for roles that may see it (audited)."""
    _get(session, segment_id)
    rows, total = repo.members_page(session, segment_id, page.offset, page.size)
    with_pii = _may_see_pii(principal)
    items = [_member(session, cid, at, with_pii) for cid, at in rows]
    if with_pii and items:
        auth_service.audit(
            session,
            principal,
            "segment.members_pii",
            "segment",
            str(segment_id),
            {"count": len(items)},
        )
    pages = max(1, -(-total // page.size))
    return MemberPage(
        items=items, meta=PageMeta(total=total, page=page.page, size=page.size, pages=pages)
    )


def _member(session: Session, customer_id: int, entered_at: datetime, with_pii: bool) -> MemberRead:
    customer = customers_service.to_read(
        customers_service.get_customer(session, customer_id), with_pii=with_pii
    )
    return MemberRead(
        customer_id=customer_id,
        entered_at=entered_at,
        country=customer.country,
        city=customer.city,
        language=customer.language,
        gender=customer.gender,
        pii_visible=with_pii,
        email=customer.email if with_pii else None,
        first_name=customer.first_name if with_pii else None,
        last_name=customer.last_name if with_pii else None,
    )


EXPORT_COLUMNS = ("customer_id", "entered_at", "country", "city", "language", "gender")
EXPORT_PII_COLUMNS = ("email", "first_name", "last_name")


def _csv_safe(value: object) -> object:
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


def export_csv(
    session: Session,
    segment_id: int,
    *,
    with_pii: bool,
    principal: Principal | None = None,
    actor: str | None = None,
) -> tuple[str, int]:
    """Current members as CSV (at most EXPORT_LIMIT); personal columns only `with_pii`;
    always audited."""
    segment = _get(session, segment_id)
    columns = EXPORT_COLUMNS + (EXPORT_PII_COLUMNS if with_pii else ())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    written = 0
    while written < EXPORT_LIMIT:
        rows, _ = repo.members_page(session, segment_id, written, min(1000, EXPORT_LIMIT - written))
        for cid, at in rows:
            member = _member(session, cid, at, with_pii).model_dump(mode="json")
            writer.writerow([_csv_safe(member[c]) for c in columns])
        written += len(rows)
        if len(rows) < 1000:
            break
    auth_service.audit(
        session,
        principal,
        "segment.export",
        "segment",
        str(segment.id),
        {"rows": written, "pii": with_pii},
        actor=actor,
    )
    return out.getvalue(), written


def export_for(session: Session, principal: Principal, segment_id: int) -> tuple[str, int]:
    """CSV of the members with only the columns `principal`'s role may see."""
    return export_csv(session, segment_id, with_pii=_may_see_pii(principal), principal=principal)


def history(session: Session, segment_id: int, days: int = 90) -> HistoryRead:
    """Entries and exits per UTC day over the last `days` days (days without moves omitted)."""
    _get(session, segment_id)
    since = (utcnow() - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    per_day: dict[str, DayMoves] = {}
    for day, kind, n in repo.daily_moves(session, segment_id, since):
        moves = per_day.setdefault(day, DayMoves(day=day, entered=0, left=0))
        if kind == "entered":
            moves.entered += n
        else:
            moves.left += n
    return HistoryRead(segment_id=segment_id, days=list(per_day.values()))


def memberships_of(session: Session, customer_id: int) -> list[MembershipRead]:
    """The segments a customer is in now (for the customer page, journeys)."""
    names = {s.id: s.name for s in repo.all_segments(session)}
    return [
        MembershipRead(segment_id=sid, name=names[sid], entered_at=at)
        for sid, at in repo.segments_of(session, customer_id)
        if sid in names
    ]


def membership_events(
    session: Session, after_id: int = 0, limit: int = 1000
) -> list[tuple[int, MembershipChange]]:
    """(log id, change) of the entry / exit log after `after_id`, oldest first (pollers)."""
    return [
        (e.id, MembershipChange(e.segment_id, e.customer_id, e.kind, e.at))
        for e in repo.events_since(session, after_id, limit)
    ]


# -- built-in families ----------------------------------------------------------------------------


def ensure_builtins(session: Session) -> int:
    """Create the built-in segments that do not exist yet (not evaluated: `evaluate` does it);
    returns how many were created. One deleted by a user comes back only when asked again."""
    existing = repo.by_builtin_key(session)
    created = 0
    for key, family, name, description, rule in builtins.all_builtins(session):
        if key in existing or repo.by_name(session, name) is not None:
            continue
        create_segment(
            session,
            SegmentCreate(name=name, description=description, family=family, rule=rule),
            "patronage",
            evaluate_now=False,
            builtin_key=key,
        )
        created += 1
    return created


def overview(session: Session) -> list[SegmentRead]:
    """Every segment; the first time ever, the built-in families are created (and their
    evaluation queued once this transaction commits)."""
    if not repo.by_builtin_key(session) and ensure_builtins(session):
        _queue_evaluation(session)
    return list_segments(session)


def _queue_evaluation(session: Session) -> None:
    _listen(session)
    session.info[_EVALUATE_ALL] = True


def trends(session: Session, days: int = 7) -> dict[int, tuple[int, int]]:
    """Per segment: entries and exits over the last `days` days."""
    return repo.moves_since(session, utcnow() - timedelta(days=days))


# -- personas and next category (segments/insights.py) -----------------------------------------
# isort: split
from patronage.segments import insights as _insights  # noqa: E402
from patronage.segments.insights import evaluate_next_category as evaluate_next_category  # noqa: E402
from patronage.segments.insights import latest_evaluation as latest_evaluation  # noqa: E402
from patronage.segments.insights import latest_prediction as latest_prediction  # noqa: E402
from patronage.segments.insights import next_categories_of as next_categories_of  # noqa: E402
from patronage.segments.insights import persona_of as persona_of  # noqa: E402
from patronage.segments.insights import personas_overview as personas_overview  # noqa: E402
from patronage.segments.insights import refresh_next_categories as refresh_next_categories  # noqa: E402
from patronage.segments.schemas import PersonasRead  # noqa: E402


def refresh_personas(
    session: Session,
    now: datetime | None = None,
    *,
    k_min: int = 3,
    k_max: int = 8,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
) -> PersonasRead:
    """Re-cluster the personas (insights.refresh_personas), then rebuild the segments whose
    rules name a persona: their members follow the new assignments at once."""
    result = _insights.refresh_personas(
        session, now, k_min=k_min, k_max=k_max, random_state=random_state, progress=progress
    )
    if progress:
        progress("segments naming personas")
    evaluate(session, now=now, only=lambda s: "personas" in (s.topics or ()))
    return result
