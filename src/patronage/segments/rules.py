"""The segment rule language: a JSON document of nested conditions, validated precisely.

A rule is a tree. Groups combine conditions (`and`, `or`, `not`); leaves test one thing about
a customer: a profile trait, an analytics feature (or its percentile), a score, the RFM
segment, tracked behaviour, orders, consent, or membership in another segment. Every value is
checked against the field it is compared with, every limit is enforced before the document is
parsed (so 10,000 conditions or 10,000 levels of nesting cost nothing), and an error names the
condition by its path (`$.conditions[2].at_least`) and says what is wrong.

There is no regular expression anywhere: text matching is `contains`, `starts_with` and
`ends_with` (plain substrings, at most MAX_TEXT characters), which cannot take forever.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from patronage.customers.consent import Purpose
from patronage.errors import ValidationFailed

MAX_CONDITIONS = 200  # every node of the tree counts, groups included
MAX_DEPTH = 10
MAX_VALUES = 1000  # values of one `in` list
MAX_TEXT = 200
MAX_FILTERS = 20  # property filters of one event condition
MAX_DAYS = 36_500
MAX_DOCUMENT = 65_536  # bytes of JSON

RFM_SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "Can't Lose Them",
    "At Risk",
    "Hibernating",
    "Lost",
)

# field -> kind: what may be compared with it
TRAITS: dict[str, str] = {
    "gender": "text",
    "language": "text",
    "country": "text",
    "region": "text",
    "city": "text",
    "postcode_prefix": "text",
    "birth_year": "number",
    "age": "number",  # calendar years: year(now) - birth_year
    "is_anonymous": "bool",
}
FEATURES: dict[str, str] = {
    **dict.fromkeys(
        (
            "orders",
            "purchase_days",
            "recency_days",
            "t_days",
            "total_spend_minor",
            "aov_minor",
            "avg_item_price_minor",
            "distinct_categories",
            "return_rate",
            "cancellation_rate",
            "discount_rate",
            "sessions_7d",
            "sessions_30d",
            "sessions_90d",
            "product_views_7d",
            "product_views_30d",
            "product_views_90d",
            "cart_adds",
            "abandoned_carts",
            "preferred_hour",
            "preferred_weekday",
            "recommendation_clicks",
            "support_contacts",
            "reviews",
            "avg_rating",
            "tenure_days",
        ),
        "number",
    ),
    "preferred_channel": "text",
    "preferred_device": "text",
    "age_band": "text",
}
SCORES = (
    "p_alive",
    "churn_risk",
    "expected_purchases_90d",
    "expected_purchases_365d",
    "expected_spend_minor",
    "clv_minor",
    "rfm_r",
    "rfm_f",
    "rfm_m",
)

Op = Literal[
    "eq",
    "ne",
    "lt",
    "lte",
    "gt",
    "gte",
    "between",
    "in",
    "not_in",
    "is_set",
    "is_not_set",
    "contains",
    "starts_with",
    "ends_with",
]
ORDERING = {"lt", "lte", "gt", "gte", "between"}
TEXT_ONLY = {"contains", "starts_with", "ends_with"}
NO_VALUE = {"is_set", "is_not_set"}
LISTS = {"in", "not_in"}

PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


def _check_text(value: str) -> None:
    if len(value) > MAX_TEXT:
        raise ValueError(f"text values are at most {MAX_TEXT} characters")
    if "\x00" in value:
        raise ValueError("text values may not contain a NUL character")


def check_comparison(subject: str, kind: str, op: str, value: Any) -> None:
    """Is `op value` a sensible test of a `kind` field? Raises ValueError saying why not."""
    if op in NO_VALUE:
        if value is not None:
            raise ValueError(f"'{op}' takes no value")
        return
    if value is None:
        raise ValueError(f"'{op}' needs a value")
    if op in TEXT_ONLY and kind != "text":
        raise ValueError(f"'{op}' applies to text; {subject} is a {kind}")
    if op in ORDERING and kind == "bool":
        raise ValueError(f"'{op}' does not apply to {subject} (true or false)")
    if op in ORDERING and kind == "text":
        raise ValueError(f"'{op}' compares numbers; {subject} is text")
    values: list[Any]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("'between' takes a list of two values [low, high]")
        values = value
        if all(_kind_of(v) == "number" for v in values) and values[0] > values[1]:
            raise ValueError("'between' needs low <= high")
    elif op in LISTS:
        if not isinstance(value, list) or not value:
            raise ValueError(f"'{op}' takes a non-empty list of values")
        if len(value) > MAX_VALUES:
            raise ValueError(f"'{op}' takes at most {MAX_VALUES} values")
        values = value
    else:
        if isinstance(value, list):
            raise ValueError(f"'{op}' takes one value, not a list")
        values = [value]
    for v in values:
        got = _kind_of(v)
        if got != kind:
            raise ValueError(f"{subject} is compared with a {kind} value; got a {got}")
        if isinstance(v, str):
            _check_text(v)
        if isinstance(v, float) and v != v:
            raise ValueError("NaN is not a value")


class Trait(_Strict):
    """A profile trait: `{"type": "trait", "field": "country", "op": "eq", "value": "DE"}`."""

    type: Literal["trait"]
    field: str
    op: Op
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _valid(self) -> Trait:
        if self.field not in TRAITS:
            raise ValueError(f"unknown trait {self.field!r}; one of: {', '.join(TRAITS)}")
        check_comparison(self.field, TRAITS[self.field], self.op, self.value)
        return self


class Feature(_Strict):
    """An analytics feature, or (`percentile`: true) its percentile among all customers."""

    type: Literal["feature"]
    feature: str
    op: Op
    value: Scalar | list[Scalar] | None = None
    percentile: bool = False

    @model_validator(mode="after")
    def _valid(self) -> Feature:
        if self.feature not in FEATURES:
            raise ValueError(f"unknown feature {self.feature!r}; one of: {', '.join(FEATURES)}")
        kind = FEATURES[self.feature]
        if self.percentile:
            if kind != "number":
                raise ValueError(f"percentiles apply to numbers; {self.feature} is text")
            if self.op not in {"gt", "gte", "lt", "lte"}:
                raise ValueError("a percentile is tested with gt, gte, lt or lte")
            if _kind_of(self.value) != "number" or not 0 <= float(self.value) <= 100:  # type: ignore[arg-type]
                raise ValueError("a percentile is a number from 0 to 100")
            return self
        check_comparison(self.feature, kind, self.op, self.value)
        return self


class Score(_Strict):
    """CLV / churn scores, and the R, F, M quintile scores (1-5)."""

    type: Literal["score"]
    score: str
    op: Op
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _valid(self) -> Score:
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; one of: {', '.join(SCORES)}")
        check_comparison(self.score, "number", self.op, self.value)
        return self


class Rfm(_Strict):
    """The customer's RFM segment is one of these."""

    type: Literal["rfm"]
    segments: list[str] = Field(min_length=1, max_length=len(RFM_SEGMENTS))

    @model_validator(mode="after")
    def _valid(self) -> Rfm:
        unknown = [s for s in self.segments if s not in RFM_SEGMENTS]
        if unknown:
            raise ValueError(
                f"unknown RFM segment {unknown[0]!r}; one of: {', '.join(RFM_SEGMENTS)}"
            )
        return self


