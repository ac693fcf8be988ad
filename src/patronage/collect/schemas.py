"""Shapes of the tracking API (Segment HTTP tracking spec) and of stored events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from patronage.kit.pagination import PageMeta

ID = Annotated[str, Field(min_length=1, max_length=255)]


class EventRead(BaseModel):
    type: str
    name: str | None
    timestamp: datetime
    properties: dict[str, Any]


class _Message(BaseModel):
    """Fields every message may carry; unknown top-level fields (integrations, channel…) are
    accepted and ignored, as Segment does."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, str_max_length=65536)

    messageId: str | None = Field(default=None, min_length=1, max_length=128)
    userId: ID | None = None
    anonymousId: ID | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)


class IdentifyMessage(_Message):
    type: Literal["identify"]
    traits: dict[str, Any] = Field(default_factory=dict)


class TrackMessage(_Message):
    type: Literal["track"]
    event: str = Field(min_length=1, max_length=255)
    properties: dict[str, Any] = Field(default_factory=dict)


class PageMessage(_Message):
    type: Literal["page"]
    name: str | None = Field(default=None, max_length=255)
    category: str | None = Field(default=None, max_length=255)
    properties: dict[str, Any] = Field(default_factory=dict)


class ScreenMessage(_Message):
    type: Literal["screen"]
    name: str | None = Field(default=None, max_length=255)
    category: str | None = Field(default=None, max_length=255)
    properties: dict[str, Any] = Field(default_factory=dict)


class GroupMessage(_Message):
    type: Literal["group"]
    groupId: ID
    traits: dict[str, Any] = Field(default_factory=dict)


class AliasMessage(_Message):
    type: Literal["alias"]
    previousId: ID
    userId: ID


Message = Annotated[
    IdentifyMessage | TrackMessage | PageMessage | ScreenMessage | GroupMessage | AliasMessage,
    Field(discriminator="type"),
]
MESSAGE = TypeAdapter(Message)
MESSAGES = TypeAdapter(list[Message])
TYPES = ("identify", "track", "page", "screen", "group", "alias")


class Batch(BaseModel):
    """`POST /v1/batch`: shared fields apply to every message that lacks them."""

    model_config = ConfigDict(extra="ignore")

    batch: list[dict[str, Any]] = Field(max_length=2500)
    writeKey: str | None = None
    sentAt: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)


class Rejected(BaseModel):
    index: int = Field(description="position of the message in the batch (0-based)")
    messageId: str | None
    reason: str


class Ok(BaseModel):
    success: Literal[True] = True


class Accepted(Ok):
    rejected: list[Rejected] = Field(
        default_factory=list, description="batch only: messages refused, with the reason"
    )


def request_schema(kind: str) -> dict[str, Any]:
    """OpenAPI request body of a tracking endpoint (for clients and schemathesis)."""
    models: dict[str, type[BaseModel]] = {
        "identify": IdentifyMessage,
        "track": TrackMessage,
        "page": PageMessage,
        "screen": ScreenMessage,
        "group": GroupMessage,
        "alias": AliasMessage,
    }
    if kind == "batch":
        schema = Batch.model_json_schema()
        schema["properties"]["batch"]["items"] = {
            "oneOf": [_inline(m.model_json_schema()) for m in models.values()]
        }
    else:
        schema = _inline(models[kind].model_json_schema())
        schema["properties"]["type"] = {"type": "string", "enum": [kind]}
        schema["required"] = [r for r in schema.get("required", []) if r != "type"]
        schema["properties"]["writeKey"] = {"type": "string"}
    return {"content": {"application/json": {"schema": schema}}, "required": True}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("title", None)
    return schema


class ImportReject(BaseModel):
    row: int = Field(description="1-based record number in the file (the header not counted)")
    column: str = Field(description="the file's column ('' when the whole row is refused)")
    reason: str = Field(description="why; never quotes the value")


class ImportRead(BaseModel):
    """One recorded import; `rejects` lists the first refused rows (all: GET …/rejects)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    file_name: str
    file_bytes: int
    preset: str | None
    status: str = Field(
        description="uploaded | queued | validating | validated | invalid | running | done "
        "| aborted (rows refused, nothing written) | failed"
    )
    skip_invalid: bool
    phase: str | None
    progress_done: int
    progress_total: int
    rows: int
    valid: int
    rejected_rows: int
    counts: dict[str, int]
    detail: str | None
    created_by: str
    started_at: datetime
    finished_at: datetime | None
    rejects: list[ImportReject] = Field(default_factory=list)


class ImportPage(PageMeta):
    items: list[ImportRead]


class ImportConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skip_invalid: bool = Field(False, description="import the valid rows even if some are refused")


class IngestionStatus(BaseModel):
    """Where the messages the tracking API accepted are (docs/collect.md)."""

    events: int = Field(description="events stored")
    waiting: int = Field(description="messages acknowledged and landed, not yet processed")
    set_aside: int = Field(description="messages whose processing failed on their own (kept)")
