"""Purchase patterns, cohorts and the funnel: exact values on the hand-built shop.

Counted orders at NOW (2025-06-15 12:00 UTC), see test_features.py:
  A 2025-01-10 Fri 09h 8000 (3 items: 2 x 4000, 1 x 2000), 2025-03-10 Mon 09h 5000 (1 x 5000),
    2025-06-05 Thu 14h 3000 (1 x 3000)   gaps 59 and 87 days
  B 2025-06-14 Sat 18h 2000   E 2024-06-15 Sat 10h -500 (refund > order)   G 2025-05-15 Thu 23h 0
A's events in the last 90 days: views, cart adds, an order; no "Checkout Started".
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.analytics import refresh, service
from tests.analytics.test_features import NOW, build


def _grid(*cells: tuple[int, int, int]) -> list[list[int]]:
    grid = [[0] * 24 for _ in range(7)]
    for weekday, hour, n in cells:
        grid[weekday - 1][hour] = n
    return grid


def test_patterns_of_a_known_shop(session: Session, backend: str) -> None:
    build(session)
    refresh.run(session, NOW)
    p = service.purchase_patterns(session).model_dump()
    assert p["computed_at"] == NOW
    assert p["message"] is None
    assert p["intervals"] == {
        "intervals": 2,
        "mean_days": 73.0,
        "buckets": [
            {"label": "0–7 days", "count": 0},
            {"label": "8–14 days", "count": 0},
            {"label": "15–30 days", "count": 0},
            {"label": "31–60 days", "count": 1},
            {"label": "61–90 days", "count": 1},
            {"label": "91–180 days", "count": 0},
            {"label": "181–365 days", "count": 0},
            {"label": "> 365 days", "count": 0},
        ],
        "buyers": 4,
        "repeat_buyers": 1,
        "repeat_purchase_rate": 0.25,
    }
    assert p["baskets"] == {
        "orders": 3,
        "mean_items": 5 / 3,
        "buckets": [
            {"label": "1 items", "count": 2},
            {"label": "2 items", "count": 0},
            {"label": "3 items", "count": 1},
            {"label": "4–5 items", "count": 0},
            {"label": "6–9 items", "count": 0},
            {"label": "> 9 items", "count": 0},
        ],
    }
    assert [(b["lower_minor"], b["items"], b["buyers"]) for b in p["price_bands"]] == [
        (0, 0, 0),
        (1000, 1, 1),
        (2500, 3, 1),
        (5000, 1, 1),
        (10000, 0, 0),
        (25000, 0, 0),
    ]
    assert p["price_bands"][-1]["upper_minor"] is None
    assert p["timing"] == _grid(
        (5, 9, 1), (1, 9, 1), (4, 14, 1), (6, 18, 1), (6, 10, 1), (4, 23, 1)
    )
    months = {m["month"]: m for m in p["monthly"] if m["orders"]}
    assert len(p["monthly"]) == 24
    assert p["monthly"][0]["month"] == "2023-07"
    assert months == {
        "2024-06": {
            "month": "2024-06",
            "orders": 1,
            "revenue_minor": -500,
            "average_order_minor": -500,
        },
        "2025-01": {
            "month": "2025-01",
            "orders": 1,
            "revenue_minor": 8000,
            "average_order_minor": 8000,
        },
        "2025-03": {
            "month": "2025-03",
            "orders": 1,
            "revenue_minor": 5000,
            "average_order_minor": 5000,
        },
        "2025-05": {"month": "2025-05", "orders": 1, "revenue_minor": 0, "average_order_minor": 0},
        "2025-06": {
            "month": "2025-06",
            "orders": 2,
            "revenue_minor": 5000,
            "average_order_minor": 2500,
        },
    }
    assert p["concentration"] == [
        {"top_percent": 1, "customers": 1, "revenue_share": 16000 / 18000},
        {"top_percent": 10, "customers": 1, "revenue_share": 16000 / 18000},
        {"top_percent": 20, "customers": 1, "revenue_share": 16000 / 18000},
        {"top_percent": 50, "customers": 2, "revenue_share": 1.0},
    ]


def test_cohorts_of_a_known_shop(session: Session, backend: str) -> None:
    build(session)
    refresh.run(session, NOW)
    c = service.cohorts(session).model_dump()
    assert c["months"] == 12
    rows = {r["cohort"]: r for r in c["rows"]}
    assert list(rows) == [f"2024-{m:02d}" for m in range(7, 13)] + [
        f"2025-{m:02d}" for m in range(1, 7)
    ]
    assert rows["2024-07"] == {
        "cohort": "2024-07",
        "customers": 0,
        "active": [0] * 12,
        "retention": [None] * 12,
    }
    assert rows["2025-01"] == {
        "cohort": "2025-01",
        "customers": 1,
        "active": [1, 0, 1, 0, 0, 1],
        "retention": [1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
    }
    assert rows["2025-05"]["active"] == [1, 0]
    assert rows["2025-06"] == {
        "cohort": "2025-06",
        "customers": 1,
        "active": [1],
        "retention": [1.0],
    }
    # E's first order (2024-06) is older than the 12 cohorts shown
    assert sum(r["customers"] for r in c["rows"]) == 3


def test_funnel_of_a_known_shop(session: Session, backend: str) -> None:
    build(session)
    refresh.run(session, NOW)
    f = service.funnel(session).model_dump()
    assert f["days"] == 90
    assert [(s["event"], s["visitors"], s["of_first"], s["abandonment"]) for s in f["steps"]] == [
        ("Product Viewed", 1, 1.0, 0.0),
        ("Product Added", 1, 1.0, 1.0),
        ("Checkout Started", 0, 0.0, None),
        ("Order Completed", 0, 0.0, None),
    ]


def test_no_refresh_yet(session: Session, backend: str) -> None:
    p = service.purchase_patterns(session)
    assert p.message == "no analytics refresh has computed purchase patterns yet"
    assert (p.intervals, p.baskets, p.timing, p.monthly) == (None, None, [], [])
    assert service.cohorts(session).rows == []
    assert service.funnel(session).steps == []


def test_refresh_read_leaves_the_patterns_out(session: Session, backend: str) -> None:
    build(session)
    result = service.refresh_customer_analytics(session, NOW)
    assert "patterns" not in result.details
    assert result.details["engine"] == "duckdb"
