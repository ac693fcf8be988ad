"""Public functions of the customers capability: profiles, lookup, the customer 360, consent."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from patronage.auth import service as auth_service
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.collect import service as collect_service
from patronage.customers import pii
from patronage.customers import repository as repo
from patronage.customers.consent import DEFAULTS, Purpose
from patronage.customers.models import Consent, Customer, Identity, Milestone
from patronage.customers.schemas import (
    ConsentRead,
    ConsentState,
    CustomerCreate,
    CustomerPage,
    CustomerProfile,
    CustomerRead,
    IdentityRead,
    MergeRead,
    MilestoneRead,
)
from patronage.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from patronage.kit.clock import utcnow
from patronage.kit.pagination import MAX_PAGE_SIZE, PageMeta, PageRequest, PageResult
from patronage.orders import service as orders_service

_EMAILISH = re.compile(r"^[^@\s]+@[^@\s]+$")
_PHONEISH = re.compile(r"^\+?[\d\s().-]{5,32}$")
_IDISH = re.compile(r"^#(\d{1,18})$")


def create_customer(session: Session, data: CustomerCreate, source: str = "api") -> Customer:
    if data.user_id and repo.by_user_id(session, data.user_id):
        raise Conflict("a customer with this user_id already exists")
    customer = Customer(
        user_id=data.user_id,
        first_name=data.first_name,
        last_name=data.last_name,
        street=data.street,
        gender=data.gender,
        language=data.language,
        country=data.country,
        region=data.region,
        city=data.city,
        postcode_prefix=data.postcode[:3] if data.postcode else None,
        signup_at=data.signup_at or utcnow(),
        traits=data.traits,
        is_anonymous=False,
    )
    pii.set_email(customer, str(data.email) if data.email else None)
    pii.set_phone(customer, data.phone)
    pii.set_birthday(customer, data.birthday)
    session.add(customer)
    session.flush()
    if data.user_id:
        session.add(
            Identity(customer_id=customer.id, kind="user_id", value=data.user_id, source=source)
        )
    if data.birthday:
        session.add(
            Milestone(
                customer_id=customer.id,
                kind="birthday",
                month=data.birthday.month,
                day=data.birthday.day,
            )
        )
    session.flush()
    _segments_changed(session, customer.id)
    return customer


def _segments_changed(session: Session, customer_id: int) -> None:
    """Segment freshness: the customer's segments are re-evaluated once this commits."""
    from patronage.segments import service as segments_service  # late: segments imports us

    segments_service.customers_changed(session, [customer_id], {"profile"})


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = repo.get(session, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


def find_by_email(session: Session, email: str) -> Customer | None:
    rows, _ = _search(session, email_bidx=pii.email_index(email), limit=1)
    return rows[0] if rows else None


def find_by_phone(session: Session, phone: str) -> Customer | None:
    rows, _ = _search(session, phone_bidx=pii.phone_index(phone), limit=1)
    return rows[0] if rows else None


def _search(session: Session, **filters: object) -> tuple[list[Customer], int]:
    args: dict[str, object] = {
        "ids": None,
        "email_bidx": None,
        "phone_bidx": None,
        "user_id": None,
        "country": None,
        "signup_from": None,
        "signup_to": None,
        "sort": "id",
        "limit": 50,
        "offset": 0,
    }
    args.update(filters)
    return repo.search(session, **args)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CustomerQuery:
    """A search of the customer list. `q` is typed by people: an email, a phone, #id or user id."""

    q: str | None = None
    email: str | None = None
    phone: str | None = None
    user_id: str | None = None
    customer_id: int | None = None
    country: str | None = None
    signup_from: date | None = None
    signup_to: date | None = None
    sort: str = "id"

    @property
    def uses_pii(self) -> bool:
        q = (self.q or "").strip()
        return bool(self.email or self.phone or _EMAILISH.match(q) or _PHONEISH.match(q))


def search_customers(
    session: Session, query: CustomerQuery, page: PageRequest
) -> PageResult[Customer]:
    if query.sort not in repo.SORTS:
        raise ValidationFailed(f"sort must be one of: {', '.join(repo.SORTS)}")
    email, phone, user_id = query.email, query.phone, query.user_id
    ids = [query.customer_id] if query.customer_id is not None else None
    q = (query.q or "").strip()
    if q:
        if m := _IDISH.match(q):
            ids = [int(m.group(1))]
        elif q.isdigit() and len(q) <= 18 and not _PHONEISH.match(q):
            ids = [int(q)]
        elif _EMAILISH.match(q):
            email = q
        elif _PHONEISH.match(q):
            phone = q
        else:
            user_id = q
    rows, total = _search(
        session,
        ids=ids,
        email_bidx=pii.email_index(email) if email else None,
        phone_bidx=pii.phone_index(phone) if phone else None,
        user_id=user_id,
        country=query.country.upper() if query.country else None,
        signup_from=_start_of(query.signup_from),
        # "to" is inclusive: people mean the whole day they picked
        signup_to=_start_of(query.signup_to + timedelta(days=1) if query.signup_to else None),
        sort=query.sort,
        limit=page.size,
        offset=page.offset,
    )
    return PageResult(rows, total, page.page, page.size)


EXPORT_LIMIT = 100_000
EXPORT_COLUMNS = (
    "id",
    "user_id",
    "gender",
    "birth_year",
    "language",
    "country",
    "region",
    "city",
    "postcode_prefix",
    "signup_at",
    "is_anonymous",
)
EXPORT_PII_COLUMNS = ("email", "phone", "first_name", "last_name", "street", "birthday")


def export_csv(session: Session, query: CustomerQuery, *, with_pii: bool) -> tuple[str, int]:
    """The matching customers as CSV (at most EXPORT_LIMIT rows); personal columns only
    for roles that may see them. Returns the text and the number of rows."""
    columns = EXPORT_COLUMNS + (EXPORT_PII_COLUMNS if with_pii else ())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    written = 0
    page = 1
    while written < EXPORT_LIMIT:
        size = min(MAX_PAGE_SIZE, EXPORT_LIMIT - written)
        batch = search_customers(session, query, PageRequest(page, size)).items
        for customer in batch:
            row = to_read(customer, with_pii=with_pii).model_dump(mode="json")
            writer.writerow([_csv_safe(row[c]) for c in columns])
        written += len(batch)
        if len(batch) < size:
            break
        page += 1
    return out.getvalue(), written


def _csv_safe(value: object) -> object:
    # spreadsheet formula injection: a cell starting with = + - @ must not become a formula
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value


def _start_of(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day) if day else None


def to_read(customer: Customer, *, with_pii: bool) -> CustomerRead:
    personal = {}
    if with_pii:
        personal = {
            "email": customer.email,
            "phone": customer.phone,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "street": customer.street,
            "birthday": date.fromisoformat(customer.birthday) if customer.birthday else None,
        }
    return CustomerRead(
        id=customer.id,
        user_id=customer.user_id,
        pii_visible=with_pii,
        birth_year=customer.birth_year,
        gender=customer.gender,
        language=customer.language,
        country=customer.country,
        region=customer.region,
        city=customer.city,
        postcode_prefix=customer.postcode_prefix,
        signup_at=customer.signup_at,
        is_anonymous=customer.is_anonymous,
        traits=customer.traits or {},
        created_at=customer.created_at,
        **personal,
    )


def consent_states(
    session: Session, customer_id: int, history: Sequence[Row[Any]] | None = None
) -> list[ConsentState]:
    """Current consent per purpose: the newest record, or the default when there is none."""
    latest: dict[str, Row[Any]] = {}
    for row in history if history is not None else repo.consent_history(session, customer_id):
        latest.setdefault(row.purpose, row)
    states = []
    for purpose in Purpose:
        current = latest.get(purpose.value)
        states.append(
            ConsentState(
                purpose=purpose,
                granted=current.granted if current else DEFAULTS[purpose],
                source=current.source if current else "default",
                recorded_at=current.recorded_at if current else None,
            )
        )
    return states


def may_use(session: Session, customer_id: int, purpose: Purpose) -> bool:
    """May this customer's data be used for `purpose`? Every consumer asks before it uses it."""
    return next(s.granted for s in consent_states(session, customer_id) if s.purpose == purpose)


def may_use_existing(session: Session, customer_id: int, purpose: Purpose) -> bool:
    """`may_use` for hot paths: one indexed statement, no ORM objects, no decryption.

    Raises NotFound for an unknown customer, as `get_customer` does.
    """
    exists, granted = repo.consent_of(session, customer_id, purpose.value)
    if not exists:
        raise NotFound(f"no customer {customer_id}")
    return DEFAULTS[purpose] if granted is None else granted


def record_consent(
    session: Session, customer_id: int, purpose: Purpose, granted: bool, source: str
) -> Consent:
    get_customer(session, customer_id)
    row = Consent(
        customer_id=customer_id,
        purpose=purpose.value,
        granted=granted,
        source=source,
        recorded_at=utcnow(),
    )
    session.add(row)
    session.flush()
    _segments_changed(session, customer_id)
    return row


def profile(
    session: Session, customer_id: int, *, with_pii: bool, orders_limit: int = 20
) -> CustomerProfile:
    """The customer 360: traits, identities, consents, orders with everything, latest events.

    Four round trips whatever the customer has (the profile, its orders with their details,
    product names, events): on PostgreSQL the page's time was its ~14 round trips.
    """
    rows = repo.profile_rows(session, customer_id)
    if not rows["customer"]:
        raise NotFound(f"no customer {customer_id}")
    orders, orders_total = orders_service.orders_for_customer(session, customer_id, orders_limit)
    history = rows["consents"]
    return CustomerProfile(
        customer=to_read(rows["customer"][0], with_pii=with_pii),
        identities=[
            IdentityRead.model_validate(i)
            for i in rows["identities"]
            if with_pii or i.kind not in {"email", "phone"}
        ],
        consents=consent_states(session, customer_id, history),
        consent_history=[ConsentRead.model_validate(c) for c in history],
        milestones=[MilestoneRead.model_validate(m) for m in rows["milestones"]]
        if with_pii
        else [],
        merges=[MergeRead.model_validate(m) for m in rows["merges"]],
        orders=orders,
        orders_total=orders_total,
        events=collect_service.latest_events(session, customer_id, 25),
    )


class PersonalDataInUrl(AppError):
    status_code = 400
    code = "personal_data_in_url"


def refuse_personal_data_in_url(query: CustomerQuery) -> None:
    """URLs end up in logs, proxies and browser history: emails and phones go in bodies."""
    if query.uses_pii:
        raise PersonalDataInUrl(
            "send an email or phone in the request body (POST /api/customers/search), "
            "never in the URL"
        )


def _may_see_pii(principal: Principal, query: CustomerQuery | None = None) -> bool:
    with_pii = principal.can(Permission.CUSTOMERS_PII)
    if query is not None and query.uses_pii and not with_pii:
        raise Forbidden("searching by email or phone needs a role that may see personal data")
    return with_pii


def browse(
    session: Session, principal: Principal, query: CustomerQuery, page: PageRequest
) -> CustomerPage:
    """A page of the customer list as `principal` may see it; showing personal data is audited."""
    with_pii = _may_see_pii(principal, query)
    result = search_customers(session, query, page)
    if with_pii and result.items:
        auth_service.audit(
            session, principal, "customer.list_pii", "customer", None, {"count": len(result.items)}
        )
    return CustomerPage(
        items=[to_read(c, with_pii=with_pii) for c in result.items],
        meta=PageMeta(total=result.total, page=result.page, size=result.size, pages=result.pages),
    )


def export_for(session: Session, principal: Principal, query: CustomerQuery) -> tuple[str, int]:
    """CSV of the matching customers as `principal` may see them; always audited."""
    with_pii = _may_see_pii(principal, query)
    text, rows = export_csv(session, query, with_pii=with_pii)
    auth_service.audit(
        session, principal, "customer.export", "customer", None, {"rows": rows, "pii": with_pii}
    )
    return text, rows


def profile_for(session: Session, principal: Principal, customer_id: int) -> CustomerProfile:
    """The customer 360 as `principal` may see it; showing personal data is audited."""
    with_pii = _may_see_pii(principal)
    result = profile(session, customer_id, with_pii=with_pii)
    if with_pii:
        auth_service.audit(session, principal, "customer.view_pii", "customer", str(customer_id))
    return result


def count_customers(session: Session) -> int:
    return repo.count(session)


# -- key rotation (customers/rotation.py) ------------------------------------------------------
from patronage.customers.rotation import KeyStatus as KeyStatus  # noqa: E402
from patronage.customers.rotation import RotationResult as RotationResult  # noqa: E402
from patronage.customers.rotation import add_key as add_key  # noqa: E402
from patronage.customers.rotation import count_pending as count_pending  # noqa: E402
from patronage.customers.rotation import key_status as key_status  # noqa: E402
from patronage.customers.rotation import reencrypt_all as reencrypt_all  # noqa: E402
from patronage.customers.rotation import start_rotation as start_rotation  # noqa: E402

# -- end key rotation ----------------------------------------------------------------------------


# -- collect: identity resolution for the tracking API (owned by the collect helper) -------
# isort: split
from patronage.customers.identity import ProfileFacts as ProfileFacts  # noqa: E402
from patronage.customers.identity import Resolver as Resolver  # noqa: E402
from patronage.customers.identity import explicit_consents as explicit_consents  # noqa: E402
from patronage.customers.identity import may_use_many as may_use_many  # noqa: E402
from patronage.customers.identity import record_consents as record_consents  # noqa: E402

# -- end collect ---------------------------------------------------------------------------


# -- bulk write paths, used by the demo and imports (owned by the demo helper) --------------
# isort: split
from patronage.customers.bulk import insert_consents as insert_consents  # noqa: E402
from patronage.customers.bulk import insert_customers as insert_customers  # noqa: E402
from patronage.customers.bulk import insert_identities as insert_identities  # noqa: E402
from patronage.customers.bulk import insert_milestones as insert_milestones  # noqa: E402
from patronage.customers.bulk import prepare_batch as prepare_batch  # noqa: E402

# -- end bulk write paths ------------------------------------------------------------------


# -- bulk import: customers upserted by user_id (owned by the import helper) ----------------
# isort: split
from patronage.customers.upserts import CustomerUpsertCounts as CustomerUpsertCounts  # noqa: E402
from patronage.customers.upserts import upsert_customers as upsert_customers  # noqa: E402

# -- end bulk import -----------------------------------------------------------------------
