"""The console's recommendation views on the hand-built shop (tests/recommend/test_serving.py):
the product page (also bought, upsell, bought together), the customer page's card (for you and
cross-sell; one non-personalised list without consent), the Recommendations page's lookup,
roles, and unknown ids."""

from __future__ import annotations

import re

import pytest

from patronage import db
from patronage.recommend import service
from tests.conftest import login
from tests.recommend.test_serving import Shop, build_shop


@pytest.fixture
def shop(database: str) -> Shop:
    with db.transaction() as session:
        made = build_shop(session)
    service.build()
    return made


def tables(shop: Shop, html: str) -> dict[str, list[str]]:
    """Each recommendation table of a page (by its data-testid) and its products, in order."""
    by_id = {v: k for k, v in shop.product.items()}
    out = {}
    for testid, body in re.findall(
        r'<table data-testid="(rec-[a-z_]+)"[^>]*>(.*?)</table>', html, re.S
    ):
        ids = re.findall(r'<a href="/recommend/products/(\d+)">', body)
        out[testid] = [by_id[int(i)] for i in ids]
    return out


def test_product_page_shows_also_bought_upsell_and_bought_together(
    client, staff, shop: Shop
) -> None:  # type: ignore[no-untyped-def]
    login(client, "analyst")
    r = client.get(f"/recommend/products/{shop.product['names']}")
    assert r.status_code == 200
    assert '<h1 data-testid="rec-product">Baby names <span class="muted">#' in r.text
    assert tables(shop, r.text) == {
        "rec-also_bought": ["guide", "monitor", "chair", "coffee", "kettle", "premium"],
        "rec-upsell": ["guide"],
        "rec-basket": ["guide", "monitor", "chair", "coffee", "kettle", "premium"],
    }
    assert "Customers who bought Baby names also bought this" in r.text
    # the list's items link to their own product pages
    r = client.get(f"/recommend/products/{shop.product['kettle']}")
    assert tables(shop, r.text)["rec-upsell"] == ["premium", "deluxe"]


def test_product_lookup_links_to_the_product_page(client, staff, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    login(client, "marketer")
    r = client.get(f"/recommend/lookup?product_id={shop.product['names']}")
    assert r.status_code == 200
    assert (
        f'<a href="/recommend/products/{shop.product["names"]}" data-testid="rec-product-link">'
        in r.text
    )
    assert tables(shop, r.text)["rec-also_bought"][:3] == ["guide", "monitor", "chair"]


def test_customer_card_shows_for_you_and_cross_sell(client, staff, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    login(client, "agent")
    r = client.get(f"/recommend/customers/{shop.customer['c3']}")
    assert r.status_code == 200
    assert tables(shop, r.text) == {
        "rec-for_you": ["coffee", "guide", "chair", "premium"],
        "rec-cross_sell": ["chair", "coffee", "guide", "premium"],
    }
    assert "<h3>For you</h3>" in r.text and "<h3>Cross-sell</h3>" in r.text
    assert "Because you bought Baby names" in r.text
    assert 'data-testid="rec-notice"' not in r.text
    # the customer page loads the card
    profile = client.get(f"/customers/{shop.customer['c3']}")
    assert profile.status_code == 200
    assert f'hx-get="/recommend/customers/{shop.customer["c3"]}"' in profile.text


def test_without_consent_only_a_non_personalised_list(client, staff, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    login(client, "analyst")
    r = client.get(f"/recommend/customers/{shop.customer['private']}")
    assert r.status_code == 200
    assert tables(shop, r.text) == {"rec-trending": ["chair", "coffee", "kettle", "guide", "names"]}
    assert "no personalisation consent: non-personalised list (trending)" in r.text
    assert "<h3>Popular right now</h3>" in r.text
    assert "Because you bought" not in r.text and "rec-cross_sell" not in r.text
    assert "not personalised" in r.text
    # a customer with consent but no history gets the same list, with its own reason
    r = client.get(f"/recommend/customers/{shop.customer['newbie']}")
    assert tables(shop, r.text) == {"rec-trending": ["chair", "coffee", "kettle", "guide", "names"]}
    assert "no purchase history yet: trending list" in r.text


def test_unknown_ids(client, staff, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    login(client, "analyst")
    r = client.get("/recommend/products/999999")
    assert r.status_code == 404
    assert '<p class="notice" data-testid="rec-missing">no product 999999</p>' in r.text
    assert client.get("/recommend/products/0").status_code == 422
    assert client.get("/recommend/products/1%27%20OR%201=1").status_code == 422
    assert client.get("/recommend/customers/999999").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/recommend/products/{p}", "/recommend/customers/{c}", "/recommend/lookup?product_id={p}"],
)
def test_roles(client, staff, shop: Shop, path: str) -> None:  # type: ignore[no-untyped-def]
    url = path.format(p=shop.product["names"], c=shop.customer["c3"])
    anonymous = client.get(url, follow_redirects=False)
    assert anonymous.status_code == 303  # pages send a browser to the login form
    assert anonymous.headers["location"].startswith("/login")
    login(client, "seller_manager")
    assert client.get(url).status_code == 403
    for role in ("admin", "marketer", "analyst", "agent"):
        client.cookies.clear()
        login(client, role)
        assert client.get(url).status_code == 200, role
