"""Setting personal fields keeps their blind indexes in step; nothing else writes them."""

from __future__ import annotations

from datetime import date

from patronage.config import get_cipher
from patronage.customers.models import Customer
from patronage.kit.normalize import normalize_email, normalize_phone


def email_index(email: str) -> bytes | None:
    return get_cipher().blind_index(normalize_email(email), "customers.email")


def phone_index(phone: str) -> bytes | None:
    return get_cipher().blind_index(normalize_phone(phone), "customers.phone")


def set_email(customer: Customer, email: str | None) -> None:
    customer.email = normalize_email(email) if email else None
    customer.email_bidx = email_index(email) if email else None


def set_phone(customer: Customer, phone: str | None) -> None:
    customer.phone = phone.strip() if phone else None
    customer.phone_bidx = phone_index(phone) if phone else None


def set_birthday(customer: Customer, birthday: date | None) -> None:
    customer.birthday = birthday.isoformat() if birthday else None
    # the year in clear serves age bands; month and day live on the birthday milestone
    customer.birth_year = birthday.year if birthday else None
