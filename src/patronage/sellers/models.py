"""Third-party sellers on the marketplace."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.db import Base, BigId, UTCDateTime
from patronage.kit.clock import utcnow


class Seller(Base):
    __tablename__ = "sellers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|warned|suspended
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
