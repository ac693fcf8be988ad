"""The e-commerce spec mapped onto the commerce tables, idempotently, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import text

from patronage import db
from tests.collect.helpers import basic, new_source, track
from tests.conftest import bearer

LAMP = {
    "product_id": "sku-lamp",
    "name": "Desk lamp",
    "price": 24.5,
    "category": "Lighting",
    "brand": "Lux",
}
BULB = {"product_id": "sku-bulb", "name": "Bulb", "price": 3.2, "category": "Lighting"}


def _rows(sql: str) -> list[tuple[object, ...]]:
    with db.transaction() as s:
        return [tuple(r) for r in s.execute(text(sql))]


def _send(client, h, *messages):  # type: ignore[no-untyped-def]
    r = client.post("/v1/batch", json={"batch": list(messages)}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["rejected"] == []


def test_browsing_events_create_unknown_products(client):
    h = basic(new_source())
    _send(
        client,
        h,
        track("Products Searched", {"query": "lamp"}, anonymousId="a"),
        track(
            "Product List Viewed",
            {"list_id": "search-results", "products": [LAMP, BULB]},
            anonymousId="a",
        ),
        track(
            "Product Clicked", {**LAMP, "list_id": "search-results", "position": 1}, anonymousId="a"
        ),
        track("Product Viewed", LAMP, anonymousId="a"),
        track("Product Added", {**LAMP, "quantity": 2, "cart_id": "c1"}, anonymousId="a"),
        track("Product Removed", {**LAMP, "quantity": 1, "cart_id": "c1"}, anonymousId="a"),
        track("Cart Viewed", {"cart_id": "c1", "products": [LAMP]}, anonymousId="a"),
        track("Checkout Started", {"order_id": "o-1", "products": [LAMP]}, anonymousId="a"),
        track("Promotion Viewed", {"promotion_id": "promo-1", "name": "Spring"}, anonymousId="a"),
        track("Promotion Clicked", {"promotion_id": "promo-1"}, anonymousId="a"),
    )
    products = _rows(
        "SELECT p.external_id, p.name, p.price_minor, c.name FROM products p "
        "LEFT JOIN categories c ON c.id = p.category_id ORDER BY p.external_id"
    )
    assert products == [
        ("sku-bulb", "Bulb", 320, "Lighting"),
        ("sku-lamp", "Desk lamp", 2450, "Lighting"),
    ]
    assert _rows("SELECT count(*) FROM categories") == [(1,)]
    assert _rows("SELECT count(*) FROM orders") == [(0,)]
    clicked = _rows("SELECT properties FROM events WHERE name = 'Product Clicked'")[0][0]
    assert (
        json.loads(clicked)["list_id"] == "search-results"
        if isinstance(clicked, str)
        else clicked["list_id"] == "search-results"
    )


def test_order_lifecycle(client, staff):
    h = basic(new_source())
    completed = track(
        "Order Completed",
        {
            "order_id": "o-100",
            "total": 52.2,
            "subtotal": 52.2,
            "shipping": 4.0,
            "tax": 8.33,
            "discount": 4.0,
            "coupon": "SPRING",
            "currency": "usd",
            "payment_method": "card",
            "products": [{**LAMP, "quantity": 2}, {**BULB, "quantity": 1}, {**BULB, "quantity": 0}],
        },
        userId="u-shop",
    )
    _send(client, h, completed)
    _send(client, h, {**completed, "messageId": "a-different-delivery-of-the-same-order"})
    assert _rows(
        "SELECT external_id, status, currency, total_minor, subtotal_minor, shipping_minor,"
        " tax_minor, discount_minor, coupon FROM orders"
    ) == [("o-100", "paid", "USD", 5220, 5220, 400, 833, 400, "SPRING")]
    assert sorted(_rows("SELECT quantity, unit_price_minor FROM order_items")) == [
        (1, 320),
        (2, 2450),
    ]
    assert _rows("SELECT external_id, method, status, amount_minor FROM payments") == [
        ("order:o-100", "card", "captured", 5220)
    ]
    updated = track(
        "Order Updated",
        {"order_id": "o-100", "total": 49.0, "products": [{**LAMP, "quantity": 2}]},
        userId="u-shop",
    )
    _send(client, h, updated)
    assert _rows("SELECT status, total_minor FROM orders") == [("paid", 4900)]
    assert _rows("SELECT quantity, unit_price_minor FROM order_items") == [(2, 2450)]
    assert _rows("SELECT amount_minor FROM payments") == [(4900,)]
    refund = track("Order Refunded", {"order_id": "o-100", "total": 10}, userId="u-shop")
    _send(client, h, refund)
    _send(client, h, refund)  # a retry: same message id, no second refund
    assert _rows("SELECT amount_minor, external_id FROM refunds") == [
        (1000, f"msg:{refund['messageId']}")
    ]
    assert _rows("SELECT status FROM orders") == [("paid",)]
    _send(client, h, track("Order Refunded", {"order_id": "o-100", "total": 39}, userId="u-shop"))
    assert _rows("SELECT status FROM orders") == [("refunded",)]
    _send(client, h, track("Order Cancelled", {"order_id": "o-100"}, userId="u-shop"))
    assert _rows("SELECT status FROM orders") == [("cancelled",)]
    found = client.get(
        "/api/customers", params={"user_id": "u-shop"}, headers=bearer(staff["admin"])
    )
    cid = found.json()["items"][0]["id"]
    profile = client.get(f"/api/customers/{cid}", headers=bearer(staff["admin"])).json()
    (order,) = profile["orders"]
    assert (order["external_id"], order["status"], order["total"], order["currency"]) == (
        "o-100",
        "cancelled",
        "49.00",
        "USD",
    )
    assert [(i["product_name"], i["quantity"], i["unit_price"]) for i in order["items"]] == [
        ("Desk lamp", 2, "24.50")
    ]
    assert [r["amount"] for r in order["refunds"]] == ["10.00", "39.00"]


def test_reviews_and_coupons(client):
    h = basic(new_source())
    _send(
        client,
        h,
        track(
            "Order Completed", {"order_id": "o-5", "total": 3.2, "products": [BULB]}, userId="u-r"
        ),
    )
    review = track(
        "Product Reviewed",
        {
            "product_id": "sku-new",
            "review_id": "rev-1",
            "review_body": "<b>Bright</b>'; DROP TABLE reviews;--",
            "rating": 4,
            "order_id": "o-5",
        },
        userId="u-r",
    )
    _send(client, h, review, {**review, "messageId": "resent"})
    _send(
        client, h, track("Product Reviewed", {"product_id": "sku-new", "rating": 9}, userId="u-r")
    )
    assert _rows("SELECT external_id, rating, body FROM reviews") == [
        ("rev-1", 4, "<b>Bright</b>'; DROP TABLE reviews;--")
    ]
    assert _rows("SELECT name FROM products WHERE external_id = 'sku-new'") == [("sku-new",)]
    _send(
        client,
        h,
        track("Coupon Applied", {"order_id": "o-5", "coupon_name": "WELCOME"}, userId="u-r"),
    )
    assert _rows("SELECT coupon FROM orders") == [("WELCOME",)]


def test_hostile_commerce_values_do_not_break_the_mapping(client):
    h = basic(new_source())
    _send(
        client,
        h,
        track(
            "Order Completed",
            {
                "order_id": "o-x",
                "total": 1e30,
                "tax": "lots",
                "currency": "€€€",
                "products": [
                    {"product_id": "p" * 500, "price": -5},
                    {"sku": "ok-1", "price": "2.5", "quantity": 1e12},
                    "junk",
                ],
            },
            userId="u-x",
        ),
        track("Order Completed", {"total": 5}, userId="u-x"),
        track("Order Cancelled", {"order_id": "never-seen"}, userId="u-x"),
    )
    # an order first heard of through its cancellation is recorded, cancelled
    assert _rows(
        "SELECT external_id, status, total_minor, tax_minor, currency FROM orders ORDER BY id"
    ) == [("o-x", "paid", 250000000, 0, "EUR"), ("never-seen", "cancelled", 0, 0, "EUR")]
    assert _rows("SELECT quantity, unit_price_minor FROM order_items") == [(1000000, 250)]
