"""The built-in segment families, created automatically and editable like any other.

Fixed ones (age bands, gender, RFM segments, cart abandoners, one-time / lapsed buyers, most
valuable, loyalty tiers, recommendation clickers, customer-care affinity) and data-driven ones
(the store's most common languages, countries and regions; metropolitan customers are those
of the most common cities, remote ones those of any other known city).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.segments import rules as r
from patronage.segments.engine import clause

TOP = 10  # languages, countries, regions, cities
AGE_BANDS = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 120))
Builtin = tuple[str, str, str, str, dict[str, Any]]  # key, family, name, description, rule


def _trait(field: str, op: str, value: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "trait", "field": field, "op": op}
    if value is not None:
        out["value"] = value
    return out


def _and(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"type": "and", "conditions": list(conditions)}


def _top(session: Session, field: str, limit: int = TOP) -> list[str]:
    c = clause("customers")
    col = c.c[field]
    rows = session.execute(
        select(col, func.count())
        .where(col.is_not(None), col != "", c.c.merged_into_id.is_(None))
        .group_by(col)
        .order_by(func.count().desc(), col)
        .limit(limit)
    ).all()
    return [str(v) for v, _ in rows]


def fixed() -> Iterator[Builtin]:
    for lo, hi in AGE_BANDS:
        label = f"{lo}+" if hi >= 120 else f"{lo}–{hi}"
        yield (
            f"age:{lo}",
            "demographic",
            f"Age {label}",
            f"Customers aged {label} (from the birth year).",
            _trait("age", "between", [lo, hi]),
        )
    for gender in ("female", "male"):
        yield (
            f"gender:{gender}",
            "demographic",
            f"Gender: {gender}",
            f"Customers whose gender is {gender}.",
            _trait("gender", "eq", gender),
        )
    for name in r.RFM_SEGMENTS:
        yield (
            f"rfm:{name}",
            "behavioural",
            f"RFM: {name}",
            f"Buyers in the RFM segment {name} (latest analytics refresh).",
            {"type": "rfm", "segments": [name]},
        )
    yield (
        "cart_abandoners",
        "behavioural",
        "Cart abandoners",
        "Added a product in the last 7 days and did not complete an order since.",
        _and(
            {"type": "event", "event": "Product Added", "within_days": 7},
            {"type": "not_done", "event": "Order Completed", "since_days": 7},
        ),
    )
    yield (
        "one_time_buyers",
        "behavioural",
        "One-time buyers",
        "Exactly one counted order.",
        {"type": "feature", "feature": "orders", "op": "eq", "value": 1},
    )
    yield (
        "lapsed_buyers",
        "behavioural",
        "Lapsed buyers",
        "Bought before, but nothing in the last 180 days.",
        _and(
            {"type": "feature", "feature": "orders", "op": "gte", "value": 1},
            {"type": "spent", "op": "lte", "amount_minor": 0, "within_days": 180},
        ),
    )
    yield (
        "most_valuable",
        "behavioural",
        "Most valuable",
        "The top 10% of customers by total spend.",
        {
            "type": "feature",
            "feature": "total_spend_minor",
            "percentile": True,
            "op": "gte",
            "value": 90,
        },
    )
    for reason, label in (
        ("email", "email campaigns"),
        ("paid_search", "paid search"),
        ("paid_social", "paid social ads"),
        ("campaign", "other campaigns"),
        ("organic_search", "search engines"),
        ("social", "social networks"),
        ("referral", "links on other sites"),
        ("direct", "direct visits"),
    ):
        yield (
            f"visit:{reason}",
            "situational",
            f"Came via {label}",
            f"Visited in the last 30 days from {label} (campaign medium, referrer).",
            {"type": "visit", "reasons": [reason], "within_days": 30},
        )
    yield (
        "loyalty:gold",
        "psychographic",
        "Loyalty: gold",
        "Champions or loyal customers for more than a year.",
        _and(
            {"type": "rfm", "segments": ["Champions", "Loyal"]},
            {"type": "feature", "feature": "tenure_days", "op": "gte", "value": 365},
        ),
    )
    yield (
        "loyalty:silver",
        "psychographic",
        "Loyalty: silver",
        "Champions or loyal customers of less than a year, and potential loyalists.",
        {
            "type": "or",
            "conditions": [
                _and(
                    {"type": "rfm", "segments": ["Champions", "Loyal"]},
                    {"type": "feature", "feature": "tenure_days", "op": "lt", "value": 365},
                ),
                {"type": "rfm", "segments": ["Potential Loyalist"]},
            ],
        },
    )
    yield (
        "recommendation_clickers",
        "psychographic",
        "Recommendation clickers",
        "Clicked recommendations at least 3 times.",
        {"type": "feature", "feature": "recommendation_clicks", "op": "gte", "value": 3},
    )
    yield (
        "customer_care_affine",
        "psychographic",
        "Customer-care affine",
        "Contacted support at least twice.",
        {"type": "feature", "feature": "support_contacts", "op": "gte", "value": 2},
    )


def from_data(session: Session) -> Iterator[Builtin]:
    for language in _top(session, "language"):
        yield (
            f"language:{language}",
            "demographic",
            f"Language: {language}",
            f"Customers who speak {language}.",
            _trait("language", "eq", language),
        )
    for country in _top(session, "country"):
        yield (
            f"country:{country}",
            "geographic",
            f"Country: {country}",
            f"Customers in {country}.",
            _trait("country", "eq", country),
        )
    for region in _top(session, "region"):
        yield (
            f"region:{region}"[:64],
            "geographic",
            f"Region: {region}"[:120],
            f"Customers in the region {region}.",
            _trait("region", "eq", region),
        )
    cities = _top(session, "city")
    if cities:
        yield (
            "metropolitan",
            "geographic",
            "Metropolitan",
            f"Customers in the {len(cities)} cities with the most customers.",
            _trait("city", "in", cities),
        )
        yield (
            "remote",
            "geographic",
            "Remote",
            "Customers in any other known city.",
            _and(_trait("city", "is_set"), _trait("city", "not_in", cities)),
        )


def all_builtins(session: Session) -> list[Builtin]:
    return [*fixed(), *from_data(session)]
