"""The edge of the tracking API: decode a body, validate each message, say why one is refused.

Nothing here touches the database. A refused message is reported with its index and reason
and never reaches the ingest step, so nothing is stored from it.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic_core
from pydantic import ValidationError

from patronage.collect.schemas import MESSAGE, MESSAGES, TYPES
from patronage.errors import AppError, TooLarge, ValidationFailed

MESSAGE_LIMIT = 32 * 1024  # bytes of one message, as Segment
BATCH_LIMIT = 500 * 1024  # bytes of one batch (decompressed), as Segment
MAX_DEPTH = 16  # nesting of objects/arrays inside one message
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
_OUT_OF_RANGE = "{} out of range (after 2000-01-01, at most a day ahead)"


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


@dataclass(slots=True)
class Incoming:
    """One accepted message, normalised; the ingest step works on these only."""

    index: int
    message_id: str
    type: str
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    sent_at: datetime | None
    properties: dict[str, Any]
    context: dict[str, Any]
    traits: dict[str, Any] = field(default_factory=dict)
    previous_id: str | None = None
    group_id: str | None = None
    received_at: datetime | None = None  # when the API accepted it (the landing keeps it)


@dataclass(slots=True)
class Refusal:
    index: int
    message_id: str | None
    reason: str


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> Any:
    """Bytes on the wire -> JSON value. gzip is inflated with a ceiling (no decompression
    bombs); a truncated stream, bad UTF-8 or malformed JSON is a 400."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in {"gzip", "x-gzip"}:
        raw = _gunzip(raw, limit)
    elif encoding not in {"", "identity"}:
        raise BadRequest(f"unsupported Content-Encoding '{encoding[:32]}' (use gzip)")
    if len(raw) > limit:
        raise TooLarge(f"request body over {limit} bytes")
    if not raw.strip():
        raise BadRequest("empty body: send a JSON object")
    try:
        return pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the body is not valid UTF-8") from None
        reason = str(exc).split(" at line")[0][:80]
        raise BadRequest(f"malformed JSON: {reason}") from None


def _gunzip(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header, auto-detected
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise BadRequest("the gzip body is corrupt") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"decompressed body over {limit} bytes")
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")
    return out


def messages_of_batch(body: Any) -> tuple[list[Any], dict[str, Any]]:
    """The envelope of /v1/batch -> (raw messages, shared fields)."""
    if not isinstance(body, dict):
        raise BadRequest("a batch is a JSON object with a 'batch' array")
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise BadRequest("a batch is a JSON object with a 'batch' array")
    if not batch:
        raise BadRequest("the batch is empty")
    shared = {k: body[k] for k in ("sentAt", "context", "writeKey") if k in body}
    return batch, shared


def validate_messages(
    raws: list[Any], shared: dict[str, Any], received_at: datetime, forced_type: str | None
) -> tuple[list[Incoming], list[Refusal]]:
    """Validate every message on its own: one bad message never spoils the others."""
    prepared: list[dict[str, Any] | None] = []
    refusals: list[Refusal] = []
    for index, raw in enumerate(raws):
        reason = _precheck(raw, forced_type)
        if reason:
            refusals.append(Refusal(index, _message_id_of(raw), reason))
            prepared.append(None)
            continue
        assert isinstance(raw, dict)
        if shared:
            raw = _with_shared(raw, shared)
        if forced_type:
            raw = {**raw, "type": forced_type}
        prepared.append(raw)
    candidates = [(i, r) for i, r in enumerate(prepared) if r is not None]
    models: list[Any]
    try:  # one call for the whole batch when it is clean (the common case)
        models = MESSAGES.validate_python([r for _, r in candidates])
    except ValidationError:
        models = []
        for index, raw in candidates:
            try:
                models.append(MESSAGE.validate_python(raw))
            except ValidationError as exc:
                refusals.append(Refusal(index, _message_id_of(raw), _explain(exc)))
                models.append(None)
    accepted: list[Incoming] = []
    for (index, raw), model in zip(candidates, models, strict=True):
        if model is None:
            continue
        incoming, reason = _normalise(index, raw, model, received_at)
        if incoming is None:
            refusals.append(Refusal(index, _message_id_of(raw), reason))
        else:
            accepted.append(incoming)
    refusals.sort(key=lambda r: r.index)
    return accepted, refusals


