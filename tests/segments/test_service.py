"""Segments stored, evaluated (full and per customer), their history and subscribers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.errors import Conflict, ValidationFailed
from patronage.segments import service
from patronage.segments.models import SegmentMembership, SegmentMembershipEvent
from patronage.segments.schemas import SegmentCreate, SegmentUpdate
from tests.segments import store
from tests.segments.dataset import ALL, NOW

DE = {"type": "trait", "field": "country", "op": "eq", "value": "DE"}
SHOES_7D = {
    "type": "event",
    "event": "Product Viewed",
    "where": [{"property": "category", "op": "eq", "value": "shoes"}],
    "within_days": 7,
}


@pytest.fixture
def shop(session: Session) -> Session:
    store.load(session)
    return session


@pytest.fixture
def changes() -> Iterator[list[service.MembershipChange]]:
    seen: list[service.MembershipChange] = []

    def collect(_session: Session, batch: list[service.MembershipChange]) -> None:
        seen.extend(batch)

    service.on_membership_change(collect)
    yield seen
    service.remove_subscriber(collect)


def create(session: Session, name: str, rule: dict[str, Any]) -> int:
    return service.create_segment(
        session, SegmentCreate(name=name, rule=rule), "tester", now=NOW
    ).id


def members(session: Session, segment_id: int) -> set[int]:
    return set(
        session.scalars(
            select(SegmentMembership.customer_id).where(
                SegmentMembership.segment_id == segment_id, SegmentMembership.left_at.is_(None)
            )
        )
    )


def test_create_evaluates_and_records_entries(
    shop: Session, changes: list[service.MembershipChange]
) -> None:
    read = service.create_segment(shop, SegmentCreate(name="Germany", rule=DE), "alice", now=NOW)
    assert (read.size, read.text, read.created_by, read.topics) == (
        2,
        'country is "DE"',
        "alice",
        ["profile"],
    )
    assert members(shop, read.id) == {1, 2}
    assert sorted((c.customer_id, c.kind) for c in changes) == [(1, "entered"), (2, "entered")]
    assert service.history(shop, read.id, days=100000).days[0].entered == 2


def test_full_rebuild_writes_only_the_difference_and_keeps_history(
    shop: Session, changes: list[service.MembershipChange]
) -> None:
    sid = create(shop, "Germany", DE)
    changes.clear()
    assert [(e.entered, e.left, e.size) for e in service.evaluate(shop, sid, now=NOW)] == [
        (0, 0, 2)
    ]
    shop.execute(update(Customer).where(Customer.id == 3).values(country="DE"))
    shop.execute(update(Customer).where(Customer.id == 1).values(country="AT"))
    later = NOW + timedelta(hours=1)
    assert [(e.entered, e.left, e.size) for e in service.evaluate(shop, sid, now=later)] == [
        (1, 1, 2)
    ]
    assert members(shop, sid) == {2, 3}
    assert sorted((c.customer_id, c.kind) for c in changes) == [(1, "left"), (3, "entered")]
    shop.execute(update(Customer).where(Customer.id == 1).values(country="DE"))
    service.evaluate(shop, sid, now=later + timedelta(hours=1))
    stays = shop.execute(
        select(SegmentMembership.entered_at, SegmentMembership.left_at)
        .where(SegmentMembership.segment_id == sid, SegmentMembership.customer_id == 1)
        .order_by(SegmentMembership.id)
    ).all()
    assert [(a.replace(tzinfo=None), b and b.replace(tzinfo=None)) for a, b in stays] == [
        (NOW.replace(tzinfo=None), later.replace(tzinfo=None)),
        ((later + timedelta(hours=1)).replace(tzinfo=None), None),
    ]
    kinds = shop.scalars(
        select(SegmentMembershipEvent.kind).where(SegmentMembershipEvent.segment_id == sid)
    ).all()
    assert sorted(kinds) == ["entered"] * 4 + ["left"]


def test_references_cycles_and_deletion(shop: Session) -> None:
    germany = create(shop, "Germany", DE)
    men = create(
        shop,
        "German men",
        {
            "type": "and",
            "conditions": [
                {"type": "segment", "segment_id": germany},
                {"type": "trait", "field": "gender", "op": "eq", "value": "male"},
            ],
        },
    )
    assert members(shop, men) == {2}
    assert service.get_segment(shop, men).text == 'in segment "Germany" and gender is "male"'
    with pytest.raises(ValidationFailed) as caught:
        service.update_segment(
            shop, germany, SegmentUpdate(rule={"type": "segment", "segment_id": men}), "bob"
        )
    assert caught.value.detail == [
        {
            "path": "$",
            "problem": 'segments may not include each other: "Germany" → "German men" → "Germany"',
        }
    ]
    with pytest.raises(ValidationFailed) as missing:
        create(shop, "Ghost", {"type": "segment", "segment_id": 999})
    assert missing.value.detail == [{"path": "$", "problem": "segment 999 does not exist"}]
    with pytest.raises(Conflict):
        service.delete_segment(shop, germany)
    with pytest.raises(Conflict):
        create(shop, "Germany", DE)
    # changing the included segment re-evaluates those including it
    service.update_segment(shop, germany, SegmentUpdate(rule={**DE, "value": "FR"}), "bob", now=NOW)
    assert members(shop, germany) == {3, 7}
    assert members(shop, men) == {7}
    service.delete_segment(shop, men)
    service.delete_segment(shop, germany)
    assert service.list_segments(shop) == []


def test_preview_counts_samples_and_warns(shop: Session) -> None:
    found = service.preview(shop, SHOES_7D, now=NOW)
    assert (found.count, found.customers, found.sample, found.warnings) == (2, 7, [1, 2], [])
    everyone = service.preview(shop, {"type": "trait", "field": "country", "op": "is_set"}, now=NOW)
    assert everyone.warnings == ["the rule matches every customer"]
    nobody = service.preview(shop, {**DE, "value": "ZZ"}, now=NOW)
    assert (nobody.count, nobody.warnings) == (0, ["the rule matches no customer"])
    assert service.list_segments(shop) == []  # nothing saved


RULES: list[dict[str, Any]] = [
    DE,
    SHOES_7D,
    {"type": "consent", "purpose": "marketing_email"},
    {"type": "spent", "op": "gt", "amount_minor": 5000},
    {"type": "bought_category", "category_id": 3},
    {"type": "rfm", "segments": ["Champions", "Lost"]},
    {
        "type": "feature",
        "feature": "total_spend_minor",
        "percentile": True,
        "op": "gte",
        "value": 50,
    },
    {
        "type": "not",
        "condition": {"type": "not_done", "event": "Order Completed", "since_days": 30},
    },
    {"type": "score", "score": "churn_risk", "op": "lt", "value": 0.5},
    {"type": "visit", "reasons": ["email", "organic_search"], "within_days": 30},
    {"type": "persona", "personas": [1]},
]


def test_persona_conditions_are_checked_against_the_personas(shop: Session) -> None:
    sid = create(shop, "City shoppers", {"type": "persona", "personas": [1]})
    assert members(shop, sid) == {1, 4}
    assert service.get_segment(shop, sid).text == 'persona is one of ["Young city shoppers"]'
    choices = 'the personas are: 1 "Young city shoppers", 2 "Lapsed bargain hunters"'
    bad = {
        "type": "and",
        "conditions": [
            DE,
            {"type": "not", "condition": {"type": "persona", "personas": [2, 7, 3]}},
        ],
    }
    with pytest.raises(ValidationFailed) as caught:
        create(shop, "Bad", bad)
    assert caught.value.detail == [
        {
            "path": "$.conditions[1].condition.personas[1]",
            "problem": f"persona 7 does not exist; {choices}",
        },
        {
            "path": "$.conditions[1].condition.personas[2]",
            "problem": 'persona 3 "Retired persona" was retired by a later clustering '
            f"(it has no customers); {choices}",
        },
    ]
    with pytest.raises(ValidationFailed):
        service.preview(shop, bad, now=NOW)
    with pytest.raises(ValidationFailed):
        service.update_segment(shop, sid, SegmentUpdate(rule=bad), "tester", now=NOW)
    assert [s.name for s in service.list_segments(shop)] == ["City shoppers"]  # nothing saved
    found = service.preview(shop, {"type": "persona", "personas": [2]}, now=NOW)
    assert (found.count, found.sample, found.text) == (
        3,
        [2, 7, 8],
        'persona is one of ["Lapsed bargain hunters"]',
    )


def test_per_customer_refresh_agrees_with_the_full_rebuild(shop: Session) -> None:
    ids = [create(shop, f"s{i}", rule) for i, rule in enumerate(RULES)]
    full = {sid: members(shop, sid) for sid in ids}
    # wipe the memberships, then rebuild them customer by customer
    shop.execute(SegmentMembership.__table__.delete())
    for cid in sorted(ALL | {5, 99}):
        service.refresh_customers(shop, [cid], None, now=NOW)
    assert {sid: members(shop, sid) for sid in ids} == full
    assert full[ids[0]] == {1, 2}
    # nothing changed: a second pass writes nothing
    assert service.refresh_customers(shop, sorted(ALL), None, now=NOW) == 0


def test_only_segments_the_change_can_affect_are_refreshed(shop: Session) -> None:
    germany = create(shop, "Germany", DE)
    shoes = create(shop, "Shoes", SHOES_7D)
    shop.execute(update(Customer).where(Customer.id == 3).values(country="DE"))
    # an event that no segment mentions, without profile changes: nothing is looked at
    assert service.refresh_customers(shop, [3], {"event:Page Viewed"}, now=NOW) == 0
    assert service.refresh_customers(shop, [3], {"profile"}, now=NOW) == 1
    assert members(shop, germany) == {1, 2, 3}
    assert members(shop, shoes) == {1, 2}
    assert service.get_segment(shop, germany).size == 3
