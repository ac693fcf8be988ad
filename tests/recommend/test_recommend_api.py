"""The recommendation REST API on both backends: lists, permissions, bad input, click-through
through the real tracking API."""

from __future__ import annotations

import uuid

import pytest

from patronage import db
from patronage.customers import service as customers_service
from patronage.recommend import service
from tests.collect.helpers import basic, new_source
from tests.conftest import bearer
from tests.recommend.test_serving import Shop, build_shop


@pytest.fixture
def shop(database: str) -> Shop:
    with db.transaction() as session:
        made = build_shop(session)
    service.build()
    return made


def names(shop: Shop, body: dict) -> list[str]:  # type: ignore[type-arg]
    by_id = {v: k for k, v in shop.product.items()}
    return [by_id[i["product_id"]] for i in body["items"]]


def test_lists_through_http(client, staff, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    h = bearer(staff["analyst"])
    r = client.get(
        f"/api/recommend/products/{shop.product['names']}/also-bought?limit=3", headers=h
    )
    assert r.status_code == 200
    body = r.json()
    assert names(shop, body) == ["guide", "monitor", "chair"]
    assert body["placement"] == "also_bought" and body["model"] == "item-to-item"
    assert uuid.UUID(body["recommendation_id"]).version == 8
    assert body["items"][0] == {
        "product_id": shop.product["guide"],
        "name": "Pregnancy guide",
        "category_id": shop.category["books"],
        "price_minor": 1500,
        "score": round(3 / (4 * 4**0.3), 6),
        "because_product_id": shop.product["names"],
        "explanation": "Customers who bought Baby names also bought this",
        "source": "model",
    }
    r = client.get(f"/api/recommend/products/{shop.product['kettle']}/upsell", headers=h)
    assert names(shop, r.json()) == ["premium", "deluxe"]
    r = client.get(f"/api/recommend/customers/{shop.customer['c3']}/for-you", headers=h)
    assert names(shop, r.json()) == ["coffee", "guide", "chair", "premium"]
    assert r.json()["personalised"] is True
    r = client.get(f"/api/recommend/customers/{shop.customer['c3']}/cross-sell", headers=h)
    assert r.json()["placement"] == "cross_sell"
    r = client.get(f"/api/recommend/customers/{shop.customer['private']}/for-you", headers=h)
    assert r.json()["personalised"] is False
    assert r.json()["notice"] == "no personalisation consent: non-personalised list (trending)"
    r = client.post(
        "/api/recommend/basket",
        json={"product_ids": [shop.product["names"]], "limit": 2},
        headers=h,
    )
    assert names(shop, r.json()) == ["guide", "monitor"]
    r = client.get(
        f"/api/recommend/trending?limit=2&category_id={shop.category['kitchen']}", headers=h
    )
    assert names(shop, r.json()) == ["coffee", "kettle"]
    builds = client.get("/api/recommend/builds", headers=h).json()
    assert [(b["status"], b["current"]) for b in builds] == [("done", True)]


def test_permissions(client, staff, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    path = f"/api/recommend/products/{shop.product['names']}/also-bought"
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer(staff["seller_manager"])).status_code == 403
    assert client.post("/api/recommend/builds", headers=bearer(staff["analyst"])).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/api/recommend/products/{p}/also-bought?limit=10000",
        "/api/recommend/products/{p}/also-bought?limit=0",
        "/api/recommend/products/{p}/upsell?limit=-1",
        "/api/recommend/products/1%20OR%201=1/also-bought",
        "/api/recommend/products/'%3B%20DROP%20TABLE%20products%3B--/also-bought",
        "/api/recommend/products/9223372036854775808/also-bought",
        "/api/recommend/customers/abc/for-you",
        "/api/recommend/customers/{c}/for-you?category_id=x",
        "/api/recommend/trending?limit=101",
        "/api/recommend/ctr?days=0",
    ],
)
def test_bad_input_is_422(client, staff, shop: Shop, path: str) -> None:  # type: ignore[no-untyped-def]
    url = path.format(p=shop.product["names"], c=shop.customer["c1"])
    r = client.get(url, headers=bearer(staff["analyst"]))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_error"


def test_unknown_ids_are_404_and_baskets_are_bounded(client, staff, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    h = bearer(staff["analyst"])
    for path in (
        "/api/recommend/products/999999/also-bought",
        "/api/recommend/products/999999/upsell",
        "/api/recommend/customers/999999/for-you",
        "/api/recommend/customers/999999/cross-sell",
    ):
        r = client.get(path, headers=h)
        assert r.status_code == 404 and r.json()["error"] == "not_found", path
    r = client.post("/api/recommend/basket", json={"product_ids": [1] * 5000}, headers=h)
    assert r.status_code == 422
    r = client.post("/api/recommend/basket", json={"product_ids": []}, headers=h)
    assert r.status_code == 422
    r = client.post("/api/recommend/basket", json={"product_ids": ["1; DROP TABLE x"]}, headers=h)
    assert r.status_code == 422
    r = client.post(
        "/api/recommend/basket", json={"product_ids": [shop.product["names"], 999999]}, headers=h
    )
    assert r.status_code == 404
    assert r.json()["detail"] == "unknown products in the basket (1): 999999"
    r = client.post("/api/recommend/basket", json={"product_ids": [2**62] * 500}, headers=h)
    assert r.status_code == 404


def test_click_through_from_tracked_events(client, staff, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    h = bearer(staff["analyst"])
    also = client.get(
        f"/api/recommend/products/{shop.product['names']}/also-bought", headers=h
    ).json()
    mine = client.get(f"/api/recommend/customers/{shop.customer['c3']}/for-you", headers=h).json()
    key = new_source()

    def track(event: str, list_id: str, n: int) -> None:
        for _ in range(n):
            msg = {
                "event": event,
                "userId": "shopper",
                "messageId": str(uuid.uuid4()),
                "properties": {"list_id": list_id},
            }
            assert client.post("/v1/track", json=msg, headers=basic(key)).status_code == 200

    track("Product List Viewed", also["recommendation_id"], 4)
    track("Product Clicked", also["recommendation_id"], 1)
    track("Product List Viewed", mine["recommendation_id"], 2)
    track("Product Clicked", mine["recommendation_id"], 2)
    track("Product Clicked", "homepage-carousel", 3)  # not a recommendation id
    track("Product Clicked", str(uuid.uuid4()), 1)  # a UUID, but not one of ours
    report = client.get("/api/recommend/ctr", headers=h).json()
    assert report["rows"] == [
        {
            "placement": "also_bought",
            "model": "item-to-item",
            "impressions": 4,
            "clicks": 1,
            "ctr": 0.25,
        },
        {
            "placement": "for_you",
            "model": "item-to-item",
            "impressions": 2,
            "clicks": 2,
            "ctr": 1.0,
        },
    ]
    with db.transaction() as session:
        clickers = service.recommendation_clickers(session)
        assert [customers_service.get_customer(session, c).user_id for c in clickers] == ["shopper"]


def test_openapi_lists_the_routes(client) -> None:  # type: ignore[no-untyped-def]
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/recommend/products/{product_id}/also-bought",
        "/api/recommend/products/{product_id}/upsell",
        "/api/recommend/customers/{customer_id}/for-you",
        "/api/recommend/customers/{customer_id}/cross-sell",
        "/api/recommend/basket",
        "/api/recommend/trending",
        "/api/recommend/ctr",
    ):
        assert path in paths
