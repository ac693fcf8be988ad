"""Purchase patterns, cohorts and the funnel, as Ibis expressions on any engine (engine.py).

Definitions (docs/analytics.md) — counted orders as in features.py (placed by `now`, not
cancelled, net of refunds), times UTC:
- cohort of a buyer = calendar month of the first counted order; retention[c][k] = buyers of
  cohort c with a counted order in month c + k (k = 0 is the cohort itself, so 100 %);
- repeat interval = whole UTC days between two consecutive counted orders of one customer;
- basket size = items (sum of quantities) in a counted order;
- price band = band of an item's unit price, counted in items and in distinct buyers;
- timing = counted orders per ISO weekday (1 = Monday) and hour;
- funnel = visitors (customer, else anonymous id) with events in the last FUNNEL_DAYS days:
  those who viewed a product, of them those who added one to a cart, of them those who started
  a checkout, of them those who completed an order. Abandonment at a step = 1 - next / this.

Calendar months come from epoch days by integer arithmetic (civil_from_days), so every engine
gives the same month whatever its session time zone.
"""

from __future__ import annotations

from typing import Any

import ibis
from ibis import _

from patronage.analytics.engine import Store
from patronage.analytics.features import DAY_US, HOUR_US, Tables, counted_orders

COHORT_MONTHS = 12
MONTHS = 24
FUNNEL_DAYS = 90
FUNNEL_STEPS = (
    ("Product Viewed", "viewed a product"),
    ("Product Added", "added to cart"),
    ("Checkout Started", "started checkout"),
    ("Order Completed", "ordered"),
)
INTERVAL_BUCKETS = ((0, 7), (8, 14), (15, 30), (31, 60), (61, 90), (91, 180), (181, 365))
BASKET_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 9))
# unit price bands in minor units (lower bound inclusive); the last is open
PRICE_BANDS = (0, 1000, 2500, 5000, 10000, 25000)


