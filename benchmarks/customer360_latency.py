"""Benchmark: latency of the customer 360 (GET /api/customers/{id}) on a big demo database.

    .venv/bin/python benchmarks/customer360_latency.py --db-url sqlite:////path/bench.db \\
        --data-dir /path            # the data directory holding the database's keys.json
    .venv/bin/python benchmarks/customer360_latency.py \\
        --db-url postgresql://postgres@127.0.0.1:5432/bench_demo --data-dir /path

Starts the real server (`patronage serve` in a subprocess), creates a staff user and a fresh
API token, then GETs the profiles of --n random customers who have orders, one after the
other over one keep-alive connection, after a short warm-up. Prints one JSON line: p50,
p95, p99, max and mean in milliseconds, response sizes, and whether p99 met the target.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

TARGET_P99_MS = 25.0
USERNAME = "bench-360"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def use_database(url: str, data_dir: Path) -> None:
    from patronage import config, db

    os.environ["PATRONAGE_DATABASE_URL"] = url
    os.environ["PATRONAGE_DATA_DIR"] = str(data_dir)
    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()


def token_for(role: str) -> str:
    import secrets

    from patronage.auth import service as auth_service
    from patronage.db import transaction
    from patronage.errors import Conflict

    with transaction() as session:
        with contextlib.suppress(Conflict):  # made by an earlier run
            auth_service.create_user(session, USERNAME, secrets.token_urlsafe(16), role)
        _, secret = auth_service.create_token(session, USERNAME, f"latency {time.time():.0f}")
    return secret


# the tables a profile reads; their rows and indexes are what a running shop keeps in memory
PROFILE_TABLES = (
    "customers", "identities", "consents", "milestones", "customer_merges", "orders",
    "order_items", "products", "payments", "shipments", "returns", "refunds", "events",
    "users", "api_tokens",
)  # fmt: skip


def prewarm(db_url: str) -> float:
    """Load the profile's tables and indexes into the OS page cache, every customer alike
    (not only the measured ones): the state of a server that has been running for a while."""
    from sqlalchemy import text

    from patronage.db import transaction

    started = time.perf_counter()
    if db_url.startswith("sqlite"):
        with Path(db_url.removeprefix("sqlite:///")).open("rb") as handle:
            while handle.read(1 << 24):
                pass
    else:
        with transaction() as session:
            session.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
            session.execute(
                text(
                    "SELECT pg_prewarm(c.oid::regclass, 'read') FROM pg_class c"
                    " JOIN pg_class t ON t.oid = c.oid OR t.oid = ("
                    "   SELECT indrelid FROM pg_index WHERE indexrelid = c.oid)"
                    " WHERE t.relname = ANY(:tables) AND c.relkind IN ('r', 'i')"
                ),
                {"tables": list(PROFILE_TABLES)},
            )
    return time.perf_counter() - started


def customers_with_orders(n: int, seed: int) -> list[int]:
    """`n` distinct random customers that have at least one order (same seed, same list)."""
    from sqlalchemy import text

    from patronage.db import transaction

    rng = np.random.default_rng(seed)
    with transaction() as session:
        highest = int(session.execute(text("SELECT MAX(id) FROM customers")).scalar_one())
        chosen: list[int] = []
        seen: set[int] = set()
        while len(chosen) < n:
            candidates = [int(c) for c in rng.integers(1, highest + 1, 4 * n) if int(c) not in seen]
            seen.update(candidates)
            buyers = {
                int(r[0])
                for r in session.execute(
                    text(
                        "SELECT DISTINCT customer_id FROM orders "
                        f"WHERE customer_id IN ({','.join(map(str, candidates))})"
                    )
                )
            }
            chosen.extend(c for c in candidates if c in buyers)
    return chosen[:n]


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    patronage = Path(sys.executable).with_name("patronage")
    return subprocess.Popen(
        [str(patronage), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_ready(client: httpx.Client, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            error = server.stderr.read().decode() if server.stderr else ""
            raise SystemExit(f"server exited: {error[-2000:]}")
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q, method="higher"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", required=True)
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("PATRONAGE_DATA_DIR", "var"),
        help="the data directory with the keys the database was written with",
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=360)
    parser.add_argument("--role", default="admin", help="admin and agent see personal data")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--prewarm",
        action="store_true",
        help="first load the profile's tables into the OS page cache (a warmed-up server)",
    )
    args = parser.parse_args()

    data_dir = Path(args.data_dir).resolve()
    use_database(args.db_url, data_dir)
    token = token_for(args.role)
    prewarm_seconds = prewarm(args.db_url) if args.prewarm else None
    if prewarm_seconds is not None:
        print(f"prewarmed in {prewarm_seconds:.1f} s", file=sys.stderr)
    ids = customers_with_orders(args.n + args.warmup, args.seed)
    warmup, measured = ids[: args.warmup], ids[args.warmup :]
    print(f"{len(measured)} customers chosen", file=sys.stderr)

    port = args.port or free_port()
    env = {
        **os.environ,
        "PATRONAGE_DATABASE_URL": args.db_url,
        "PATRONAGE_DATA_DIR": str(data_dir),
        "PATRONAGE_LOG_LEVEL": "WARNING",
    }
    server = start_server(port, env)
    latencies: list[float] = []
    sizes: list[int] = []
    orders: list[int] = []
    reference: list[float] = []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as client:
            wait_ready(client, server)
            for customer_id in warmup:
                client.get(f"/api/customers/{customer_id}").raise_for_status()
            for customer_id in measured:
                started = time.perf_counter()
                response = client.get(f"/api/customers/{customer_id}")
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                sizes.append(len(response.content))
                orders.append(int(response.json()["orders_total"]))
            # the reference, in the same run: the server's floor (HTTP, auth-free route, one
            # trivial query) interleaved with nothing else, as many times
            for _ in measured:
                started = time.perf_counter()
                client.get("/health").raise_for_status()
                reference.append((time.perf_counter() - started) * 1000)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

    backend = args.db_url.split(":", 1)[0].split("+", 1)[0]
    result: dict[str, Any] = {
        "benchmark": "customer360_latency",
        "db": backend,
        "requests": len(latencies),
        "role": args.role,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(float(np.mean(latencies)), 2),
        "mean_response_bytes": round(float(np.mean(sizes))),
        "mean_orders_total": round(float(np.mean(orders)), 1),
        "target_p99_ms": TARGET_P99_MS,
        "reference_health_p50_ms": round(percentile(reference, 50), 2),
        "reference_health_p99_ms": round(percentile(reference, 99), 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "prewarm_seconds": None if prewarm_seconds is None else round(prewarm_seconds, 1),
    }
    result["met"] = result["p99_ms"] <= TARGET_P99_MS
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
