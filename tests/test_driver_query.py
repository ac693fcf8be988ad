"""db.DriverQuery: a statement compiled once per dialect and run through the driver's cursor
on the session's connection gives the rows SQLAlchemy gives (raw values), inside the
session's transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, select

from patronage import db
from patronage.catalog.models import Category

NAMED = (
    select(Category.id, Category.name, Category.parent_id)
    .where(Category.name.like(bindparam("prefix")), Category.id > bindparam("after"))
    .order_by(Category.id.desc())
    .limit(bindparam("limit", type_=Integer))
)


def test_rows_are_sqlalchemys_within_the_transaction(session: db.Session) -> None:
    parent = Category(external_id="c-root", name="root", path="/")
    session.add(parent)
    session.flush()
    for i in range(5):  # not committed: the driver's cursor runs in the same transaction
        session.add(Category(external_id=f"c-{i}", name=f"kid {i}", parent_id=parent.id))
    session.flush()
    query = db.DriverQuery(NAMED)
    values = {"prefix": "kid%", "after": 0, "limit": 3}

    rows = query.rows(session, **values)

    assert rows == [tuple(r) for r in session.execute(NAMED, values)]
    assert [(name, p) for _, name, p in rows] == [
        ("kid 4", parent.id),
        ("kid 3", parent.id),
        ("kid 2", parent.id),
    ]
    assert query.first(session, prefix="none%", after=0, limit=3) is None
    assert query.first(session, prefix="root", after=0, limit=1) == (parent.id, "root", None)


def test_a_literal_limit_and_a_scalar_subquery_are_bound(session: db.Session) -> None:
    session.add_all([Category(external_id=f"s-{i}", name=f"n{i}", path=f"/{i}/") for i in range(3)])
    session.flush()
    newest = select(Category.name).order_by(Category.id.desc()).limit(1).scalar_subquery()
    statement = select(Category.id, newest.label("newest")).where(
        Category.external_id == bindparam("external_id")
    )

    row = db.DriverQuery(statement).first(session, external_id="s-0")

    assert row is not None
    assert row[1] == "n2"
    assert row == tuple(session.execute(statement, {"external_id": "s-0"}).one())


def test_chunks_are_the_rows_a_few_at_a_time(session: db.Session) -> None:
    session.add_all([Category(external_id=f"k-{i}", name=f"kid {i}", path="/") for i in range(5)])
    session.flush()
    query = db.DriverQuery(NAMED)
    values = {"prefix": "kid%", "after": 0, "limit": 10}

    chunks = list(query.chunks(session, 2, **values))

    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [r for c in chunks for r in c] == query.rows(session, **values)
    assert list(query.chunks(session, 2, prefix="none%", after=0, limit=10)) == []
