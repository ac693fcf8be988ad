"""The console's segment builder: rows of a form turned into a rule document.

Each row is one condition: a kind, a subject (trait, feature, score, event name, consent
purpose, category or segment id, RFM segments), an operator, a value and a number of days.
Rows are combined with `and` or `or`; a JSON document typed in the advanced box wins over the
rows. Whatever comes out is validated by `rules.parse_rule`, like any other rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from patronage.segments import rules as r

KINDS = (
    ("trait", "Profile trait"),
    ("feature", "Analytics feature"),
    ("percentile", "Feature percentile"),
    ("score", "Score (CLV, churn, R/F/M)"),
    ("rfm", "RFM segment is one of"),
    ("event", "Performed event (at least N times)"),
    ("not_done", "Has not performed event"),
    ("bought_category", "Bought from category"),
    ("spent", "Spent (minor units)"),
    ("consent", "Consent granted"),
    ("segment", "Member of segment"),
    ("persona", "Persona is one of"),
)
OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "is_set", "is_not_set",
       "contains", "starts_with", "ends_with")  # fmt: skip
MAX_ROWS = 50


@dataclass
class Row:
    kind: str = "trait"
    subject: str = ""
    op: str = "eq"
    value: str = ""
    days: str = ""
    negate: bool = False


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _int(text: str) -> Any:
    try:
        return int(text.strip())
    except ValueError:
        return text.strip() or None


def _persona(text: str, personas: Mapping[str, int]) -> Any:
    """A persona id from its id or its name (any case); what is neither stays as typed, and
    validation says what is wrong with it."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return personas.get(text.casefold(), text)


def condition(row: Row, personas: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The condition of one row; `personas` maps persona names (case-folded) to ids."""
    days = _int(row.days) if row.days.strip() else None
    value: Any
    if row.op in {"in", "not_in", "between"}:
        value = [_scalar(v) for v in row.value.split(",") if v.strip()]
    elif row.op in {"is_set", "is_not_set"}:
        value = None
    else:
        value = _scalar(row.value) if row.value.strip() else None
    kind = row.kind
    out: dict[str, Any]
    if kind == "trait":
        out = {"type": "trait", "field": row.subject, "op": row.op, "value": value}
    elif kind in {"feature", "percentile"}:
        out = {"type": "feature", "feature": row.subject, "op": row.op, "value": value}
        if kind == "percentile":
            out["percentile"] = True
    elif kind == "score":
        out = {"type": "score", "score": row.subject, "op": row.op, "value": value}
    elif kind == "rfm":
        out = {"type": "rfm", "segments": [s.strip() for s in row.subject.split(",") if s.strip()]}
    elif kind == "event":
        out = {"type": "event", "event": row.subject, "at_least": _int(row.value or "1")}
        if days is not None:
            out["within_days"] = days
    elif kind == "not_done":
        out = {"type": "not_done", "event": row.subject, "since_days": days}
    elif kind == "bought_category":
        out = {"type": "bought_category", "category_id": _int(row.subject)}
        if days is not None:
            out["within_days"] = days
    elif kind == "spent":
        out = {"type": "spent", "op": row.op, "amount_minor": _int(row.value)}
        if days is not None:
            out["within_days"] = days
    elif kind == "consent":
        granted = _scalar(row.value) if row.value.strip() else True
        out = {"type": "consent", "purpose": row.subject, "granted": granted}
    elif kind == "segment":
        out = {"type": "segment", "segment_id": _int(row.subject)}
    elif kind == "persona":
        named = {k.casefold(): v for k, v in (personas or {}).items()}
        out = {
            "type": "persona",
            "personas": [_persona(p, named) for p in row.subject.split(",") if p.strip()],
        }
    else:
        out = {"type": kind}
    if value is None and "value" in out:
        del out["value"]
    return {"type": "not", "condition": out} if row.negate else out


def rule_from_form(
    rows: Sequence[Row],
    combine: str,
    advanced: str,
    personas: Mapping[str, int] | None = None,
) -> dict[str, Any] | str:
    """The rule document (or, from the advanced box, its JSON text for parse_rule);
    `personas` (name -> id) lets a persona row name personas by name."""
    if advanced.strip():
        return advanced
    conditions = [condition(row, personas) for row in rows[:MAX_ROWS]]
    if len(conditions) == 1:
        return conditions[0]
    return {"type": "or" if combine == "or" else "and", "conditions": conditions}


def rows_from_form(form: Any) -> list[Row]:
    """Rows from a submitted form: parallel lists kind / subject / op / value / days / negate
    ("not" or empty)."""
    kinds = form.getlist("kind")[:MAX_ROWS]

    def at(name: str, i: int) -> str:
        values = form.getlist(name)
        return str(values[i]) if i < len(values) else ""

    return [
        Row(
            kind=str(kind),
            subject=at("subject", i),
            op=at("op", i) or "eq",
            value=at("value", i),
            days=at("days", i),
            negate=at("negate", i) == "not",
        )
        for i, kind in enumerate(kinds)
    ]


def pretty(rule: dict[str, Any]) -> str:
    return json.dumps(rule, indent=2, ensure_ascii=False)


SUBJECT_HINTS = {
    "trait": ", ".join(r.TRAITS),
    "feature": ", ".join(r.FEATURES),
    "score": ", ".join(r.SCORES),
    "rfm": ", ".join(r.RFM_SEGMENTS),
}
