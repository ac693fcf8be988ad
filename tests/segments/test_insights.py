"""Personas and next category on a real store (SQLite and PostgreSQL): stored, stable across
refreshes, served by the API, the CLI and the pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage import db
from patronage.analytics.models import CustomerFeatures, CustomerScore
from patronage.catalog.models import Category, Product
from patronage.customers.models import Customer
from patronage.errors import ValidationFailed
from patronage.orders.models import Order, OrderItem
from patronage.segments import service
from patronage.segments.models import Persona, PersonaMember, PersonaRun, SegmentMembership
from patronage.segments.schemas import SegmentCreate
from tests.conftest import bearer, login

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GROUPS = {  # ids: (birth year, city, orders, spend, aov)
    (1, 2, 3, 4): (2001, "Berlin", 10, 200_000, 20_000),
    (5, 6, 7, 8): (1955, "Dorf", 1, 3_000, 3_000),
    (9, 10, 11, 12): (1980, None, 0, 0, None),
}
CATEGORIES = {1: "Electronics", 2: "Books", 3: "Garden"}
# customer -> [(days ago, category)], one order each
ORDERS: dict[int, list[tuple[int, int]]] = {
    **{c: [(100, 1), (50, 2)] for c in (1, 2, 3, 4)},
    **{c: [(20, 1)] for c in (5, 6, 7, 8)},
    13: [(100, 3), (10, 1)],  # no analytics features: not clustered
}


def load(session: Session) -> None:
    for ids, (year, city, orders, spend, aov) in GROUPS.items():
        for cid in ids:
            session.add(Customer(id=cid, birth_year=year, city=city, country="DE"))
            session.flush()
            session.add(
                CustomerFeatures(
                    customer_id=cid,
                    computed_at=NOW,
                    orders=orders,
                    purchase_days=orders,
                    total_spend_minor=spend + 100 * cid,
                    aov_minor=aov,
                    distinct_categories=min(orders, 2),
                    sessions_7d=0,
                    sessions_30d=0,
                    sessions_90d=0,
                    product_views_7d=0,
                    product_views_30d=0,
                    product_views_90d=0,
                    cart_adds=0,
                    abandoned_carts=0,
                    recommendation_clicks=0,
                    support_contacts=0,
                    reviews=0,
                    tenure_days=300,
                )
            )
            if orders:
                session.add(
                    CustomerScore(
                        customer_id=cid, computed_at=NOW, clv_minor=float(spend), reason="test"
                    )
                )
    session.add(Customer(id=13, country="DE"))
    for cat, name in CATEGORIES.items():
        session.add(Category(id=cat, external_id=f"c{cat}", name=name, path=f"/{cat}/"))
    session.flush()
    for cat in CATEGORIES:
        session.add(Product(id=10 * cat, external_id=f"p{cat}", name="thing", category_id=cat,
                            price_minor=100))  # fmt: skip
    session.flush()
    oid = 0
    for cid, placed in ORDERS.items():
        for days, cat in placed:
            oid += 1
            session.add(Order(id=oid, external_id=f"o{oid}", customer_id=cid,
                              status="delivered", total_minor=100,
                              placed_at=NOW - timedelta(days=days)))  # fmt: skip
            session.flush()
            session.add(OrderItem(order_id=oid, product_id=10 * cat, quantity=1,
                                  unit_price_minor=100))  # fmt: skip
    session.flush()


@pytest.fixture
def shop(session: Session) -> Session:
    load(session)
    return session


def _groups(session: Session) -> dict[int, int]:
    return dict(session.execute(select(PersonaMember.customer_id, PersonaMember.persona_id)).all())


def test_personas_are_stored_described_valued_and_stable(shop: Session) -> None:
    first = service.refresh_personas(shop, NOW, k_min=2, k_max=4)
    assert (first.k, first.customers, len(first.personas)) == (3, 12, 3)
    assert [s.k for s in first.silhouettes] == [2, 3, 4]
    members = _groups(shop)
    assert len(members) == 12
    for ids in GROUPS:
        assert len({members[c] for c in ids}) == 1
    assert len(set(members.values())) == 3
    young = service.persona_of(shop, 1).persona
    assert young is not None and young.size == 4 and young.share == pytest.approx(1 / 3)
    assert young.total_spend_minor == 800_000 + 100 * (1 + 2 + 3 + 4)
    assert young.mean_clv_minor == 200_000
    assert young.name == "High-spending books buyers"
    assert young.description == (
        "High-spending customers who buy books often in large baskets and buy across many "
        "categories."
    )
    spend = next(t for t in young.traits if t.feature == "total_spend_minor")
    assert (spend.mean, spend.overall, spend.label) == (200_250.0, 68_316.6667, "total spend")
    assert service.persona_of(shop, 9).persona.mean_clv_minor is None  # type: ignore[union-attr]
    assert service.persona_of(shop, 13).persona is None
    assert service.persona_of(shop, 999).persona is None

    # a rule may name personas; its segment follows every refresh
    others = [p.id for p in first.personas if p.id != young.id]
    by_persona = service.create_segment(
        shop,
        SegmentCreate(name="Persona B", rule={"type": "persona", "personas": [others[0]]}),
        "tester",
        now=NOW,
    )
    named = next(p.name for p in first.personas if p.id == others[0])
    assert (by_persona.topics, by_persona.size) == (["personas"], 4)
    assert by_persona.text == f'persona is one of ["{named}"]'

    # a second run finds the same clusters: same ids, same names, no new persona
    names = {p.id: p.name for p in first.personas}
    second = service.refresh_personas(shop, NOW + timedelta(days=1), k_min=2, k_max=4)
    assert {p.id: p.name for p in second.personas} == names
    assert _groups(shop) == members
    assert shop.scalar(select(func.count()).select_from(Persona)) == 3
    assert shop.scalar(select(func.count()).select_from(PersonaRun)) == 2

    # two personas: matched ones keep id and name, the third is retired
    third = service.refresh_personas(shop, NOW, k_min=2, k_max=2)
    assert len(third.personas) == 2
    assert {p.id for p in third.personas} < set(names)
    assert all(names[p.id] == p.name for p in third.personas)
    retired = shop.scalars(select(Persona).where(Persona.active.is_(False))).all()
    assert [(p.size, p.share) for p in retired] == [(0, 0.0)]
    # the segment naming a persona was rebuilt from the new assignments
    now_in = {c for c, p in _groups(shop).items() if p == others[0]}
    assert _segment_members(shop, by_persona.id) == now_in
    # a retired persona cannot be named any more
    with pytest.raises(ValidationFailed) as caught:
        service.preview(shop, {"type": "persona", "personas": [retired[0].id]}, now=NOW)
    assert caught.value.detail[0]["path"] == "$.personas[0]"  # type: ignore[index]
    assert f'persona {retired[0].id} "{retired[0].name}" was retired' in str(caught.value.detail)


def _segment_members(session: Session, segment_id: int) -> set[int]:
    return set(
        session.scalars(
            select(SegmentMembership.customer_id).where(
                SegmentMembership.segment_id == segment_id, SegmentMembership.left_at.is_(None)
            )
        )
    )


def test_personas_need_features(session: Session) -> None:
    assert service.personas_overview(session).computed_at is None
    with pytest.raises(ValidationFailed) as exc:
        service.refresh_personas(session)
    assert "run the analytics refresh first" in str(exc.value.detail)


def test_next_categories_predicted_and_evaluated(shop: Session) -> None:
    run = service.refresh_next_categories(shop, NOW, k=2)
    # 4 + 4 + 1 buyers; customers 1-4 have only Garden left (one category)
    assert (run.customers, run.categories, run.transitions, run.k) == (9, 3, 5, 2)
    five = service.next_categories_of(shop, 5)
    assert [(c.rank, c.name) for c in five.categories] == [(1, "Books"), (2, "Garden")]
    # Books: transition 1 (every Electronics order followed by one brought Books), co-purchase
    # 4/9 of the Electronics buyers, popularity 4/9
    assert five.categories[0].score == pytest.approx(1 + 0.5 * 4 / 9 + 0.1 * 4 / 9, abs=1e-6)
    one = service.next_categories_of(shop, 1)
    assert [c.name for c in one.categories] == ["Garden"]
    assert service.next_categories_of(shop, 12).categories == []
    assert service.latest_prediction(shop) == run

    e = service.evaluate_next_category(shop, holdout_days=30, now=NOW)
    # the cut: 30 days before the latest order (10 days ago); only customer 13 has a history
    # before it and a new category (Electronics) after it; Electronics and Books tie on
    # popularity, Electronics (the lower id) first: a hit at 1 for both
    assert e.cut == NOW - timedelta(days=40)
    assert (e.customers, e.train_lines, e.holdout_days) == (1, 9, 30)
    assert [(r.k, r.hit_rate, r.baseline_hit_rate) for r in e.results] == [
        (1, 1.0, 1.0),
        (3, 1.0, 1.0),
        (5, 1.0, 1.0),
    ]
    assert service.latest_evaluation(shop) == e
    with pytest.raises(ValidationFailed):
        service.evaluate_next_category(shop, holdout_days=0)


def _csrf(client: Any, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_api_pages_and_permissions(client: Any, staff: dict[str, str]) -> None:
    with db.transaction() as s:
        load(s)
    marketer, agent, analyst = (bearer(staff[r]) for r in ("marketer", "agent", "analyst"))
    seller = bearer(staff["seller_manager"])
    assert client.get("/api/segments/personas", headers=seller).status_code == 403
    none = client.get("/api/segments/personas", headers=agent).json()
    assert none["computed_at"] is None and "no personas yet" in none["message"]

    url = "/api/segments/personas/refresh?k_min=2&k_max=4"
    assert client.post(url, headers=agent).status_code == 403
    bad = client.post("/api/segments/personas/refresh?k_min=5&k_max=3", headers=marketer)
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"
    assert (
        client.post("/api/segments/personas/refresh?k_min=1", headers=marketer).status_code == 422
    )
    done = client.post(url, headers=analyst)
    assert done.status_code == 200, done.text
    assert done.json()["k"] == 3
    mine = client.get("/api/segments/customers/1/persona", headers=agent).json()
    assert mine["persona"]["size"] == 4
    assert client.get("/api/segments/customers/0/persona", headers=agent).status_code == 422

    assert client.post("/api/segments/next-category/refresh", headers=agent).status_code == 403
    run = client.post("/api/segments/next-category/refresh", headers=marketer).json()
    assert run["customers"] == 9
    nxt = client.get("/api/segments/customers/5/next-categories", headers=agent).json()
    assert [c["name"] for c in nxt["categories"]] == ["Books", "Garden"]
    assert client.get("/api/segments/next-category/evaluation", headers=agent).json() is None
    bad = client.post("/api/segments/next-category/evaluate?holdout_days=0", headers=marketer)
    assert bad.status_code == 422
    e = client.post("/api/segments/next-category/evaluate?holdout_days=30", headers=marketer)
    assert e.status_code == 200 and e.json()["customers"] == 1
    latest = client.get("/api/segments/next-category/evaluation", headers=agent).json()
    assert latest == e.json()

    login(client, "marketer")
    page = client.get("/segments/personas")
    assert page.status_code == 200
    assert page.text.count('data-testid="persona"') == 3
    assert mine["persona"]["name"] in page.text
    token = _csrf(client, "/segments/personas")
    again = client.post(
        "/segments/personas/refresh", data={"csrf_token": token}, follow_redirects=False
    )
    assert again.status_code == 303
    nc = client.get("/segments/next-category")
    assert nc.text.count('data-testid="nextcat-row"') == 3 and "100.0%" in nc.text
    fragment = client.get("/segments/customers/5/insights").text
    assert "Likely next categories:</strong>" in fragment and "Books, Garden</p>" in fragment
    assert mine["persona"]["name"] in client.get("/segments/customers/1/insights").text
    assert 'hx-get="/segments/customers/5/insights"' in client.get("/customers/5").text
    assert 'href="/segments/personas"' in client.get("/segments").text


def test_cli_personas_and_next_category(database: str) -> None:
    from typer.testing import CliRunner

    from patronage.cli import app

    runner = CliRunner()
    with db.transaction() as s:
        load(s)
    empty = runner.invoke(app, ["segments", "personas", "list"])
    assert empty.exit_code == 0 and "no personas yet" in empty.output
    made = runner.invoke(app, ["segments", "personas", "refresh", "--k-min", "2", "--k-max", "4"])
    assert made.exit_code == 0, made.output
    assert "3 personas of 12 customers" in made.output
    bad = runner.invoke(app, ["segments", "personas", "refresh", "--k-min", "5", "--k-max", "3"])
    assert bad.exit_code != 0 and "k must satisfy" in bad.output
    predicted = runner.invoke(app, ["segments", "next-category", "refresh"])
    assert predicted.exit_code == 0 and "9 customers" in predicted.output
    shown = runner.invoke(app, ["segments", "next-category", "show", "5"])
    assert "1. Books" in shown.output and "2. Garden" in shown.output
    evaluated = runner.invoke(
        app, ["segments", "next-category", "evaluate", "--holdout-days", "30"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "1 customers branched into a new category after 2026-04-22" in evaluated.output
    assert "│ 1 │ 100.0%   │ 100.0%   │" in evaluated.output


def test_customers_that_do_not_differ_make_one_persona(session: Session) -> None:
    for cid in range(1, 7):
        session.add(Customer(id=cid, country="DE"))
        session.flush()
        session.add(CustomerFeatures(
            customer_id=cid, computed_at=NOW, orders=0, purchase_days=0, total_spend_minor=0,
            distinct_categories=0, sessions_7d=0, sessions_30d=0, sessions_90d=0,
            product_views_7d=0, product_views_30d=0, product_views_90d=0, cart_adds=0,
            abandoned_carts=0, recommendation_clicks=0, support_contacts=0, reviews=0,
        ))  # fmt: skip
    session.flush()
    result = service.refresh_personas(session, NOW)
    assert [(p.name, p.size) for p in result.personas] == [
        ("Customers who have not ordered yet", 6)
    ]
    assert len(_groups(session)) == 6
