"""The web console in a real browser against a real server: sign in, dashboard, find, 360.

The app runs with uvicorn in a process of its own on a free port, with its own data directory
and SQLite file, set up the way an operator would: `patronage migrate`, `patronage users
create`, `patronage tokens create`, then customers through the REST API. Orders have no REST
endpoint yet, so one is written through the ORM before the server starts. Screenshots of
every page land in test-artifacts/e2e/ for people to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ARTIFACTS, bearer, unavailable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ARTIFACTS / "e2e"
BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "e2e correct horse battery"
ADA = {
    "user_id": "u-ada",
    "email": "ada.lovelace@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "country": "GB",
    "city": "London",
    "signup_at": "2024-02-01T09:00:00Z",
}
OTHERS = [
    {"user_id": "u-grace", "email": "grace@example.com", "first_name": "Grace", "country": "US"},
    {"user_id": "u-alan", "email": "alan@example.com", "first_name": "Alan", "country": "GB"},
    {"user_id": "u-emmy", "email": "emmy@example.com", "first_name": "Emmy", "country": "DE"},
]

# ten days ago: inside the dashboard's window of the last 24 months
PLACED = (datetime.now(UTC) - timedelta(days=10)).replace(
    hour=14, minute=30, second=0, microsecond=0
)


@dataclass
class Server:
    url: str
    token: str
    ada_id: int
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _patronage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "patronage"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, f"patronage {args[0]} failed: {result.stderr}"
    return result.stdout


def _write_order(env: dict[str, str]) -> None:
    """Ada and one order with everything, written through the ORM into the server's file."""
    from patronage import config, db
    from patronage.catalog.models import Product
    from patronage.customers import service as customers_service
    from patronage.customers.schemas import CustomerCreate
    from patronage.migrations import import_models
    from patronage.orders.models import Order, OrderItem, Payment, Shipment

    import_models()  # every table, so foreign keys to them resolve

    saved = {k: os.environ.get(k) for k in env if k.startswith("PATRONAGE_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("PATRONAGE_")})
    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()
    try:
        with db.transaction() as session:
            ada = customers_service.create_customer(session, CustomerCreate.model_validate(ADA))
            product = Product(external_id="sku-engine", name="Analytical Engine", price_minor=6150)
            session.add(product)
            session.flush()
            placed = PLACED
            order = Order(
                external_id="ORD-1843",
                customer_id=ada.id,
                status="delivered",
                channel="web",
                currency="EUR",
                subtotal_minor=12300,
                total_minor=12345,
                shipping_minor=45,
                placed_at=placed,
            )
            session.add(order)
            session.flush()
            session.add_all(
                [
                    OrderItem(
                        order_id=order.id,
                        product_id=product.id,
                        quantity=2,
                        unit_price_minor=6150,
                    ),
                    Payment(
                        order_id=order.id,
                        method="card",
                        status="captured",
                        amount_minor=12345,
                        created_at=placed,
                    ),
                    Shipment(
                        order_id=order.id,
                        carrier="DHL",
                        status="delivered",
                        shipped_at=placed,
                        delivered_at=PLACED + timedelta(days=2),
                    ),
                ]
            )
    finally:
        db.dispose_engines()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.get_settings.cache_clear()
        config.reset_cipher()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not CHROMIUM.exists():
        unavailable(f"Chromium not found at {CHROMIUM}")
    data_dir = tmp_path_factory.mktemp("e2e-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONAGE_")}
    env.update(
        {
            "PATRONAGE_ENV": "test",
            "PATRONAGE_DATA_DIR": str(data_dir),
            "PATRONAGE_DATABASE_URL": f"sqlite:///{data_dir / 'patronage.db'}",
        }
    )
    _patronage(env, "migrate")
    _patronage(env, "users", "create", "admin", "--role", "admin", "--password", ADMIN_PASSWORD)
    token = _patronage(env, "tokens", "create", "admin", "--name", "e2e").strip().splitlines()[-1]
    _write_order(env)

    port = _free_port()
    log = data_dir / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(BIN / "python"), "-m", "uvicorn", "patronage.app:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"server exited: {log.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server did not start: {log.read_text()}"
            time.sleep(0.25)
        with httpx.Client(base_url=url, headers=bearer(token), timeout=30) as api:
            ada = api.get("/api/customers", params={"email": ADA["email"]}).json()["items"]
            assert len(ada) == 1
            for body in OTHERS:
                created = api.post("/api/customers", json=body)
                assert created.status_code == 201, created.text
        yield Server(url, token, int(ada[0]["id"]), log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except Error as exc:
            unavailable(f"Chromium at {CHROMIUM} does not start: {exc}")
        yield chromium
        chromium.close()


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _watched_page(browser: Any, problems: list[str]) -> tuple[Any, Any]:
    """A page whose script errors, console errors (CSP violations among them), failed loads
    and requests to any host but 127.0.0.1 (which are blocked: no CDN, no network) are
    appended to `problems`."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")

    def local_only(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            problems.append(f"off-host request: {route.request.url}")
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None
        ),
    )
    page.set_default_timeout(30_000)
    return context, page


def test_sign_in_dashboard_search_and_profile(server: Server, browser: Any) -> None:
    problems: list[str] = []
    context, page = _watched_page(browser, problems)

    # signing out is the default; the console sends people to the form and back
    page.goto(server.url + "/")
    assert page.url == f"{server.url}/login?next=/"
    _shot(page, "01-login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password."
    assert problems == [f"401 POST {server.url}/login"]  # the wrong password, as it should
    problems.clear()
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")

    # the dashboard: its KPI tiles count what the server holds
    assert page.title() == "Dashboard · patronage"
    assert page.locator("main h1").inner_text() == "Dashboard"
    tiles = {
        name: page.locator(f"[data-testid=kpi-{name}] .value").inner_text()
        for name in ("customers", "buyers", "orders", "revenue", "aov", "repeat")
    }
    assert tiles == {
        "customers": "4",
        "buyers": "1",
        "orders": "1",
        "revenue": "123.45",
        "aov": "123.45",
        "repeat": "0.0%",
    }
    page.get_by_text("The same figures as a table").click()
    month = page.locator("[data-testid=revenue-table] tbody tr", has_text=f"{PLACED:%Y-%m}")
    assert month.locator("td").all_inner_texts() == [f"{PLACED:%Y-%m}", "1", "123.45"]
    page.wait_for_function("() => window.Chart && Chart.getChart('revenue-chart')")
    assert page.locator(".topbar").get_by_text("admin · admin").is_visible()
    _shot(page, "02-dashboard")

    # the quick search in the top bar finds a customer by email
    search = page.get_by_role("searchbox", name="Find a customer")
    search.fill(ADA["email"].upper())
    search.press("Enter")
    page.wait_for_url(f"{server.url}/customers")  # answered directly: the email is in no URL
    rows = page.locator("[data-testid=customer-table] tbody tr")
    assert rows.count() == 1
    assert ADA["email"] in rows.first.inner_text()
    assert page.locator(".pager").inner_text().strip() == "Page 1 of 1"
    _shot(page, "03-search")

    # the customer 360 from the result
    rows.first.get_by_role("link", name=f"#{server.ada_id}").click()
    page.wait_for_url(f"{server.url}/customers/{server.ada_id}")
    assert page.locator("main h1").inner_text().strip() == "Ada Lovelace"
    assert page.get_by_test_id("email").inner_text() == ADA["email"]
    orders = page.get_by_test_id("profile-orders")
    assert "(1)" in orders.locator("h2").inner_text()
    order_row = orders.locator("tbody tr").first
    cells = [c.strip() for c in order_row.locator("td").all_inner_texts()]
    assert cells[0] == "ORD-1843"
    assert cells[1] == f"{PLACED:%Y-%m-%d} 14:30"
    assert cells[2] == "delivered"
    assert "2 × Analytical Engine" in cells[3]
    assert cells[4] == "123.45 EUR"
    assert cells[5] == "card · captured"
    assert cells[6] == f"DHL · delivered ({PLACED + timedelta(days=2):%Y-%m-%d})"
    _shot(page, "04-profile")

    # the whole customer list, sorted by the country header
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.wait_for_url(f"{server.url}/customers")
    assert page.locator("[data-testid=customer-table] tbody tr").count() == 4
    page.get_by_role("link", name="Country").click()
    page.wait_for_url("**sort=country**")
    countries = page.locator("[data-testid=customer-table] tbody tr td:nth-child(5)")
    assert countries.all_inner_texts() == ["DE", "GB", "GB", "US"]
    _shot(page, "05-customers")

    assert problems == []
    context.close()


def test_api_docs_work_offline(server: Server, browser: Any) -> None:
    """/api/docs renders the OpenAPI description from the app itself, under its own CSP."""
    problems: list[str] = []
    context, page = _watched_page(browser, problems)
    page.goto(server.url + "/api/docs")
    try:
        page.locator(".swagger-ui .info .title").wait_for(timeout=15_000)
    finally:
        _shot(page, "06-api-docs")
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("patronage")
    assert page.locator(".opblock-summary-path", has_text="/api/customers/{customer_id}").count()
    assert problems == []
    context.close()