def _precheck(raw: Any, forced_type: str | None) -> str:
    if not isinstance(raw, dict):
        return "a message must be a JSON object"
    kind = forced_type or raw.get("type")
    if kind not in TYPES:
        shown = str(kind)[:32] if isinstance(kind, str) else "missing"
        return f"unknown message type '{shown}' (expected one of {', '.join(TYPES)})"
    encoded = pydantic_core.to_json(raw)
    if len(encoded) > MESSAGE_LIMIT:
        return f"message over {MESSAGE_LIMIT // 1024} KB"
    if b"\\u0000" in encoded:
        return "text must not contain NUL characters"
    if encoded.count(b"{") + encoded.count(b"[") > MAX_DEPTH and _depth(raw) > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    return ""


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                return deepest
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node if isinstance(v, dict | list))
    return deepest


def _with_shared(raw: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    merged = dict(raw)
    if "sentAt" in shared and "sentAt" not in raw:
        merged["sentAt"] = shared["sentAt"]
    ctx = shared.get("context")
    if isinstance(ctx, dict) and ctx:
        own = raw.get("context")
        merged["context"] = {**ctx, **own} if isinstance(own, dict) else ctx
    return merged


def _message_id_of(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("messageId")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)[:128]
    return None


def _explain(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(p) for p in err["loc"] if p not in TYPES)
    return f"{loc or 'message'}: {err['msg']}"[:200]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _normalise(
    index: int, raw: dict[str, Any], m: Any, received_at: datetime
) -> tuple[Incoming | None, str]:
    kind: str = m.type
    user_id = m.userId
    anonymous_id = m.anonymousId
    if kind != "alias" and not user_id and not anonymous_id:
        return None, "userId or anonymousId is required"
    try:
        sent_at = _utc(m.sentAt)
        original = _utc(m.timestamp or m.originalTimestamp)
    except OverflowError:  # e.g. year 1 with a positive offset (found by schemathesis)
        return None, _OUT_OF_RANGE.format("timestamp")
    # check before the arithmetic: far-off years overflow it
    for label, value in (("timestamp", original), ("sentAt", sent_at)):
        if value is not None and not EARLIEST <= value <= received_at + FUTURE_SLACK:
            return None, _OUT_OF_RANGE.format(label)
    # the spec's clock-skew correction: the device clock is off by (receivedAt - sentAt)
    if original is None:
        timestamp = received_at
    elif sent_at is not None:
        timestamp = original + (received_at - sent_at)
    else:
        timestamp = original
    if not EARLIEST <= timestamp <= received_at + FUTURE_SLACK:
        return None, _OUT_OF_RANGE.format("timestamp")
    context = m.context
    name: str | None = None
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    if kind == "track":
        name = m.event
        properties = m.properties
    elif kind in {"page", "screen"}:
        name = m.name
        properties = m.properties
        if m.category:
            properties = {**properties, "category": m.category}
    elif kind in {"identify", "group"}:
        traits = m.traits
    incoming = Incoming(
        index=index,
        message_id=m.messageId or _derived_id(raw),
        type=kind,
        name=name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        timestamp=timestamp,
        sent_at=sent_at,
        properties=properties,
        context=context,
        traits=traits,
        previous_id=m.previousId if kind == "alias" else None,
        group_id=m.groupId if kind == "group" else None,
        received_at=received_at,
    )
    return incoming, ""


def _derived_id(raw: dict[str, Any]) -> str:
    """A message without messageId gets one derived from its content, so that a client
    retrying the same message still never stores it twice."""
    stable = {k: v for k, v in raw.items() if k not in {"sentAt", "writeKey"}}
    return "sha256:" + hashlib.sha256(pydantic_core.to_json(stable)).hexdigest()[:40]


def check_single(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("a message is a JSON object")
    return body


def refuse_all(refusals: list[Refusal]) -> ValidationFailed:
    first = refusals[0].reason
    return ValidationFailed(first)
