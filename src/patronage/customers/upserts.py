"""Customers from bulk imports, upserted by their external `user_id`.

New people go in through the columnar bulk path (personal fields sealed there, with their
blind indexes) and get their `user_id` identity, so tracked events find them later. People
already stored are compared field by field first (personal fields decrypted for that, never
logged); only differing fields are written, so a re-run of the same file changes nothing.
An empty value in the file never erases a stored one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patronage.customers import pii
from patronage.customers.bulk import insert_customers
from patronage.customers.models import Customer, Identity
from patronage.kit.bulkwrite import write_columns
from patronage.kit.clock import utcnow
from patronage.kit.lookup import rows_by_keys
from patronage.kit.normalize import normalize_email

CHUNK = 2000
USER_ID = "user_id"
FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "street",
    "birthday",
    "gender",
    "language",
    "country",
    "region",
    "city",
    "postcode_prefix",
    "signup_at",
)


@dataclass
class CustomerUpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _normal(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field == "email":
        return normalize_email(str(value))
    if field == "phone":
        return str(value).strip()
    return value


def customer_ids(session: Session, user_ids: list[str]) -> dict[str, int]:
    query = select(Customer.user_id, Customer.id)
    return {
        str(uid): int(cid) for uid, cid in rows_by_keys(session, query, Customer.user_id, user_ids)
    }


def upsert_customers(
    session: Session, rows: list[dict[str, Any]], *, overwrite: bool = True, source: str = "import"
) -> tuple[dict[str, int], CustomerUpsertCounts]:
    """Rows are {"user_id", and any of FIELDS}; returns user_id -> customer id.

    `overwrite=False` only creates the people not stored yet (an orders import).
    """
    counts = CustomerUpsertCounts()
    by_user = {r["user_id"]: r for r in rows}
    wanted = list(by_user)
    given = [f for f in FIELDS if any(r.get(f) is not None for r in rows)]
    columns = [Customer.user_id, Customer.id, *(getattr(Customer, f) for f in given)]
    stored: dict[str, dict[str, Any]] = {}
    for r in rows_by_keys(session, select(*columns), Customer.user_id, wanted):
        stored[str(r[0])] = dict(zip([c.key for c in columns], r, strict=True))
    fresh = [u for u in wanted if u not in stored]
    changed: list[tuple[int, dict[str, Any]]] = []
    if overwrite:
        for uid, current in stored.items():
            row = by_user[uid]
            diff = {}
            for f in given:
                value = _normal(f, row.get(f))
                if value is not None and current[f] != value:
                    diff[f] = value
            if diff:
                changed.append((int(current["id"]), diff))
    counts.inserted, counts.updated = len(fresh), len(changed)
    counts.unchanged = len(wanted) - len(fresh) - len(changed)
    if fresh:
        now = utcnow()
        cols: dict[str, list[Any]] = {"user_id": fresh}
        for f in given:
            cols[f] = [by_user[u].get(f) for u in fresh]
        cols["created_at"] = [now] * len(fresh)
        cols["updated_at"] = [now] * len(fresh)
        insert_customers(session, cols)
    for customer_id, diff in changed:
        values = dict(diff)
        if "email" in values:
            values["email_bidx"] = pii.email_index(values["email"])
        if "phone" in values:
            values["phone_bidx"] = pii.phone_index(values["phone"])
        if "birthday" in values:
            values["birth_year"] = int(str(values["birthday"])[:4])
        values["updated_at"] = utcnow()
        session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    ids = {u: int(v["id"]) for u, v in stored.items()}
    if fresh:
        ids.update(customer_ids(session, fresh))
        identities = [
            {"customer_id": ids[u], "kind": USER_ID, "value": u, "source": source[:64]}
            for u in fresh
        ]
        statement = _insert(session, Identity).on_conflict_do_nothing(
            index_elements=["kind", "value"]
        )
        first_seen = utcnow()
        if session.get_bind().dialect.name == "postgresql":
            # COPY, like the customers themselves, of the ids nobody holds yet (an alias may
            # hold one); one claimed by another transaction meanwhile fails the whole import
            # (run it again), as a user_id inserted meanwhile does
            held = {
                str(v)
                for (v,) in rows_by_keys(
                    session,
                    select(Identity.value).where(Identity.kind == USER_ID),
                    Identity.value,
                    [i["value"] for i in identities],
                )
            }
            identities = [i for i in identities if i["value"] not in held]
            write_columns(
                session,
                Identity.__table__,  # type: ignore[arg-type]
                {
                    "customer_id": np.array([i["customer_id"] for i in identities], np.int64),
                    "kind": [USER_ID] * len(identities),
                    "value": [i["value"] for i in identities],
                    "source": [source[:64]] * len(identities),
                    "first_seen_at": [first_seen] * len(identities),
                },
            )
            identities = []
        for start in range(0, len(identities), CHUNK):
            session.execute(
                statement,
                [{**i, "first_seen_at": first_seen} for i in identities[start : start + CHUNK]],
            )
    return ids, counts
