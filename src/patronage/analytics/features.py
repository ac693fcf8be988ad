"""Per-customer features, computed in DuckDB over the store tables (analytics/engine.py).

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
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

SESSION_GAP_MINUTES = 30
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


def _mode(source: str, key: str, value: str) -> str:
    """Most frequent `value` per `key` in `source` (ties: the smallest value)."""
    return f"""
        SELECT {key}, v AS value FROM (
            SELECT {key}, {value} AS v,
                   row_number() OVER (PARTITION BY {key} ORDER BY count(*) DESC, {value}) AS rn
            FROM {source} WHERE {value} IS NOT NULL GROUP BY {key}, {value}
        ) WHERE rn = 1
    """  # noqa: S608 (built from constants)


def _age_band_sql() -> str:
    cases = " ".join(
        f"WHEN year(CAST($now AS TIMESTAMP)) - c.birth_year < {limit} THEN '{label}'"
        for limit, label in AGE_BANDS
    )
    return f"CASE WHEN c.birth_year IS NULL THEN NULL {cases} ELSE '65+' END"


FEATURES_SQL = f"""
WITH
cust AS (
    SELECT id AS customer_id, birth_year, coalesce(signup_at, created_at) AS signup_at
    FROM customers WHERE merged_into_id IS NULL
),
ref AS (SELECT order_id, sum(amount_minor) AS refunded FROM refunds GROUP BY order_id),
ret AS (SELECT DISTINCT order_id FROM returns WHERE status <> 'rejected'),
o AS (
    SELECT o.id, o.customer_id, o.channel, o.placed_at,
           (o.status = 'cancelled' OR o.cancelled_at IS NOT NULL) AS cancelled,
           o.total_minor - coalesce(ref.refunded, 0) AS net_minor,
           ret.order_id IS NOT NULL AS returned,
           (o.discount_minor > 0 OR o.coupon IS NOT NULL) AS discounted
    FROM orders o
    LEFT JOIN ref ON ref.order_id = o.id
    LEFT JOIN ret ON ret.order_id = o.id
    WHERE o.placed_at <= $now
),
good AS (SELECT * FROM o WHERE NOT cancelled),
ord AS (
    SELECT customer_id,
           count(*) AS all_orders,
           count(*) FILTER (WHERE cancelled) AS cancelled_orders
    FROM o GROUP BY customer_id
),
buy AS (
    SELECT customer_id,
           count(*) AS orders,
           count(DISTINCT CAST(placed_at AS DATE)) AS purchase_days,
           min(placed_at) AS first_order_at,
           max(placed_at) AS last_order_at,
           sum(net_minor) AS total_spend_minor,
           count(*) FILTER (WHERE returned) AS returned_orders,
           count(*) FILTER (WHERE discounted) AS discounted_orders
    FROM good GROUP BY customer_id
),
items AS (
    SELECT g.customer_id,
           count(DISTINCT p.category_id) AS distinct_categories,
           sum(i.unit_price_minor * i.quantity) AS item_value,
           sum(i.quantity) AS item_count
    FROM good g JOIN order_items i ON i.order_id = g.id
    LEFT JOIN products p ON p.id = i.product_id
    GROUP BY g.customer_id
),
hours AS ({_mode("(SELECT customer_id, hour(placed_at) AS h FROM good)", "customer_id", "h")}),
days AS ({_mode("(SELECT customer_id, isodow(placed_at) AS d FROM good)", "customer_id", "d")}),
chan AS ({_mode("good", "customer_id", "channel")}),
ev AS (
    SELECT customer_id, name, timestamp,
           json_extract_string(context, '$.device.type') AS device,
           json_extract_string(properties, '$.list_id') AS list_id
    FROM events WHERE timestamp <= $now
),
dev AS ({_mode("ev", "customer_id", "device")}),
marks AS (
    SELECT *, CASE WHEN lag(timestamp) OVER w IS NULL
                     OR timestamp - lag(timestamp) OVER w
                        >= INTERVAL {SESSION_GAP_MINUTES} MINUTE
                   THEN 1 ELSE 0 END AS starts
    FROM ev WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp)
),
numbered AS (
    SELECT *, sum(starts) OVER (PARTITION BY customer_id ORDER BY timestamp
                                ROWS UNBOUNDED PRECEDING) AS session_no
    FROM marks
),
sessions AS (
    SELECT customer_id, session_no, min(timestamp) AS started,
           bool_or(name = 'Product Added') AS added,
           bool_or(name = 'Order Completed') AS ordered
    FROM numbered GROUP BY customer_id, session_no
),
sess AS (
    SELECT customer_id,
           count(*) FILTER (WHERE started > $now - INTERVAL 7 DAY) AS sessions_7d,
           count(*) FILTER (WHERE started > $now - INTERVAL 30 DAY) AS sessions_30d,
           count(*) FILTER (WHERE started > $now - INTERVAL 90 DAY) AS sessions_90d,
           count(*) FILTER (WHERE added AND NOT ordered) AS abandoned_carts
    FROM sessions GROUP BY customer_id
),
evs AS (
    SELECT customer_id,
           count(*) FILTER (WHERE name = 'Product Viewed'
                            AND timestamp > $now - INTERVAL 7 DAY) AS product_views_7d,
           count(*) FILTER (WHERE name = 'Product Viewed'
                            AND timestamp > $now - INTERVAL 30 DAY) AS product_views_30d,
           count(*) FILTER (WHERE name = 'Product Viewed'
                            AND timestamp > $now - INTERVAL 90 DAY) AS product_views_90d,
           count(*) FILTER (WHERE name = 'Product Added') AS cart_adds,
           count(*) FILTER (WHERE name = 'Product Clicked'
                            AND list_id LIKE 'recommend%') AS recommendation_clicks,
           max(timestamp) AS last_visit_at
    FROM ev GROUP BY customer_id
),
tix AS (SELECT customer_id, count(*) AS n FROM tickets WHERE opened_at <= $now GROUP BY 1),
rev AS (
    SELECT customer_id, count(*) AS n, avg(rating) AS avg_rating FROM reviews GROUP BY 1
)
SELECT
    c.customer_id,
    buy.first_order_at,
    buy.last_order_at,
    coalesce(buy.orders, 0) AS orders,
    coalesce(buy.purchase_days, 0) AS purchase_days,
    date_diff('day', CAST(buy.last_order_at AS DATE), CAST($now AS DATE)) AS recency_days,
    date_diff('day', CAST(buy.first_order_at AS DATE), CAST($now AS DATE)) AS t_days,
    coalesce(buy.total_spend_minor, 0) AS total_spend_minor,
    CASE WHEN buy.orders > 0
         THEN CAST(round_even(buy.total_spend_minor / buy.orders, 0) AS BIGINT) END AS aov_minor,
    CASE WHEN items.item_count > 0
         THEN CAST(round_even(items.item_value / items.item_count, 0) AS BIGINT)
    END AS avg_item_price_minor,
    coalesce(items.distinct_categories, 0) AS distinct_categories,
    CASE WHEN buy.orders > 0 THEN buy.returned_orders / buy.orders END AS return_rate,
    CASE WHEN ord.all_orders > 0 THEN ord.cancelled_orders / ord.all_orders END
        AS cancellation_rate,
    CASE WHEN buy.orders > 0 THEN buy.discounted_orders / buy.orders END AS discount_rate,
    coalesce(sess.sessions_7d, 0) AS sessions_7d,
    coalesce(sess.sessions_30d, 0) AS sessions_30d,
    coalesce(sess.sessions_90d, 0) AS sessions_90d,
    coalesce(evs.product_views_7d, 0) AS product_views_7d,
    coalesce(evs.product_views_30d, 0) AS product_views_30d,
    coalesce(evs.product_views_90d, 0) AS product_views_90d,
    coalesce(evs.cart_adds, 0) AS cart_adds,
    coalesce(sess.abandoned_carts, 0) AS abandoned_carts,
    evs.last_visit_at,
    CAST(hours.value AS INTEGER) AS preferred_hour,
    CAST(days.value AS INTEGER) AS preferred_weekday,
    chan.value AS preferred_channel,
    dev.value AS preferred_device,
    coalesce(evs.recommendation_clicks, 0) AS recommendation_clicks,
    coalesce(tix.n, 0) AS support_contacts,
    coalesce(rev.n, 0) AS reviews,
    rev.avg_rating,
    date_diff('day', CAST(c.signup_at AS DATE), CAST($now AS DATE)) AS tenure_days,
    {_age_band_sql()} AS age_band