class PropertyFilter(_Strict):
    """A test of one property of an event: `{"property": "category", "op": "eq", ...}`."""

    property: str
    op: Literal["eq", "ne", "in", "lt", "lte", "gt", "gte", "contains", "is_set"]
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _valid(self) -> PropertyFilter:
        if not PROPERTY_KEY.match(self.property):
            raise ValueError("a property name is a letter or _ then up to 63 letters, digits or _")
        if self.op == "is_set":
            check_comparison(self.property, "text", self.op, self.value)
            return self
        first = self.value[0] if isinstance(self.value, list) and self.value else self.value
        kind = _kind_of(first)
        if kind not in {"text", "number", "bool"}:
            raise ValueError(f"'{self.op}' needs a value (text, number or true/false)")
        check_comparison(self.property, kind, self.op, self.value)
        return self


def _event_name(value: str) -> str:
    if not value or len(value) > 255 or "\x00" in value:
        raise ValueError("an event name has 1 to 255 characters and no NUL")
    return value


class Event(_Strict):
    """Performed `event` (matching `where`) at least `at_least` times in the last
    `within_days` days (ever, without it)."""

    type: Literal["event"]
    event: str
    where: list[PropertyFilter] = Field(default_factory=list, max_length=MAX_FILTERS)
    at_least: int = Field(default=1, ge=1, le=1_000_000)
    within_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)

    @model_validator(mode="after")
    def _valid(self) -> Event:
        _event_name(self.event)
        return self


