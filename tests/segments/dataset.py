"""A small hand-built dataset for the rule tests: every table the compiler reads.

Customer 5 is merged into 1 and never a member of anything.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from patronage.segments import rules as r
from patronage.segments.compiler import TABLES
from patronage.segments.engine import _ARROW, DuckDBEngine, percentile_offset
from patronage.segments.local import Facts, LocalCompiler, parse_properties, reason_of

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
N = NOW.replace(tzinfo=None)
ALL = {1, 2, 3, 4, 6, 7, 8}  # live customers


def ago(days: float) -> datetime:
    return N - timedelta(days=days)


def _customer(id: int, country: str | None, gender: str | None, language: str | None,
              birth_year: int | None, region: str | None = None, city: str | None = None,
              anonymous: bool = False, merged: int | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": id,
        "birth_year": birth_year,
        "gender": gender,
        "language": language,
        "country": country,
        "region": region,
        "city": city,
        "postcode_prefix": None if country is None else f"{id}0",
        "is_anonymous": anonymous,
        "merged_into_id": merged,
    }


def _features(cid: int, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(TABLES["features"])
    row.update(customer_id=cid, **values)
    return row


def _ev(cid: int, name: str, days: float, **props: Any) -> dict[str, Any]:
    return {
        "customer_id": cid,
        "name": name,
        "timestamp": ago(days),
        "properties": json.dumps(props),
    }


def _visit(cid: int, days: float, **context: Any) -> dict[str, Any]:
    return {"customer_id": cid, "timestamp": ago(days), "context": json.dumps(context)}


RAW: dict[str, list[dict[str, Any]]] = {
    "customers": [
        _customer(1, "DE", "female", "de", 1990, "Bavaria", "Munich"),
        _customer(2, "DE", "male", "en", 1960, "Berlin", "Berlin"),
        _customer(3, "FR", "female", "fr", 2000, "IDF", "Paris"),
        _customer(4, "US", None, "en", None),
        _customer(5, "DE", "female", "de", 1985, merged=1),
        _customer(6, "GB", "other", "en", 1975, anonymous=True),
        _customer(7, "FR", "male", None, 1999, "PACA", "Nice"),
        _customer(8, "IT", "female", "it", 1950, "Lazio", "Rome"),
    ],
    "features": [
        _features(1, orders=1, total_spend_minor=30000, recency_days=10, preferred_channel="web"),
        _features(2, orders=1, total_spend_minor=1000, recency_days=400, preferred_channel="app"),
        _features(3, orders=1, total_spend_minor=20000, recency_days=200),
        _features(6, orders=0, total_spend_minor=0),
        _features(7, orders=0, total_spend_minor=0, preferred_channel="web"),
        _features(5, orders=3, total_spend_minor=99999),  # merged away: never counted
    ],
    "rfm": [
        {"customer_id": 1, "r": 5, "f": 5, "m": 5, "segment": "Champions"},
        {"customer_id": 2, "r": 1, "f": 1, "m": 1, "segment": "Lost"},
        {"customer_id": 3, "r": 3, "f": 4, "m": 4, "segment": "Loyal"},
    ],
    "scores": [
        {
            **dict.fromkeys(TABLES["scores"]),
            "customer_id": 1,
            "clv_minor": 1200.5,
            "churn_risk": 0.1,
        },
        {**dict.fromkeys(TABLES["scores"]), "customer_id": 2, "churn_risk": 0.9},
        {**dict.fromkeys(TABLES["scores"]), "customer_id": 3, "clv_minor": 300.0},
    ],
    "consents": [
        {
            "id": 1,
            "customer_id": 1,
            "purpose": "marketing_email",
            "granted": True,
            "recorded_at": ago(150),
        },
        {
            "id": 2,
            "customer_id": 1,
            "purpose": "marketing_email",
            "granted": False,
            "recorded_at": ago(90),
        },
        {
            "id": 3,
            "customer_id": 2,
            "purpose": "marketing_email",
            "granted": True,
            "recorded_at": ago(90),
        },
        {
            "id": 4,
            "customer_id": 3,
            "purpose": "analytics",
            "granted": False,
            "recorded_at": ago(9),
        },
        {
            "id": 5,
            "customer_id": 4,
            "purpose": "marketing_email",
            "granted": True,
            "recorded_at": ago(5),
        },
        {
            "id": 6,
            "customer_id": 8,
            "purpose": "necessary",
            "granted": False,
            "recorded_at": ago(5),
        },
    ],
    "events": [
        _ev(1, "Product Viewed", 1, category="shoes", price=50),
        _ev(1, "Product Viewed", 2, category="shoes", price=55.5),
        _ev(1, "Product Viewed", 40, category="shoes", price=50),
        _ev(1, "Order Completed", 10, total=300),
        _ev(2, "Product Viewed", 3, category="hats"),
        _ev(2, "Product Viewed", 5, category="shoes", price=120),
        _ev(3, "Product Added", 1, sku="A1", gift=True),
        _ev(3, "Order Completed", 200, total=200),
        _ev(4, "Product Viewed", 1, category=7),
        _ev(5, "Product Viewed", 1, category="shoes", price=1),
        _ev(7, "Product Viewed", 100, category="shoes", price=10),
        _ev(8, "Product Viewed", 2, category=None),
    ],
    "visits": [
        _visit(1, 3, page={"referrer": "https://www.google.com/search?q=shoes"}),
        _visit(2, 10, campaign={"medium": "email", "name": "june"}),
        _visit(3, 40, campaign={"medium": "CPC"}, page={"referrer": "https://google.com"}),
        _visit(4, 2, page={"referrer": "https://t.co/abc"}),
        _visit(6, 1, page={"url": "https://shop.example.com/"}),
        _visit(7, 5, page={"referrer": "https://blog.example.org/post"}),
        _visit(8, 1, campaign={"medium": ""}, page={"referrer": ""}),
    ],
    "orders": [
        {
            "id": 10,
            "customer_id": 1,
            "status": "delivered",
            "total_minor": 30000,
            "placed_at": ago(10),
        },
        {
            "id": 11,
            "customer_id": 1,
            "status": "cancelled",
            "total_minor": 99999,
            "placed_at": ago(5),
        },
        {"id": 12, "customer_id": 2, "status": "paid", "total_minor": 1000, "placed_at": ago(400)},
        {
            "id": 13,
            "customer_id": 3,
            "status": "delivered",
            "total_minor": 20000,
            "placed_at": ago(200),
        },
        {
            "id": 14,
            "customer_id": 7,
            "status": "cancelled",
            "total_minor": 5000,
            "placed_at": ago(1),
        },
    ],
    "order_items": [
        {"order_id": 10, "product_id": 100},
        {"order_id": 10, "product_id": 101},
        {"order_id": 11, "product_id": 102},
        {"order_id": 12, "product_id": 100},
        {"order_id": 13, "product_id": 102},
        {"order_id": 14, "product_id": 101},
    ],
    "products": [
        {"id": 100, "category_id": 1},
        {"id": 101, "category_id": 2},
        {"id": 102, "category_id": 3},
        {"id": 103, "category_id": None},
    ],
    # each customer's persona (personas 1 and 2; 5 is merged away: never counted; 3 has none)
    "personas": [
        {"customer_id": 1, "persona_id": 1},
        {"customer_id": 2, "persona_id": 2},
        {"customer_id": 4, "persona_id": 1},
        {"customer_id": 5, "persona_id": 1},
        {"customer_id": 7, "persona_id": 2},
        {"customer_id": 8, "persona_id": 2},
    ],
}


def percentiles(feature: str, p: float) -> float | None:
    live = {c["id"] for c in RAW["customers"]}  # the refresh's rows (here: all of them)
    values = sorted(
        row[feature]
        for row in RAW["features"]
        if row[feature] is not None and row["customer_id"] in live
    )
    return float(values[percentile_offset(p, len(values))]) if values else None


def engine(now: datetime = NOW) -> DuckDBEngine:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for name, cols in TABLES.items():
        rows = RAW.get(name, [])
        if name == "clock":
            rows = [{"now": now.replace(tzinfo=None)}]
        data = pa.table(
            {c: pa.array([row[c] for row in rows], type=_ARROW[t]) for c, t in cols.items()}
        )
        DuckDBEngine.register(con, name, data)
    return DuckDBEngine(con)


def facts() -> dict[int, Facts]:
    out = {
        c["id"]: Facts(c["id"], {k: v for k, v in c.items() if k not in {"id", "merged_into_id"}})
        for c in RAW["customers"]
        if c["merged_into_id"] is None
    }
    for name in ("features", "rfm", "scores"):
        for row in RAW[name]:
            if row["customer_id"] in out:
                setattr(out[row["customer_id"]], name, dict(row))
    for row in RAW["personas"]:
        if row["customer_id"] in out:
            out[row["customer_id"]].persona = row["persona_id"]
    for row in RAW["consents"]:
        if row["customer_id"] in out:
            out[row["customer_id"]].consents.append(
                (row["recorded_at"], row["id"], row["purpose"], row["granted"])
            )
    for row in RAW["events"]:
        if row["customer_id"] in out:
            out[row["customer_id"]].events.append(
                (row["name"], row["timestamp"], parse_properties(row["properties"]))
            )
    for row in RAW["visits"]:
        if row["customer_id"] in out:
            reason = reason_of(parse_properties(row["context"]))
            out[row["customer_id"]].visits.append((row["timestamp"], reason))
    cats = {p["id"]: p["category_id"] for p in RAW["products"]}
    for o in RAW["orders"]:
        lines = frozenset(
            cats[i["product_id"]]
            for i in RAW["order_items"]
            if i["order_id"] == o["id"] and cats[i["product_id"]] is not None
        )
        out[o["customer_id"]].orders.append((o["placed_at"], o["total_minor"], o["status"], lines))
    return out


def no_segments(segment_id: int) -> r.Node:
    raise AssertionError(f"no segment {segment_id} in this dataset")


def both(
    rule: r.Node, now: datetime = NOW, segments: Any = no_segments
) -> tuple[set[int], set[int]]:
    """Members by the Ibis compiler on DuckDB and by the per-customer evaluator."""
    eng = engine(now)
    try:
        compiled = eng.compiler(segments, percentiles)
        duck = set(eng.members(compiled, rule))
    finally:
        eng.close()
    local = LocalCompiler(now, rules=segments, percentile=percentiles).compile(rule)
    return duck, {cid for cid, f in facts().items() if local(f)}
