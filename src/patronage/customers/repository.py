"""All queries of the customers capability."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Row, Select, bindparam, func, select
from sqlalchemy.orm import Session

from patronage.customers.models import Consent, Customer, CustomerMerge, Identity, Milestone
from patronage.db import DriverQuery
from patronage.kit.together import Together

SORTS: dict[str, Any] = {
    "id": Customer.id.asc(),
    "-id": Customer.id.desc(),
    "signup_at": Customer.signup_at.asc(),
    "-signup_at": Customer.signup_at.desc(),
    "country": Customer.country.asc(),
    "-country": Customer.country.desc(),
}


def get(session: Session, customer_id: int) -> Customer | None:
    return session.get(Customer, customer_id)


def by_user_id(session: Session, user_id: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.user_id == user_id))


def search(
    session: Session,
    *,
    ids: list[int] | None,
    email_bidx: bytes | None,
    phone_bidx: bytes | None,
    user_id: str | None,
    country: str | None,
    signup_from: datetime | None,
    signup_to: datetime | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[Customer], int]:
    stmt: Select[Any] = select(Customer).where(Customer.merged_into_id.is_(None))
    if ids is not None:
        stmt = stmt.where(Customer.id.in_(ids))
    if email_bidx is not None:
        stmt = stmt.where(Customer.email_bidx == email_bidx)
    if phone_bidx is not None:
        stmt = stmt.where(Customer.phone_bidx == phone_bidx)
    if user_id is not None:
        stmt = stmt.where(Customer.user_id == user_id)
    if country is not None:
        stmt = stmt.where(Customer.country == country)
    if signup_from is not None:
        stmt = stmt.where(Customer.signup_at >= signup_from)
    if signup_to is not None:
        stmt = stmt.where(Customer.signup_at < signup_to)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(stmt.order_by(SORTS[sort], Customer.id).limit(limit).offset(offset))
    return list(rows), int(total or 0)


# built once: on a hot path (every personalised list asks it) building and caching the
# statement cost ten times its execution
_LATEST_GRANT = (
    select(Consent.granted)
    .where(Consent.customer_id == bindparam("customer_id"), Consent.purpose == bindparam("purpose"))
    .order_by(Consent.recorded_at.desc(), Consent.id.desc())
    .limit(1)
    .scalar_subquery()
)
_CONSENT_OF = select(Customer.id, _LATEST_GRANT.label("granted")).where(
    Customer.id == bindparam("customer_id")
)


_CONSENT_ROW = DriverQuery(_CONSENT_OF)


def consent_of(session: Session, customer_id: int, purpose: str) -> tuple[bool, bool | None]:
    """Whether the customer exists, and its newest grant of one purpose (None if none).
    Through the driver: every personalised list asks it."""
    row = _CONSENT_ROW.first(session, customer_id=customer_id, purpose=purpose)
    if row is None:
        return False, None
    return True, None if row[1] is None else bool(row[1])


def consent_history(session: Session, customer_id: int) -> list[Row[Any]]:
    stmt = (
        select(*Consent.__table__.c)
        .where(Consent.customer_id == customer_id)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
    )
    return list(session.execute(stmt))


@cache  # built on first use, not at import: the CLI imports this module too
def _profile() -> Together:
    customer = bindparam("customer_id", type_=BigInteger)
    return Together(
        {
            "customer": (
                select(*Customer.__table__.c).where(Customer.id == customer),
                [Customer.id],
            ),
            "identities": (
                select(*Identity.__table__.c).where(Identity.customer_id == customer),
                [Identity.id],
            ),
            "consents": (
                select(*Consent.__table__.c).where(Consent.customer_id == customer),
                [Consent.recorded_at.desc(), Consent.id.desc()],
            ),
            "milestones": (
                select(*Milestone.__table__.c).where(Milestone.customer_id == customer),
                [Milestone.id],
            ),
            "merges": (
                select(*CustomerMerge.__table__.c).where(
                    CustomerMerge.into_customer_id == customer
                ),
                [CustomerMerge.merged_at, CustomerMerge.id],
            ),
        }
    )


def profile_rows(session: Session, customer_id: int) -> dict[str, list[Any]]:
    """The customer (a list of at most one) and its short lists, in one round trip."""
    return _profile().read(session, customer_id=customer_id)


def count(session: Session) -> int:
    stmt = select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None))
    return int(session.scalar(stmt) or 0)