class NotDone(_Strict):
    """Has not performed `event` (matching `where`) since `since` (a date) or in the last
    `since_days` days; never having done it counts."""

    type: Literal["not_done"]
    event: str
    where: list[PropertyFilter] = Field(default_factory=list, max_length=MAX_FILTERS)
    since_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    since: date | None = None

    @model_validator(mode="after")
    def _valid(self) -> NotDone:
        _event_name(self.event)
        if (self.since_days is None) == (self.since is None):
            raise ValueError("give exactly one of since_days or since (a date)")
        return self


class BoughtCategory(_Strict):
    """Has a non-cancelled order with a product of category `category_id` (in the window)."""

    type: Literal["bought_category"]
    category_id: int = Field(ge=1, le=2**63 - 1)
    within_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


class Spent(_Strict):
    """Total of non-cancelled orders placed in the last `within_days` days (ever, without
    it), compared with `amount_minor`; customers without orders spent 0."""

    type: Literal["spent"]
    op: Literal["gt", "gte", "lt", "lte"]
    amount_minor: int = Field(ge=0, le=2**62)
    within_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


class Consent(_Strict):
    """The customer's current consent for `purpose` (the default when never given)."""

    type: Literal["consent"]
    purpose: Purpose
    granted: bool = True


# why a customer came, from a page view's context (first match wins)
PAID_SEARCH_MEDIA = ("cpc", "ppc", "paidsearch", "paid_search")
PAID_SOCIAL_MEDIA = ("paid_social", "paidsocial", "social_paid")
SEARCH_ENGINES = ("google.", "bing.", "duckduckgo.", "yahoo.", "ecosia.", "baidu.", "yandex.")
SOCIAL_SITES = ("facebook.", "instagram.", "t.co/", "twitter.", "x.com", "linkedin.",
                "tiktok.", "pinterest.", "reddit.", "youtube.")  # fmt: skip
VisitReason = Literal[
    "email", "paid_search", "paid_social", "campaign", "organic_search", "social", "referral",
    "direct",
]  # fmt: skip
VISIT_REASONS: tuple[str, ...] = get_args(VisitReason)


def visit_reason(medium: str | None, referrer: str | None) -> str:
    """The reason of a page view from its campaign medium and referrer (both lower-cased)."""
    if medium:
        if medium == "email":
            return "email"
        if medium in PAID_SEARCH_MEDIA:
            return "paid_search"
        if medium in PAID_SOCIAL_MEDIA:
            return "paid_social"
        return "campaign"
    if referrer:
        if any(s in referrer for s in SEARCH_ENGINES):
            return "organic_search"
        if any(s in referrer for s in SOCIAL_SITES):
            return "social"
        return "referral"
    return "direct"


class Visit(_Strict):
    """Came (a page view) for one of `reasons` — campaign medium, referrer — in the window."""

    type: Literal["visit"]
    reasons: list[VisitReason] = Field(min_length=1, max_length=len(VISIT_REASONS))
    within_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


class InSegment(_Strict):
    """Member of another segment (its rule is evaluated in place: always current)."""

    type: Literal["segment"]
    segment_id: int = Field(ge=1, le=2**63 - 1)


def _persona_id(value: Any) -> Any:
    if isinstance(value, str | bool) or (isinstance(value, float) and not value.is_integer()):
        shown = json.dumps(value, ensure_ascii=False)[: MAX_TEXT + 2]
        raise ValueError(f"a persona is named by its id (a whole number); got {shown}")
    return value