def month_index(days: Any) -> Any:
    """year * 12 + month - 1 of an epoch day >= 0 (H. Hinnant's civil_from_days).

    The same integer formula for an Ibis column and for a Python int.
    """
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 - 12 * (mp // 10)  # 1..12
    year = yoe + era * 400 + mp // 10
    return year * 12 + month - 1


def month_key(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _bucket(value: ibis.IntegerValue, buckets: tuple[tuple[int, int], ...]) -> ibis.IntegerValue:
    """Index of the (lo, hi) bucket holding `value`; len(buckets) past the last."""
    return ibis.cases(
        *((value <= hi, i) for i, (_lo, hi) in enumerate(buckets)), else_=len(buckets)
    )


def _labels(buckets: tuple[tuple[int, int], ...], unit: str) -> list[str]:
    labels = [f"{lo}" if lo == hi else f"{lo}–{hi}" for lo, hi in buckets]
    return [f"{label} {unit}" for label in labels] + [f"> {buckets[-1][1]} {unit}"]


def _good(store: Store, now_us: int, t: Tables) -> ibis.Table:
    c = store["customers"]
    live = c.filter(c.merged_into_id.isnull()).select(customer_id=c.id)
    o = counted_orders(t, now_us)
    o = o.filter(~o.cancelled).join(live, "customer_id")
    return o.mutate(day=o.placed_us // DAY_US, month=month_index(o.placed_us // DAY_US))


def cohorts(store: Store, good: ibis.Table, now_month: int) -> dict[str, Any]:
    active = good.select("customer_id", "month").distinct()
    first = active.group_by("customer_id").agg(cohort=_.month.min())
    first = first.filter(first.cohort > now_month - COHORT_MONTHS)
    joined = active.join(first, "customer_id")
    joined = joined.mutate(k=joined.month - joined.cohort)
    matrix = joined.group_by(["cohort", "k"]).agg(customers=_.customer_id.nunique())
    counts = {(int(r["cohort"]), int(r["k"])): int(r["customers"]) for r in store.rows(matrix)}
    rows = []
    for cohort in range(now_month - COHORT_MONTHS + 1, now_month + 1):
        size = counts.get((cohort, 0), 0)
        active_by_k = [counts.get((cohort, k), 0) for k in range(now_month - cohort + 1)]
        rows.append(
            {
                "cohort": month_key(cohort),
                "customers": size,
                "active": active_by_k,
                "retention": [n / size if size else None for n in active_by_k],
            }
        )
    return {"months": COHORT_MONTHS, "rows": rows}


def intervals(store: Store, good: ibis.Table) -> dict[str, Any]:
    w = ibis.window(group_by=good.customer_id, order_by=good.placed_us)
    gaps = good.mutate(prev=good.day.lag().over(w))
    gaps = gaps.filter(gaps.prev.notnull()).mutate(gap=_.day - _.prev)
    gaps = gaps.mutate(b=_bucket(gaps.gap, INTERVAL_BUCKETS))
    agg = gaps.group_by("b").agg(n=_.count())
    totals = gaps.agg(n=_.count(), total=_.gap.sum())
    counts = {int(r["b"]): int(r["n"]) for r in store.rows(agg)}
    total = store.rows(totals)[0]
    n = int(total["n"] or 0)
    per_buyer = good.group_by("customer_id").agg(orders=_.count())
    buyers = store.rows(per_buyer.agg(buyers=_.count(), repeat=_.count(where=_.orders >= 2)))[0]
    labels = _labels(INTERVAL_BUCKETS, "days")
    return {
        "intervals": n,
        "mean_days": int(total["total"]) / n if n else None,
        "buckets": [{"label": lab, "count": counts.get(i, 0)} for i, lab in enumerate(labels)],
        "buyers": int(buyers["buyers"] or 0),
        "repeat_buyers": int(buyers["repeat"] or 0),
        "repeat_purchase_rate": int(buyers["repeat"]) / int(buyers["buyers"])
        if buyers["buyers"]
        else None,
    }


def baskets(store: Store, good: ibis.Table) -> dict[str, Any]:
    oi = store["order_items"]
    lines = good.select(order_id=good.id).join(oi, "order_id")
    sizes = lines.group_by("order_id").agg(items=_.quantity.sum())
    sizes = sizes.mutate(b=_bucket(sizes["items"], BASKET_BUCKETS))
    agg = sizes.group_by("b").agg(n=_.count())
    counts = {int(r["b"]): int(r["n"]) for r in store.rows(agg)}
    total = store.rows(sizes.agg(orders=_.count(), items=_["items"].sum()))[0]
    orders = int(total["orders"] or 0)
    labels = _labels(BASKET_BUCKETS, "items")
    return {
        "orders": orders,
        "mean_items": int(total["items"]) / orders if orders else None,
        "buckets": [{"label": lab, "count": counts.get(i, 0)} for i, lab in enumerate(labels)],
    }


def price_bands(store: Store, good: ibis.Table) -> list[dict[str, Any]]:
    oi = store["order_items"]
    lines = good.select("customer_id", order_id=good.id).join(oi, "order_id")
    band = ibis.cases(
        *((lines.unit_price_minor < hi, i) for i, hi in enumerate(PRICE_BANDS[1:])),
        else_=len(PRICE_BANDS) - 1,
    )
    lines = lines.mutate(band=band)
    agg = lines.group_by("band").agg(items=_.quantity.sum(), buyers=_.customer_id.nunique())
    found = {int(r["band"]): r for r in store.rows(agg)}
    out = []
    for i, lo in enumerate(PRICE_BANDS):
        hi = PRICE_BANDS[i + 1] if i + 1 < len(PRICE_BANDS) else None
        row = found.get(i)
        out.append(
            {
                "lower_minor": lo,
                "upper_minor": hi,
                "items": int(row["items"]) if row else 0,
                "buyers": int(row["buyers"]) if row else 0,
            }
        )
    return out


def timing(store: Store, good: ibis.Table) -> list[list[int]]:
    """7 x 24 counted orders: [ISO weekday - 1][UTC hour]."""
    t = good.select(weekday=(good.day + 3) % 7, hour=(good.placed_us % DAY_US) // HOUR_US)
    agg = t.group_by(["weekday", "hour"]).agg(n=_.count())
    grid = [[0] * 24 for _day in range(7)]
    for r in store.rows(agg):
        grid[int(r["weekday"])][int(r["hour"])] = int(r["n"])
    return grid


def monthly(store: Store, good: ibis.Table, now_month: int) -> list[dict[str, Any]]:
    recent = good.filter(good.month > now_month - MONTHS)
    agg = recent.group_by("month").agg(orders=_.count(), revenue=_.net_minor.sum())
    found = {int(r["month"]): r for r in store.rows(agg)}
    out = []
    for m in range(now_month - MONTHS + 1, now_month + 1):
        row = found.get(m)
        orders = int(row["orders"]) if row else 0
        revenue = int(row["revenue"]) if row else 0
        out.append({"month": month_key(m), "orders": orders, "revenue_minor": revenue})
    return out


def funnel(store: Store, now_us: int) -> dict[str, Any]:
    e = store["events"]
    recent = e.filter((e.ts_us <= now_us) & (e.ts_us > now_us - FUNNEL_DAYS * DAY_US))
    per = recent.group_by("visitor").agg(
        **{f"s{i}": (_.name == name).any() for i, (name, _label) in enumerate(FUNNEL_STEPS)}
    )
    reached = []
    cond = ibis.literal(True)
    for i in range(len(FUNNEL_STEPS)):
        cond = cond & per[f"s{i}"]
        reached.append(per.count(where=cond).name(f"n{i}"))
    row = store.rows(per.aggregate(reached))[0]
    counts = [int(row[f"n{i}"] or 0) for i in range(len(FUNNEL_STEPS))]
    steps = []
    for i, (name, label) in enumerate(FUNNEL_STEPS):
        following = counts[i + 1] if i + 1 < len(counts) else None
        steps.append(
            {
                "event": name,
                "label": label,
                "visitors": counts[i],
                "of_first": counts[i] / counts[0] if counts[0] else None,
                "abandonment": None
                if following is None or not counts[i]
                else 1 - following / counts[i],
            }
        )
    return {"days": FUNNEL_DAYS, "steps": steps}


def concentration(spend: list[int]) -> list[dict[str, Any]]:
    """Share of revenue from the top 1 / 10 / 20 % of buyers (by their net spend)."""
    ordered = sorted(spend, reverse=True)
    total = sum(max(0, s) for s in ordered)
    out = []
    for pct in (1, 10, 20, 50):
        top = max(1, -(-len(ordered) * pct // 100)) if ordered else 0
        share = sum(max(0, s) for s in ordered[:top]) / total if total else None
        out.append({"top_percent": pct, "customers": top, "revenue_share": share})
    return out


def compute(
    store: Store, now_us: int, spend: list[int], tables: Tables | None = None
) -> dict[str, Any]:
    """Every pattern, as plain JSON-able values (stored with the refresh that made them).

    `tables`: the store's tables, possibly with counted orders computed (features.COUNTED).
    """
    now_month = int(month_index(now_us // DAY_US))
    good = _good(store, now_us, store.tables if tables is None else tables)
    with store.materialized(good) as cached:
        return {
            "cohorts": cohorts(store, cached, now_month),
            "intervals": intervals(store, cached),
            "baskets": baskets(store, cached),
            "price_bands": price_bands(store, cached),
            "timing": timing(store, cached),
            "monthly": monthly(store, cached, now_month),
            "funnel": funnel(store, now_us),
            "concentration": concentration(spend),
        }
