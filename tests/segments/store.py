"""The hand-built dataset (tests/segments/dataset.py) written into a real store (test-only:
inserts through every capability's models)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from patronage.analytics.models import CustomerFeatures, CustomerScore, RfmScore
from patronage.catalog.models import Category, Product
from patronage.collect.models import Event
from patronage.customers.models import Consent, Customer
from patronage.orders.models import Order, OrderItem
from patronage.segments.models import Persona, PersonaMember
from tests.segments.dataset import RAW, N

PERSONAS = {1: "Young city shoppers", 2: "Lapsed bargain hunters"}  # 3: retired

COMPUTED = N.replace(tzinfo=UTC)


def _aware(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value


def load(session: Session) -> None:
    for row in sorted(RAW["customers"], key=lambda c: c["merged_into_id"] is not None):
        session.add(Customer(**{k: v for k, v in row.items() if k != "merged_into_id"}))
    session.flush()
    for row in RAW["customers"]:
        if row["merged_into_id"]:
            session.get_one(Customer, row["id"]).merged_into_id = row["merged_into_id"]
    for row in RAW["consents"]:
        session.add(Consent(**{**row, "recorded_at": _aware(row["recorded_at"]), "source": "test"}))
    for i, row in enumerate(RAW["events"]):
        session.add(
            Event(
                message_id=f"m{i}",
                type="track",
                name=row["name"],
                customer_id=row["customer_id"],
                properties=json.loads(row["properties"]),
                context={},
                timestamp=_aware(row["timestamp"]),
            )
        )
    for i, row in enumerate(RAW["visits"]):
        session.add(
            Event(
                message_id=f"v{i}",
                type="page",
                name=None,
                customer_id=row["customer_id"],
                properties={},
                context=json.loads(row["context"]),
                timestamp=_aware(row["timestamp"]),
            )
        )
    for cat in (1, 2, 3):
        session.add(Category(id=cat, external_id=f"c{cat}", name=f"Category {cat}"))
    session.flush()
    for row in RAW["products"]:
        session.add(Product(**row, external_id=f"p{row['id']}", name="thing", price_minor=100))
    session.flush()
    for row in RAW["orders"]:
        session.add(
            Order(**{**row, "placed_at": _aware(row["placed_at"])}, external_id=f"o{row['id']}")
        )
    session.flush()
    for row in RAW["order_items"]:
        session.add(OrderItem(**row, quantity=1, unit_price_minor=100))
    zero = {
        c.key: 0
        for c in CustomerFeatures.__table__.columns
        if not c.nullable and c.key not in {"customer_id", "computed_at"}
    }
    for row in RAW["features"]:
        values = {k: v for k, v in row.items() if v is not None}
        session.add(CustomerFeatures(**{**zero, **values, "computed_at": COMPUTED}))
    for row in RAW["rfm"]:
        session.add(RfmScore(**row, computed_at=COMPUTED))
    for row in RAW["scores"]:
        session.add(CustomerScore(**row, computed_at=COMPUTED, reason="test"))
    for pid, name in PERSONAS.items():
        session.add(Persona(id=pid, name=name, computed_at=COMPUTED))
    session.add(Persona(id=3, name="Retired persona", active=False, computed_at=COMPUTED))
    session.flush()
    for row in RAW["personas"]:
        session.add(PersonaMember(**row, computed_at=COMPUTED))
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        for name in (
            "customers",
            "consents",
            "events",
            "categories",
            "products",
            "orders",
            "segment_personas",
        ):
            session.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), 1000)"))