class InPersona(_Strict):
    """The customer's persona in the latest clustering is one of `personas` (persona ids:
    they survive refreshes). The ids are checked against the stored personas when a rule is
    saved or previewed (segments.service)."""

    type: Literal["persona"]
    personas: list[Annotated[int, BeforeValidator(_persona_id), Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=MAX_VALUES
    )


class And(_Strict):
    type: Literal["and"]
    conditions: list[Node] = Field(min_length=1)


class Or(_Strict):
    type: Literal["or"]
    conditions: list[Node] = Field(min_length=1)


class Not(_Strict):
    type: Literal["not"]
    condition: Node


Node = Annotated[
    And
    | Or
    | Not
    | Trait
    | Feature
    | Score
    | Rfm
    | Event
    | NotDone
    | BoughtCategory
    | Spent
    | Consent
    | Visit
    | InSegment
    | InPersona,
    Field(discriminator="type"),
]
TYPES = (
    "and",
    "or",
    "not",
    "trait",
    "feature",
    "score",
    "rfm",
    "event",
    "not_done",
    "bought_category",
    "spent",
    "consent",
    "visit",
    "segment",
    "persona",
)
And.model_rebuild()
Or.model_rebuild()
Not.model_rebuild()
_ADAPTER: TypeAdapter[Node] = TypeAdapter(Node)


def _path(loc: tuple[int | str, ...]) -> str:
    """`$.conditions[2].at_least` from pydantic's location (discriminator tags left out)."""
    out = "$"
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in TYPES and (
            previous is None or isinstance(previous, int) or previous == "condition"
        ):
            pass  # the union member chosen by `type`, not a field
        else:
            out += f".{part}"
        previous = part
    return out


def _problem(message: str) -> str:
    return message.removeprefix("Value error, ")


def _precheck(raw: Any) -> None:
    """Limits enforced on the raw document, iteratively: no recursion, no parsing first."""
    stack: list[tuple[Any, str, int]] = [(raw, "$", 1)]
    count = 0
    while stack:
        node, path, depth = stack.pop()
        if not isinstance(node, dict):
            raise ValidationFailed([{"path": path, "problem": "a condition is a JSON object"}])
        count += 1
        if count > MAX_CONDITIONS:
            raise ValidationFailed(
                [{"path": "$", "problem": f"a rule has at most {MAX_CONDITIONS} conditions"}]
            )
        if depth > MAX_DEPTH:
            raise ValidationFailed(
                [{"path": path, "problem": f"conditions nest at most {MAX_DEPTH} levels deep"}]
            )
        kind = node.get("type")
        if kind in ("and", "or") and isinstance(node.get("conditions"), list):
            for i, child in enumerate(node["conditions"]):
                stack.append((child, f"{path}.conditions[{i}]", depth + 1))
        elif kind == "not" and "condition" in node:
            stack.append((node["condition"], f"{path}.condition", depth + 1))


def parse_rule(raw: Any) -> Node:
    """A validated rule from its JSON value (or text); ValidationFailed lists each problem
    as {path, problem}."""
    if isinstance(raw, str | bytes):
        if len(raw) > MAX_DOCUMENT:
            raise ValidationFailed([{"path": "$", "problem": "the rule is too long"}])
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ValidationFailed([{"path": "$", "problem": "the rule is not JSON"}]) from None
    _precheck(raw)
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            problem = _problem(str(err.get("msg", "invalid")))
            if err.get("type") == "union_tag_invalid":
                problem = f"unknown condition type; one of: {', '.join(TYPES)}"
            elif err.get("type") == "union_tag_not_found":
                problem = f"a condition needs a 'type': one of {', '.join(TYPES)}"
            elif err.get("type") == "extra_forbidden":
                problem = "unknown field"
            problems.append({"path": _path(tuple(err.get("loc", ()))), "problem": problem})
        raise ValidationFailed(problems) from None


def dump_rule(rule: Node) -> dict[str, Any]:
    return _ADAPTER.dump_python(rule, mode="json", exclude_defaults=True)  # type: ignore[no-any-return]


def walk(rule: Node) -> Iterator[Node]:
    """Every node of the tree, parents first."""
    stack: list[Node] = [rule]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, And | Or):
            stack.extend(reversed(node.conditions))
        elif isinstance(node, Not):
            stack.append(node.condition)


def segment_refs(rule: Node) -> set[int]:
    return {n.segment_id for n in walk(rule) if isinstance(n, InSegment)}


def with_paths(rule: Node) -> Iterator[tuple[str, Node]]:
    """Every node of the tree with its path (`$.conditions[2].condition`), parents first."""
    stack: list[tuple[str, Node]] = [("$", rule)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, And | Or):
            stack.extend(
                (f"{path}.conditions[{i}]", c)
                for i, c in reversed(list(enumerate(node.conditions)))
            )
        elif isinstance(node, Not):
            stack.append((f"{path}.condition", node.condition))


