"""Per-customer features as Ibis expressions, run by any engine (analytics/engine.py).

Definitions (docs/analytics.md) — all times UTC, `now` is the refresh time:
- an order counts when it is placed at or before `now` and not cancelled; its net value is its
  total minus its refunds (can be zero or negative: refunds larger than the order);
- frequency = counted orders, recency_days = whole days since the last, tenure T_days = whole
  days since the first; total spend = sum of net values; AOV = total / orders (half to even);
- return rate = counted orders with a non-rejected return / counted orders; cancellation rate
  = cancelled orders / all orders; discount use = counted orders with a discount or coupon /
  counted orders;
- a session is a run of the customer's events with gaps under 30 minutes; abandoned carts are
  sessions with a "Product Added" and no "Order Completed"; preferred hour / weekday / channel
  / device are the most frequent (ties: the smallest value).

The expression returns integers and strings only (times as epoch microseconds, sums and counts
rather than ratios); `finish` turns a row into the feature values in Python, so every engine
gives the same result to the last digit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from ibis import _

from patronage.analytics.engine import CLICKED

SESSION_GAP_MINUTES = 30
SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Tables = Mapping[str, ibis.Table]
AGE_BANDS = ((25, "<25"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))

FEATURE_COLUMNS = (
    "customer_id",
    "first_order_at",
    "last_order_at",
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
    "last_visit_at",
    "preferred_hour",
    "preferred_weekday",
    "preferred_channel",
    "preferred_device",
    "recommendation_clicks",
    "support_contacts",
    "reviews",
    "avg_rating",
    "tenure_days",
    "age_band",
)


def to_us(moment: datetime) -> int:
    """An aware datetime as epoch microseconds (exact: no float on the way)."""
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * SECOND_US + delta.microseconds


def from_us(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=int(value))


def _mode(src: ibis.Table, value: str) -> ibis.Table:
    """Most frequent `value` per customer in `src` (ties: the smallest value)."""
    g = src.filter(src[value].notnull()).group_by(["customer_id", value]).agg(n=_.count())
    rn = ibis.row_number().over(group_by=g.customer_id, order_by=[ibis.desc(g.n), g[value]])
    return g.mutate(rn=rn).filter(_.rn == 0).select("customer_id", **{f"pref_{value}": g[value]})


# key under which `t` may hold counted_orders(t, now_us) already computed (refresh.compute
# computes it once for features, patterns and the CLV transactions)
COUNTED = "counted_orders"


def counted_orders(t: Tables, now_us: int) -> ibis.Table:
    """Orders placed by `now` with their net value (total minus refunds) and flags."""
    if COUNTED in t:
        return t[COUNTED]
    refunds = t["refunds"].group_by("order_id").agg(refunded=_.amount_minor.sum())
    returns = t["returns"]
    returned = returns.filter(returns.status != "rejected").select("order_id").distinct()
    returned = returned.mutate(returned=ibis.literal(1, "int64"))
    o = t["orders"].filter(_.placed_us <= now_us)
    o = o.left_join(refunds, o.id == refunds.order_id).drop("order_id")
    o = o.left_join(returned, o.id == returned.order_id).drop("order_id")
    return o.select(
        "id",
        "customer_id",
        "channel",
        "placed_us",
        cancelled=(_.status == "cancelled") | _.cancelled_us.notnull(),
        net_minor=_.total_minor - _.refunded.fill_null(0),
        returned=_.returned.fill_null(0),
        discounted=ibis.ifelse((_.discount_minor > 0) | _.coupon.notnull(), 1, 0),
    )


def _sessions(ev: ibis.Table, now_us: int) -> ibis.Table:
    """Per customer: sessions started in the last 7 / 30 / 90 days and abandoned carts."""
    w = ibis.window(group_by=ev.customer_id, order_by=ev.ts_us)
    prev = ev.ts_us.lag().over(w)
    gap = SESSION_GAP_MINUTES * 60 * SECOND_US
    marks = ev.mutate(starts=ibis.ifelse(prev.isnull() | (ev.ts_us - prev >= gap), 1, 0))
    # a RANGE frame: tied timestamps share one running count, whatever order the engine uses
    running = ibis.range_window(following=0, group_by=marks.customer_id, order_by=marks.ts_us)
    numbered = marks.mutate(session_no=marks.starts.sum().over(running))
    sessions = numbered.group_by(["customer_id", "session_no"]).agg(
        started=_.ts_us.min(),
        added=(_.name == "Product Added").any(),
        ordered=(_.name == "Order Completed").any(),
    )
    return sessions.group_by("customer_id").agg(
        **{f"sessions_{d}d": _.count(where=_.started > now_us - d * DAY_US) for d in (7, 30, 90)},
        abandoned_carts=_.count(where=_.added & ~_.ordered),
    )


def feature_table(t: Tables, now_us: int) -> ibis.Table:
    """One row per customer (merged-away profiles excluded): the raw sums behind the features."""
    c = t["customers"]
    cust = c.filter(c.merged_into_id.isnull()).select(
        customer_id=c.id,
        birth_year=c.birth_year,
        signup_us=ibis.coalesce(c.signup_us, c.created_us),
    )
    o = counted_orders(t, now_us)
    ord_ = o.group_by("customer_id").agg(
        all_orders=_.count(), cancelled_orders=_.count(where=_.cancelled)
    )
    good = o.filter(~o.cancelled)
    buy = good.group_by("customer_id").agg(
        orders=_.count(),
        purchase_days=(_.placed_us // DAY_US).nunique(),
        first_order_us=_.placed_us.min(),
        last_order_us=_.placed_us.max(),
        total_spend_minor=_.net_minor.sum(),
        returned_orders=_.returned.sum(),
        discounted_orders=_.discounted.sum(),
    )
    oi, p = t["order_items"], t["products"]
    lines = good.select(order_id=good.id, customer_id=good.customer_id).join(oi, "order_id")
    lines = lines.left_join(p, lines.product_id == p.id)
    items = lines.group_by("customer_id").agg(
        distinct_categories=_.category_id.nunique(),
        item_value=(_.unit_price_minor * _.quantity).sum(),
        item_count=_.quantity.sum(),
    )
    timed = good.select(
        "customer_id",
        "channel",
        hour=(good.placed_us % DAY_US) // HOUR_US,
        # 1970-01-01 was a Thursday (ISO day 4)
        weekday=((good.placed_us // DAY_US) + 3) % 7 + 1,
    )
    e = t["events"]
    ev = e.filter(e.customer_id.notnull() & (e.ts_us <= now_us))
    viewed = ev.name == "Product Viewed"
    evs = ev.group_by("customer_id").agg(
        **{
            f"product_views_{d}d": _.count(where=viewed & (ev.ts_us > now_us - d * DAY_US))
            for d in (7, 30, 90)
        },
        cart_adds=_.count(where=ev.name == "Product Added"),
        recommendation_clicks=_.count(
            where=(ev.name == CLICKED) & ev.list_id.startswith("recommend")
        ),
        last_visit_us=_.ts_us.max(),
    )
    tk = t["tickets"]
    tix = tk.filter(tk.opened_us <= now_us).group_by("customer_id").agg(support_contacts=_.count())
    rv = t["reviews"]
    rev = rv.group_by("customer_id").agg(
        reviews=_.count(), rating_sum=_.rating.sum(), rating_count=_.rating.count()
    )
    parts = (
        ord_,
        buy,
        items,
        _mode(timed, "hour"),
        _mode(timed, "weekday"),
        _mode(timed, "channel"),
        _mode(ev, "device"),
        _sessions(ev, now_us),
        evs,
        tix,
        rev,
    )
    out = cust
    for part in parts:
        out = out.left_join(part, "customer_id").drop("customer_id_right")
    return out


_COUNTS = (
    "orders",
    "purchase_days",
    "total_spend_minor",
    "distinct_categories",
    "sessions_7d",
    "sessions_30d",
    "sessions_90d",
    "product_views_7d",
    "product_views_30d",
    "product_views_90d",
    "cart_adds",
    "abandoned_carts",
    "recommendation_clicks",
    "support_contacts",
    "reviews",
)


def _div_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def _age_band(birth_year: int | None, now: datetime) -> str | None:
    if birth_year is None:
        return None
    age = now.year - birth_year
    return next((label for limit, label in AGE_BANDS if age < limit), "65+")


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def finish(raw: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One row of `feature_table` as the feature values (keys: FEATURE_COLUMNS)."""
    now_day = to_us(now) // DAY_US
    orders = int(raw["orders"] or 0)
    all_orders = int(raw["all_orders"] or 0)
    item_count = int(raw["item_count"] or 0)
    first, last = _int(raw["first_order_us"]), _int(raw["last_order_us"])
    rating_count = int(raw["rating_count"] or 0)
    row: dict[str, Any] = {c: int(raw[c] or 0) for c in _COUNTS}
    row.update(
        customer_id=int(raw["customer_id"]),
        first_order_at=from_us(first),
        last_order_at=from_us(last),
        recency_days=None if last is None else now_day - last // DAY_US,
        t_days=None if first is None else now_day - first // DAY_US,
        aov_minor=_div_half_even(row["total_spend_minor"], orders) if orders else None,
        avg_item_price_minor=_div_half_even(int(raw["item_value"]), item_count)
        if item_count > 0
        else None,
        return_rate=int(raw["returned_orders"]) / orders if orders else None,
        cancellation_rate=int(raw["cancelled_orders"]) / all_orders if all_orders else None,
        discount_rate=int(raw["discounted_orders"]) / orders if orders else None,
        last_visit_at=from_us(_int(raw["last_visit_us"])),
        preferred_hour=_int(raw["pref_hour"]),
        preferred_weekday=_int(raw["pref_weekday"]),
        preferred_channel=raw["pref_channel"],
        preferred_device=raw["pref_device"],
        avg_rating=int(raw["rating_sum"]) / rating_count if rating_count else None,
        tenure_days=None if raw["signup_us"] is None else now_day - int(raw["signup_us"]) // DAY_US,
        age_band=_age_band(_int(raw["birth_year"]), now.astimezone(UTC)),
    )
    return {c: row[c] for c in FEATURE_COLUMNS}


