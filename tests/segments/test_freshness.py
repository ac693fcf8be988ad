"""Freshness: a tracked event queues a per-customer refresh after the commit, which moves the
customer into the segment; a rolled-back change queues nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from patronage import db, jobs
from patronage.customers.models import Customer
from patronage.segments import service
from patronage.segments.models import SegmentMembership
from patronage.segments.schemas import SegmentCreate
from tests.collect.helpers import basic, new_source, track

SHOES = {
    "type": "event",
    "event": "Product Viewed",
    "where": [{"property": "category", "op": "eq", "value": "shoes"}],
    "at_least": 2,
}


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Any]:
    huey = jobs.make_huey(url=f"sqlite:///{tmp_path / 'queue.db'}", name="segments-fresh")
    jobs.set_huey(huey)
    yield huey
    jobs.set_huey(None)


def run_queued(huey: Any) -> list[str]:
    names = []
    while (task := huey.dequeue()) is not None:
        names.append(task.name)
        huey.execute(task)
    return names


def current(segment_id: int) -> set[int]:
    with db.transaction() as s:
        return set(
            s.scalars(
                select(SegmentMembership.customer_id).where(
                    SegmentMembership.segment_id == segment_id, SegmentMembership.left_at.is_(None)
                )
            )
        )


def test_a_tracked_event_moves_the_customer_into_the_segment(client: Any, queue: Any) -> None:
    key = new_source()
    with db.transaction() as s:
        sid = service.create_segment(s, SegmentCreate(name="Shoe lovers", rule=SHOES), "t").id
    first = track("Product Viewed", {"category": "shoes"}, userId="u-1")
    assert client.post("/v1/track", json=first, headers=basic(key)).status_code == 200
    assert run_queued(queue) == ["segments.refresh_customers"]
    assert current(sid) == set()  # one view: not yet
    second = track("Product Viewed", {"category": "shoes"}, userId="u-1")
    assert client.post("/v1/track", json=second, headers=basic(key)).status_code == 200
    assert run_queued(queue) == ["segments.refresh_customers"]
    with db.transaction() as s:
        customer = s.scalars(select(Customer.id).where(Customer.user_id == "u-1")).one()
    assert current(sid) == {customer}
    with db.transaction() as s:
        assert [m.name for m in service.memberships_of(s, customer)] == ["Shoe lovers"]
        assert service.get_segment(s, sid).size == 1


def test_nothing_is_queued_when_the_transaction_rolls_back(database: str, queue: Any) -> None:
    with pytest.raises(RuntimeError), db.transaction() as s:
        service.customers_changed(s, [1], {"profile"})
        raise RuntimeError("boom")
    assert run_queued(queue) == []
    with db.transaction() as s:
        service.customers_changed(s, [1, 2], {"profile"})
        service.customers_changed(s, [2], {"event:X"})
    task = queue.dequeue()
    assert (task.name, task.args) == (
        "segments.refresh_customers",
        ([1, 2], ["event:X", "profile"]),
    )


def test_a_new_customer_and_a_consent_change_are_evaluated(
    client: Any, staff: dict[str, str], queue: Any
) -> None:
    from patronage.customers.consent import Purpose
    from patronage.customers.service import record_consent
    from tests.conftest import bearer

    with db.transaction() as s:
        germany = service.create_segment(
            s,
            SegmentCreate(
                name="Germany",
                rule={"type": "trait", "field": "country", "op": "eq", "value": "DE"},
            ),
            "t",
        ).id
        mailable = service.create_segment(
            s,
            SegmentCreate(name="Mailable", rule={"type": "consent", "purpose": "marketing_email"}),
            "t",
        ).id
    run_queued(queue)
    made = client.post("/api/customers", json={"country": "DE"}, headers=bearer(staff["agent"]))
    assert made.status_code == 201, made.text
    assert run_queued(queue) == ["segments.refresh_customers"]
    cid = made.json()["id"]
    assert current(germany) == {cid} and current(mailable) == set()
    with db.transaction() as s:
        record_consent(s, cid, Purpose.MARKETING_EMAIL, True, "test")
    assert run_queued(queue) == ["segments.refresh_customers"]
    assert current(mailable) == {cid}
