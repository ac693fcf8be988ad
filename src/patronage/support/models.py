"""Support contacts (tickets). The full help desk builds on this table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.db import Base, BigId, UTCDateTime


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    channel: Mapped[str] = mapped_column(String(16))  # email | phone | chat | form
    topic: Mapped[str] = mapped_column(
        String(32)
    )  # delivery | payment | return | product | account
    status: Mapped[str] = mapped_column(String(16))  # open | pending | solved
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    solved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