def transactions(t: Tables, now_us: int) -> ibis.Table:
    """Counted orders of current customers (for the CLV models): customer, UTC day, net value."""
    c = t["customers"]
    live = c.filter(c.merged_into_id.isnull()).select(customer_id=c.id)
    o = counted_orders(t, now_us)
    o = o.filter(~o.cancelled).join(live, "customer_id")
    return o.select(
        "customer_id", day=o.placed_us // DAY_US, net_minor=o.net_minor, placed_us=o.placed_us
    ).order_by(["customer_id", "placed_us"])


def future_orders(t: Tables, now_us: int) -> ibis.Scalar:
    return t["orders"].filter(_.placed_us > now_us).count()


def rfm_basis(raw: ibis.Table, now_us: int) -> ibis.Table:
    """What RFM scores, from `feature_table`: recency in days, orders, total spend (buyers)."""
    return raw.filter(raw.orders > 0).select(
        "customer_id",
        "orders",
        "total_spend_minor",
        recency_days=now_us // DAY_US - raw.last_order_us // DAY_US,
    )


def utc_naive(now: datetime) -> datetime:
    """`now` as a naive UTC wall-clock timestamp."""
    return now.astimezone(UTC).replace(tzinfo=None)


# --- the same as `finish`, column-wise (a refresh of a million customers) ---

