"""Bulk writes of customers, identities, consents and milestones (imports, the demo shop).

Batches are columns (see `patronage.kit.bulkwrite`). Personal fields arrive in clear and
are sealed here exactly as `pii.set_*` seal them one at a time: the email normalised, both
email and phone with their blind index, every value encrypted with the active key under
its column's context. Nothing personal reaches the database in clear.

Rows must already be valid (the importer rejects bad rows before this point); the database
still enforces keys and uniqueness, and a violation fails the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.config import get_cipher
from patronage.customers import pii
from patronage.customers.models import PII_FIELDS, Consent, Customer, Identity, Milestone
from patronage.kit.bulkwrite import (
    BulkWriteError,
    ColumnData,
    Prepared,
    dialect_of,
    prepare_columns,
    write_columns,
    write_prepared,
)
from patronage.kit.normalize import normalize_email

_DERIVED = ("email_bidx", "phone_bidx", "key_version")
TABLES: dict[str, Table] = {
    "customers": Customer.__table__,  # type: ignore[dict-item]
    "identities": Identity.__table__,  # type: ignore[dict-item]
    "consents": Consent.__table__,  # type: ignore[dict-item]
    "milestones": Milestone.__table__,  # type: ignore[dict-item]
}


def prepare_batch(table: str, columns: Mapping[str, ColumnData], dialect: str) -> Prepared:
    """Spell a batch of `table` for `dialect` (another process may do it); see kit.bulkwrite.

    Customers' personal columns are sealed here, so they never leave this step in clear.
    """
    if table not in TABLES:
        raise BulkWriteError(f"customers has no table {table}")
    if table == "customers":
        columns = seal_customers(columns)
    return prepare_columns(TABLES[table], columns, dialect)


def insert_customers(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """Insert customers; personal columns (email, phone, names, street, birthday) in clear.

    `birthday` takes ISO dates ('1990-04-01') or `date` objects; `birth_year` is derived
    from it unless given. Blind indexes and the key version are computed, never taken.
    """
    return write_prepared(session, prepare_batch("customers", columns, dialect_of(session)))


def seal_customers(columns: Mapping[str, ColumnData]) -> dict[str, ColumnData]:
    """The customers' columns with personal values encrypted and blind-indexed."""
    given = [name for name in _DERIVED if name in columns]
    if given:
        raise BulkWriteError(f"customers: {', '.join(given)} are computed, do not pass them")
    cols: dict[str, ColumnData] = dict(columns)
    rows = len(next(iter(cols.values()))) if cols else 0
    cipher = get_cipher()
    if "email" in cols:
        emails = [normalize_email(e) if e else None for e in _as_list(cols["email"])]
        cols["email"] = emails
        cols["email_bidx"] = [pii.email_index(e) if e else None for e in emails]
    if "phone" in cols:
        phones = [p.strip() if p else None for p in _as_list(cols["phone"])]
        cols["phone"] = phones
        cols["phone_bidx"] = [pii.phone_index(p) if p else None for p in phones]
    if "birthday" in cols:
        birthdays = [_iso_date(b) for b in _as_list(cols["birthday"])]
        cols["birthday"] = birthdays
        if "birth_year" not in cols:
            cols["birth_year"] = [int(b[:4]) if b else None for b in birthdays]
    encrypt = cipher.encrypt
    for field in PII_FIELDS:
        if field in cols:
            context = f"customers.{field}"
            cols[field] = [encrypt(v, context) for v in _as_list(cols[field])]
    cols["key_version"] = np.full(rows, cipher.keyring.active, dtype=np.int64)
    return cols


def insert_identities(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """customer_id, kind (anonymous_id | user_id | email | phone), value, source, first_seen_at."""
    return write_columns(session, TABLES["identities"], columns)


def insert_consents(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """customer_id, purpose, granted, source, recorded_at: consent history rows."""
    return write_columns(session, TABLES["consents"], columns)


def insert_milestones(session: Session, columns: Mapping[str, ColumnData]) -> int:
    """customer_id, kind, label, month, day, year."""
    return write_columns(session, TABLES["milestones"], columns)


def _as_list(data: ColumnData) -> list[Any]:
    return data.tolist() if isinstance(data, np.ndarray) else list(data)


def _iso_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value)).isoformat()