FROM cust c
LEFT JOIN ord USING (customer_id)
LEFT JOIN buy USING (customer_id)
LEFT JOIN items USING (customer_id)
LEFT JOIN hours USING (customer_id)
LEFT JOIN days USING (customer_id)
LEFT JOIN chan USING (customer_id)
LEFT JOIN dev USING (customer_id)
LEFT JOIN sess USING (customer_id)
LEFT JOIN evs USING (customer_id)
LEFT JOIN tix USING (customer_id)
LEFT JOIN rev USING (customer_id)
ORDER BY c.customer_id
"""  # noqa: S608 (built from constants)

# counted orders (for the CLV summary): one row per order, net value, UTC day
TRANSACTIONS_SQL = """
SELECT o.customer_id, CAST(o.placed_at AS DATE) AS day,
       o.total_minor - coalesce(r.refunded, 0) AS net_minor
FROM orders o
JOIN customers c ON c.id = o.customer_id AND c.merged_into_id IS NULL
LEFT JOIN (SELECT order_id, sum(amount_minor) AS refunded FROM refunds GROUP BY 1) r
       ON r.order_id = o.id
WHERE o.status <> 'cancelled' AND o.cancelled_at IS NULL AND o.placed_at <= $now
ORDER BY o.customer_id, o.placed_at
"""

FUTURE_ORDERS_SQL = "SELECT count(*) FROM orders WHERE placed_at > $now"


def compute(con: duckdb.DuckDBPyConnection, now: datetime) -> list[dict[str, Any]]:
    """One dict per customer (merged-away profiles excluded), keyed by FEATURE_COLUMNS."""
    rows = con.execute(FEATURES_SQL, {"now": utc_naive(now)}).fetchall()
    return [dict(zip(FEATURE_COLUMNS, row, strict=True)) for row in rows]


def utc_naive(now: datetime) -> datetime:
    """`now` as the engine's UTC wall-clock timestamp."""
    return now.astimezone(UTC).replace(tzinfo=None)