DATETIME_FEATURES = ("first_order_at", "last_order_at", "last_visit_at")


@dataclass
class FeatureColumns:
    """FEATURE_COLUMNS as columns, ordered by customer: plain Python values (None for
    missing) except the DATETIME_FEATURES, which hold epoch microseconds (None: missing)."""

    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.columns["customer_id"])

    def rows(self) -> list[dict[str, Any]]:
        """The rows `finish` gives (datetimes aware UTC)."""
        columns = dict(self.columns)
        for name in DATETIME_FEATURES:
            columns[name] = [from_us(v) for v in columns[name]]
        values = [columns[c] for c in FEATURE_COLUMNS]
        return [dict(zip(FEATURE_COLUMNS, row, strict=True)) for row in zip(*values, strict=True)]

    def for_store(self) -> dict[str, Any]:
        """The columns as the bulk writer takes them (datetimes as datetime64[us], NaT)."""
        out: dict[str, Any] = dict(self.columns)
        for name in DATETIME_FEATURES:
            micros = pa.array(self.columns[name], pa.int64())
            out[name] = micros.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
        return out


def _column(table: pa.Table, name: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """(values with nulls as 0, validity) of an integer column."""
    column = table.column(name)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    values = column.fill_null(0).to_numpy().astype(np.int64, copy=False)
    return values, valid


def _nullable(values: npt.NDArray[Any], valid: npt.NDArray[np.bool_]) -> list[Any]:
    return pa.array(values, mask=~valid).to_pylist()  # type: ignore[no-any-return]


def _half_even(numerator: npt.NDArray[np.int64], denominator: npt.NDArray[np.int64]) -> Any:
    """`_div_half_even` element-wise (denominator > 0; floor division as Python's)."""
    quotient, remainder = np.divmod(numerator, denominator)
    twice = 2 * remainder
    up = (twice > denominator) | ((twice == denominator) & (quotient % 2 == 1))
    return quotient + up


def finish_table(raw: pa.Table, now: datetime) -> FeatureColumns:
    """`feature_table` rows (ordered by customer) as FeatureColumns: `finish` for every row."""
    now_day = to_us(now) // DAY_US
    n = raw.num_rows
    ints = {
        c: _column(raw, c) for c in raw.column_names if c not in ("pref_channel", "pref_device")
    }
    out: dict[str, list[Any]] = {c: ints[c][0].tolist() for c in _COUNTS}
    out["customer_id"] = ints["customer_id"][0].tolist()
    orders = ints["orders"][0]
    has_orders = orders > 0
    safe_orders = np.where(has_orders, orders, 1)
    first, first_ok = ints["first_order_us"]
    last, last_ok = ints["last_order_us"]
    out["first_order_at"] = _nullable(first, first_ok)
    out["last_order_at"] = _nullable(last, last_ok)
    out["recency_days"] = _nullable(now_day - last // DAY_US, last_ok)
    out["t_days"] = _nullable(now_day - first // DAY_US, first_ok)
    spend = ints["total_spend_minor"][0]
    out["aov_minor"] = _nullable(_half_even(spend, safe_orders), has_orders)
    item_count = ints["item_count"][0]
    has_items = item_count > 0
    item_value = ints["item_value"][0]
    out["avg_item_price_minor"] = _nullable(
        _half_even(item_value, np.where(has_items, item_count, 1)), has_items
    )
    out["return_rate"] = _nullable(ints["returned_orders"][0] / safe_orders, has_orders)
    all_orders = ints["all_orders"][0]
    has_any = all_orders > 0
    out["cancellation_rate"] = _nullable(
        ints["cancelled_orders"][0] / np.where(has_any, all_orders, 1), has_any
    )
    out["discount_rate"] = _nullable(ints["discounted_orders"][0] / safe_orders, has_orders)
    out["last_visit_at"] = _nullable(*ints["last_visit_us"])
    out["preferred_hour"] = _nullable(*ints["pref_hour"])
    out["preferred_weekday"] = _nullable(*ints["pref_weekday"])
    out["preferred_channel"] = raw.column("pref_channel").to_pylist()
    out["preferred_device"] = raw.column("pref_device").to_pylist()
    rating_count = ints["rating_count"][0]
    rated = rating_count > 0
    out["avg_rating"] = _nullable(ints["rating_sum"][0] / np.where(rated, rating_count, 1), rated)
    signup, signup_ok = ints["signup_us"]
    out["tenure_days"] = _nullable(now_day - signup // DAY_US, signup_ok)
    birth, born = ints["birth_year"]
    age = now.astimezone(UTC).year - birth
    band = np.full(n, "65+", dtype=object)
    for limit, label in reversed(AGE_BANDS):
        band[age < limit] = label
    band[~born] = None
    out["age_band"] = band.tolist()
    return FeatureColumns({c: out[c] for c in FEATURE_COLUMNS})
