"""CLV / churn scores per customer: exact values against the CLV package run by hand on the
same transactions, reasons instead of numbers where scoring is impossible, never a NaN."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.analytics import refresh, scores, service
from patronage.analytics.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    score_customers,
    summarize_transactions,
)
from patronage.analytics.models import CustomerScore
from patronage.customers.models import Customer
from patronage.errors import NotFound
from patronage.orders.models import Order, Refund
from tests.analytics.test_features import NOW, build

SHOP = 120  # customers in the synthetic shop


def _synthetic_shop(s: Session) -> tuple[list[int], list[datetime], list[int], int]:
    """A seeded shop big enough for both models to converge, plus one refund-heavy buyer."""
    rng = np.random.default_rng(7)
    ids: list[int] = []
    days: list[datetime] = []
    amounts: list[int] = []
    start = NOW - timedelta(days=700)
    for k in range(SHOP):
        c = Customer(user_id=f"sc-{k}", signup_at=start)
        s.add(c)
        s.flush()
        first = start + timedelta(days=int(rng.integers(0, 500)))
        rate = float(rng.gamma(0.8, 1 / 40))  # purchases per day
        life = float(rng.exponential(300))
        t = first
        n = 0
        while t <= NOW and (t - first).days <= life:
            amount = int(rng.gamma(4, 1500))
            s.add(
                Order(
                    external_id=f"sc-{k}-{n}",
                    customer_id=c.id,
                    status="paid",
                    total_minor=amount,
                    placed_at=t,
                )
            )
            ids.append(c.id)
            days.append(t)
            amounts.append(amount)
            n += 1
            t = t + timedelta(days=max(1, int(rng.exponential(1 / rate))))
    # repeat purchases refunded beyond their value: no spend figure, P(alive) still computed
    c = Customer(user_id="sc-refunds", signup_at=start)
    s.add(c)
    s.flush()
    for n, when in enumerate((NOW - timedelta(days=90), NOW - timedelta(days=30))):
        o = Order(
            external_id=f"sc-r-{n}",
            customer_id=c.id,
            status="paid",
            total_minor=1000,
            placed_at=when,
        )
        s.add(o)
        s.flush()
        s.add(Refund(order_id=o.id, amount_minor=1500, created_at=when))
        ids.append(c.id)
        days.append(when)
        amounts.append(-500)
    s.flush()
    return ids, days, amounts, c.id


def test_scores_equal_the_clv_models_run_by_hand(session: Session, backend: str) -> None:
    ids, days, amounts, refunder = _synthetic_shop(session)
    result = refresh.run(session, NOW, discount_rate=0.02, margin=0.3)

    summary = summarize_transactions(
        np.array(ids),
        np.array([d.date() for d in days], dtype="datetime64[D]"),
        np.array(amounts, dtype=float),
        calibration_end=np.datetime64(NOW.date(), "D"),
        time_unit="W",
    )
    bg = BetaGeoFitter().fit(summary.frequency, summary.recency, summary.T)
    keep = (summary.frequency > 0) & (summary.monetary_value > 0)
    gg = GammaGammaFitter().fit(summary.frequency[keep], summary.monetary_value[keep])
    assert bg.converged_ and gg.converged_
    assert result.details["model"]["purchase_model"]["params"] == bg.params_
    assert result.details["model"]["spend_model"]["params"] == gg.params_

    ref = {
        days_: score_customers(
            bg,
            gg,
            summary.frequency,
            summary.recency,
            summary.T,
            summary.monetary_value,
            horizon=days_ / 7,
            clv_months=12,
            discount_rate=0.02,
            margin=0.3,
        )
        for days_ in (90, 365)
    }
    stored = {r.customer_id: r for r in session.scalars(select(CustomerScore))}
    assert len(stored) == SHOP + 1
    for i, cid in enumerate(summary.customer_ids.tolist()):
        row = stored[cid]
        expect = {
            "p_alive": ref[90].p_alive[i],
            "churn_risk": ref[90].churn_risk[i],
            "expected_purchases_90d": ref[90].expected_purchases[i],
            "expected_purchases_365d": ref[365].expected_purchases[i],
            "expected_spend_minor": ref[90].expected_spend[i],
            "clv_minor": ref[90].clv[i],
        }
        for key, value in expect.items():
            got = getattr(row, key)
            if math.isfinite(value):
                assert got == float(value), (cid, key)
            else:
                assert got is None, (cid, key)

    bad = stored[refunder]
    assert bad.p_alive is not None and bad.expected_purchases_90d is not None
    assert bad.expected_spend_minor is None and bad.clv_minor is None
    assert bad.problems == ["non_positive_monetary_value"]
    assert bad.reason == (
        f"P(alive) {bad.p_alive:.2f}: last of 2 orders was 4 weeks ago; typical gap 9 weeks. "
        "Not computed: repeat purchases with a zero, negative or missing mean spend"
    )
    assert result.details["not_scored"] == {"non_positive_monetary_value": 1}


def test_a_tiny_shop_gets_reasons_not_numbers(session: Session, backend: str) -> None:
    ids = build(session)
    result = refresh.run(session, NOW)
    assert result.details["model"]["purchase_model"]["converged"] is False
    rows = {r.customer_id: r for r in session.scalars(select(CustomerScore))}
    assert set(rows) == set(ids.values())
    for row in rows.values():
        for key in ("p_alive", "churn_risk", "expected_purchases_90d", "clv_minor"):
            assert getattr(row, key) is None
    message = result.details["model"]["purchase_model"]["message"]
    assert rows[ids["A"]].reason == (
        f"Not scored: the purchase model could not be fitted ({message}); the spend model could "
        f"not be fitted ({result.details['model']['spend_model']['message']})"
    )
    assert rows[ids["C"]].reason == "no orders up to now: nothing to score yet"
    assert rows[ids["D"]].problems == ["no_orders"]  # its only order is in the future

    api = service.customer_analytics(session, ids["C"])
    assert api.scores is not None and api.scores.p_alive is None
    assert api.rfm is None
    assert api.features is not None and api.features["orders"] == 0


def test_customer_analytics_before_any_refresh(session: Session) -> None:
    ids = build(session)
    data = service.customer_analytics(session, ids["A"])
    assert data.message == "no analytics refresh has run yet"
    assert data.features is None and data.scores is None
    with pytest.raises(NotFound):
        service.customer_analytics(session, 10**9)


def test_an_empty_shop_refreshes(session: Session) -> None:
    result = refresh.run(session, NOW)
    assert (result.customers, result.buyers, result.segment_moves) == (0, 0, 0)
    assert service.clv_overview(session).scored == 0


@pytest.mark.parametrize(
    ("p", "orders", "recency", "span", "sentence"),
    [
        (
            0.2149,
            7,
            426,
            252,
            "P(alive) 0.21: last of 7 orders was 14 months ago; typical gap 6 weeks",
        ),
        (
            1.0,
            1,
            0,
            0,
            "P(alive) 1.00: one order so far, today; "
            "a customer is only judged lapsed after a repeat purchase",
        ),
        (0.9, 3, 5, 20, "P(alive) 0.90: last of 3 orders was 5 days ago; typical gap 10 days"),
        (
            0.5,
            2,
            800,
            400,
            "P(alive) 0.50: last of 2 orders was 2 years ago; typical gap 13 months",
        ),
    ],
)
def test_reason_sentences(p: float, orders: int, recency: int, span: float, sentence: str) -> None:
    assert scores.reason_sentence(p, orders, recency, span) == sentence


def test_refresh_settings_are_checked(session: Session) -> None:
    from patronage.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="margin"):
        service.refresh_customer_analytics(session, NOW, margin=0)
    with pytest.raises(ValidationFailed, match="discount"):
        service.refresh_customer_analytics(session, NOW, discount_rate=1.5)


def test_validate_holdout_on_the_shop(session: Session) -> None:
    _synthetic_shop(session)
    report = service.validate_holdout(session, 180, now=NOW)
    assert report.calibration_end == (NOW - timedelta(days=180)).date()
    assert report.customers == sum(b.customers for b in report.buckets)
    assert report.total_actual == sum(b.actual for b in report.buckets)
