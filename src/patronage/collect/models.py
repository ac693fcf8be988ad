"""The append-only event log (Segment spec messages) and the record of bulk imports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patronage.db import Base, BigId, Json, UTCDateTime
from patronage.kit.clock import utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index(None, "customer_id", "timestamp"),
        Index(None, "name", "timestamp"),
        Index(None, "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(16))  # identify|track|page|screen|group|alias
    name: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="SET NULL")
    )
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    source_id: Mapped[int | None] = mapped_column(BigId)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LandedBatch(Base):
    """What one call of the tracking API accepted: committed before the answer, waiting for
    the processor (identity, consent, events, effects), deleted in the transaction that
    processes it (docs/adr/0004-ingest-landing.md). One row a request, not a message: the
    request's cost is then one sealed payload and one row whatever the batch's size.

    `payload`: the validated, normalised messages as a JSON array, sealed. `digest`: of the
    message ids, so that a retried request lands nothing twice (a row carried over from
    version 0008: `event_landing:` and its message id). `done`: how many of the
    messages are processed already (a batch whose processing failed goes on one message at a
    time). `failed`: why a message failed on its own; it is then kept in a row of its own
    (`messages` 1), set aside, never retried in a loop."""

    __tablename__ = "landed_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    digest: Mapped[str] = mapped_column(String(160), unique=True)
    source_id: Mapped[int | None] = mapped_column(BigId)
    source_name: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    messages: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[str] = mapped_column(Text)
    failed: Mapped[str | None] = mapped_column(String(200))


class ImportRun(Base):
    """One bulk import (console or REST upload): what, who, how it went, its progress."""

    __tablename__ = "import_runs"
    __table_args__ = (Index(None, "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # customers|products|orders|events
    file_name: Mapped[str] = mapped_column(String(255))
    file_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    preset: Mapped[str | None] = mapped_column(String(64))
    mapping: Mapped[str | None] = mapped_column(Text)  # TOML / JSON text, when not a preset
    # uploaded|queued|validating|validated|invalid|running|done|aborted|failed
    status: Mapped[str] = mapped_column(String(16))
    skip_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    phase: Mapped[str | None] = mapped_column(String(16))  # validate | write, while running
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    valid: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    detail: Mapped[str | None] = mapped_column(String(500))  # the whole-file error, if any
    created_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