def topics(rule: Node) -> set[str]:
    """What changes can alter the rule's answer for a customer (segment refs not followed):
    `profile` (traits, consent), `event:<name>`, `orders`, `analytics`."""
    found: set[str] = set()
    for n in walk(rule):
        if isinstance(n, Trait | Consent):
            found.add("profile")
        elif isinstance(n, Event | NotDone):
            found.add(f"event:{n.event}")
        elif isinstance(n, Visit):
            found.add("visits")
        elif isinstance(n, BoughtCategory | Spent):
            found.add("orders")
        elif isinstance(n, Feature | Score | Rfm):
            found.add("analytics")
        elif isinstance(n, InPersona):
            found.add("personas")
    return found


def time_based(rule: Node) -> bool:
    """Does the answer change with time alone (a window that slides, an age)?"""
    for n in walk(rule):
        if isinstance(n, Event | BoughtCategory | Spent | Visit) and n.within_days is not None:
            return True
        if isinstance(n, NotDone) and n.since_days is not None:
            return True
        if isinstance(n, Trait) and n.field == "age":
            return True
    return False


# -- the readable form -------------------------------------------------------------------------

_OPS = {
    "eq": "is",
    "ne": "is not",
    "lt": "<",
    "lte": "≤",
    "gt": ">",
    "gte": "≥",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
}


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _compare(subject: str, op: str, value: Any) -> str:
    if op == "is_set":
        return f"{subject} is known"
    if op == "is_not_set":
        return f"{subject} is unknown"
    if op == "between":
        return f"{subject} is between {_value(value[0])} and {_value(value[1])}"
    return f"{subject} {_OPS[op]} {_value(value)}"


def _window(days: int | None) -> str:
    return f" in the last {days:,} days" if days else ""


def _filters(where: list[PropertyFilter]) -> str:
    if not where:
        return ""
    return " where " + " and ".join(_compare(f.property, f.op, f.value) for f in where)


def describe(
    rule: Node, names: dict[int, str] | None = None, personas: dict[int, str] | None = None
) -> str:
    """The rule in words, e.g. `country is "DE" and (RFM segment is one of [...] or ...)`;
    `names` and `personas` name the segments and personas referred to by id."""
    names = names or {}
    persona_names = personas or {}

    def text(node: Node, nested: bool) -> str:
        if isinstance(node, And | Or):
            joined = f" {node.type} ".join(text(c, True) for c in node.conditions)
            return f"({joined})" if nested and len(node.conditions) > 1 else joined
        if isinstance(node, Not):
            return f"not {text(node.condition, True)}"
        if isinstance(node, Trait):
            return _compare(node.field.replace("_", " "), node.op, node.value)
        if isinstance(node, Feature):
            subject = node.feature.replace("_", " ")
            if node.percentile:
                return f"percentile of {subject} {_OPS[node.op]} {_value(node.value)}"
            return _compare(subject, node.op, node.value)
        if isinstance(node, Score):
            return _compare(node.score.replace("_", " "), node.op, node.value)
        if isinstance(node, Rfm):
            return f"RFM segment is one of {_value(node.segments)}"
        if isinstance(node, Event):
            times = "" if node.at_least == 1 else f" at least {node.at_least:,} times"
            return (
                f"performed {_value(node.event)}{_filters(node.where)}{times}"
                f"{_window(node.within_days)}"
            )
        if isinstance(node, NotDone):
            since = (
                f"in the last {node.since_days:,} days"
                if node.since_days
                else f"since {node.since}"
            )
            return f"has not performed {_value(node.event)}{_filters(node.where)} {since}"
        if isinstance(node, BoughtCategory):
            return f"bought from category #{node.category_id}{_window(node.within_days)}"
        if isinstance(node, Spent):
            return (
                f"spent {_OPS[node.op]} {node.amount_minor / 100:,.2f}"
                f"{_window(node.within_days) or ' in total'}"
            )
        if isinstance(node, Consent):
            return f"{'consents' if node.granted else 'does not consent'} to {node.purpose.value}"
        if isinstance(node, Visit):
            return f"came for {_value(list(node.reasons))}{_window(node.within_days)}"
        if isinstance(node, InPersona):
            labels = [
                json.dumps(persona_names[p], ensure_ascii=False) if p in persona_names else f"#{p}"
                for p in node.personas
            ]
            return f"persona is one of [{', '.join(labels)}]"
        assert isinstance(node, InSegment)
        label = names.get(node.segment_id)
        return f"in segment {_value(label)}" if label else f"in segment #{node.segment_id}"

    return text(rule, False)
