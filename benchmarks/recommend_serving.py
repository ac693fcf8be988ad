"""Benchmark: also-bought and for-you through HTTP at a fixed request rate (open loop).

    .venv/bin/python benchmarks/recommend_serving.py [--customers 20000] [--rate 500]
        [--seconds 20] [--workers 2] [--connections 16] [--connect-gap 0.05] [--data-dir DIR]
        [--database-url URL] [--rebuild] [--trace DIR]

Generates the demo shop (`patronage demo --no-serve`, seed 42) into a SQLite database in
--data-dir (default: a temporary directory, deleted at the end; an existing database there
is reused) — or serves the shop at --database-url (a PostgreSQL copy made by
`demo_generate.py --db postgres`, whose keys.json is in --data-dir) — builds the
recommendation tables (`patronage recommend build`; only if no build is current, or with
--rebuild), starts the real server (`patronage serve --workers 2`) on a free port, creates
the staff user `bench-recommend` (role `analyst`: no personal data) and an API token, then
drives, one after the other, for --seconds each:

1. GET /health at --rate (the reference: the server's and the load generator's own floor);
2. GET /api/recommend/products/{id}/also-bought?limit=10 for random products;
3. GET /api/recommend/customers/{id}/for-you?limit=10 for random customers with orders;

then, closed loop (every connection sends its next request as soon as the last one is
answered) for 5 s each: /health (the load generator's own capacity), and also-bought and
for-you (the server's throughput).

The load is open loop: request i is due at t0 + i / rate whatever happened before, and its
latency is measured from that due time (a request waiting for a free connection counts
as slow: no coordinated omission; times from `time.perf_counter`). The client is a minimal
HTTP/1.1 keep-alive client on asyncio + uvloop over --connections connections, in this
process, opened --connect-gap seconds apart (back to back, most land on one server
worker). Prints one JSON line (p50 / p99 / max in ms, achieved requests/s, errors per run,
the load average before and after each run, the CPU ms per request of the server's
processes and how it split between them, the load generator's) and whether p99 <= 10 ms
held at the target rate for both lists.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

TARGET_P99_MS = 10.0
TARGET_RATE = 500
USERNAME = "bench-recommend"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# uvloop's loop.time() counts whole milliseconds and is read once per loop iteration: too
# coarse for latencies of a few ms, so every time here is read from perf_counter
clock = time.perf_counter


def load() -> float:
    return round(os.getloadavg()[0], 2)


SERVER_PID = 0  # the `patronage serve` process; its CPU and its workers' is read from /proc


def server_cpu() -> dict[int, float]:
    """CPU seconds (user + system) used so far by the server process and each descendant."""
    if not SERVER_PID:
        return {}
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, grew = {SERVER_PID}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        grew = bool(more)
        tree |= more
    return {p: ticks.get(p, 0) / os.sysconf("SC_CLK_TCK") for p in tree}


def patronage(*args: str, env: dict[str, str]) -> None:
    exe = Path(sys.executable).with_name("patronage")
    subprocess.run([str(exe), *args], env=env, check=True, stdout=subprocess.DEVNULL)


def prepare(data_dir: Path, customers: int, env: dict[str, str], rebuild: bool) -> None:
    url = env["PATRONAGE_DATABASE_URL"]
    if url.startswith("sqlite:") and not (data_dir / "patronage.db").exists():
        say(f"generating the demo shop ({customers:,} customers)…")
        patronage("demo", "--customers", str(customers), "--no-serve", "--reset", "--yes", env=env)
    if rebuild or not _has_current_build(url):
        say("building the recommendation tables…")
        patronage("recommend", "build", env=env)


def _count(url: str, table: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return int(con.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _has_current_build(url: str) -> bool:
    return _count(url, "recommend_current") > 0


def use_database(url: str, data_dir: Path) -> None:
    from patronage import config, db

    os.environ["PATRONAGE_DATABASE_URL"] = url
    os.environ["PATRONAGE_DATA_DIR"] = str(data_dir)
    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()


def token() -> str:
    import secrets

    from patronage.auth import service as auth_service
    from patronage.db import transaction
    from patronage.errors import Conflict

    with transaction() as session:
        with contextlib.suppress(Conflict):  # made by an earlier run
            auth_service.create_user(session, USERNAME, secrets.token_urlsafe(16), "analyst")
        _, secret = auth_service.create_token(session, USERNAME, f"serving {time.time():.0f}")
    return secret


def sample_ids(seed: int, n: int) -> tuple[list[int], list[int]]:
    """Random products that have an also-bought row and random customers with orders."""
    from sqlalchemy import text

    from patronage.db import transaction

    rng = np.random.default_rng(seed)
    with transaction() as session:
        products = [
            int(r[0])
            for r in session.execute(
                text(
                    "SELECT DISTINCT s.product_id FROM recommend_similar_items s "
                    "JOIN recommend_current c ON c.build_id = s.build_id "
                    "WHERE s.kind = 'also_bought'"
                )
            )
        ]
        customers = [
            int(r[0]) for r in session.execute(text("SELECT DISTINCT customer_id FROM orders"))
        ]
    if not products or not customers:
        raise SystemExit("no built recommendations or no orders in the database")
    return (
        [int(p) for p in rng.choice(products, n)],
        [int(c) for c in rng.choice(customers, n)],
    )


# -- the load generator -------------------------------------------------------------------------
class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> tuple[int, int]:
        """Send one request, read the whole response: (status, body bytes)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, len(body)


def request_bytes(path: str, port: int, bearer: str | None) -> bytes:
    auth = f"Authorization: Bearer {bearer}\r\n" if bearer else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Accept: application/json\r\n\r\n"
    ).encode()


CONNECT_GAP = 0.05  # default seconds between opening two connections (--connect-gap)


async def connect(port: int, n: int, gap: float = CONNECT_GAP) -> list[Connection]:
    """n keep-alive connections, each with one request answered before the next is opened.

    The server's workers share one listening socket; a worker woken by a burst of new
    connections accepts every one pending, so connections opened back to back mostly land
    on one worker (measured: 77-94 % of the server's CPU in one of two workers). Opened
    `gap` seconds apart, they split about evenly (`server_cpu_split` shows it per run).
    """
    out = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = Connection(reader, writer)
        await conn.get(request_bytes("/health", port, None))
        out.append(conn)
        if gap:
            await asyncio.sleep(gap)
    return out


def summary(
    latencies: list[float],
    errors: int,
    elapsed: float,
    before: float,
    cpu: tuple[dict[int, float], float],
) -> dict[str, Any]:
    values = np.array(latencies) if latencies else np.zeros(1)
    served = max(1, len(latencies) + errors)
    now = server_cpu()
    used = {p: now[p] - cpu[0].get(p, 0.0) for p in now}
    total = sum(used.values())
    return {
        "requests": len(latencies) + errors,
        "ok": len(latencies),
        "errors": errors,
        "achieved_rps": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p90_ms": round(float(np.percentile(values, 90)), 2),
        "p99_ms": round(float(np.percentile(values, 99)), 2),
        "max_ms": round(float(values.max()), 2),
        # CPU per request of the server (both workers) and of this load generator
        "server_cpu_ms": round(total * 1000 / served, 3),
        # how the server's CPU split between its processes (the workers share the
        # connections as the kernel hands them out, not necessarily evenly)
        "server_cpu_split": sorted((round(u / total, 2) for u in used.values() if u), reverse=True)
        if total
        else [],
        "client_cpu_ms": round((time.process_time() - cpu[1]) * 1000 / served, 3),
        "load_before": before,
        "load_after": load(),
    }


async def open_loop(
    port: int,
    paths: list[str],
    bearer: str | None,
    rate: float,
    seconds: float,
    conns: int,
    gap: float = CONNECT_GAP,
    trace: Path | None = None,
) -> dict[str, Any]:
    """Request i due at t0 + i / rate; latency from its due time to its last response byte.
    With `trace`, every answered request's (due time in s from t0, latency in ms) is written
    there as JSON, with t0 on `time.perf_counter`'s clock (CLOCK_MONOTONIC: the same in every
    process), so slow requests can be matched with what the server did at that moment."""
    before = load()
    cpu = (server_cpu(), time.process_time())
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for c in await connect(port, conns, gap):
        pool.put_nowait(c)
    total = int(rate * seconds)
    requests = [request_bytes(paths[i % len(paths)], port, bearer) for i in range(total)]
    latencies: list[float] = []
    dues: list[float] = []
    errors = 0

    async def one(request: bytes, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status, _ = await conn.get(request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            conn = Connection(reader, writer)
        else:
            if status == 200:
                latencies.append((clock() - due) * 1000)
                dues.append(due - t0)
            else:
                errors += 1
        pool.put_nowait(conn)

    tasks = []
    t0 = clock() + 0.05
    for i in range(total):
        due = t0 + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[i], due)))
    await asyncio.gather(*tasks)
    elapsed = clock() - t0
    while not pool.empty():
        pool.get_nowait().writer.close()
    if trace is not None:
        pairs = [[round(d, 4), round(t, 2)] for d, t in zip(dues, latencies, strict=True)]
        trace.write_text(json.dumps({"t0_perf_counter": t0, "requests": pairs}))
    return summary(latencies, errors, elapsed, before, cpu)


async def closed_loop(
    port: int,
    paths: list[str],
    bearer: str | None,
    seconds: float,
    conns: int,
    gap: float = CONNECT_GAP,
) -> dict[str, Any]:
    """As fast as the server answers: every connection sends its next request at once."""
    before = load()
    cpu = (server_cpu(), time.process_time())
    requests = [request_bytes(path, port, bearer) for path in paths]
    sent = 0
    connections = await connect(port, conns, gap)
    latencies: list[float] = []
    errors = 0
    stop = clock() + seconds

    async def run(conn: Connection) -> None:
        nonlocal errors, sent
        while clock() < stop:
            request = requests[sent % len(requests)]
            sent += 1
            started = clock()
            status, _ = await conn.get(request)
            if status == 200:
                latencies.append((clock() - started) * 1000)
            else:
                errors += 1

    t0 = clock()
    await asyncio.gather(*(run(c) for c in connections))
    elapsed = clock() - t0
    for c in connections:
        c.writer.close()
    return summary(latencies, errors, elapsed, before, cpu)


def wait_ready(port: int, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            error = server.stderr.read().decode() if server.stderr else ""
            raise SystemExit(f"server exited: {error[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this process during a timed run.

    The load generator imports the application (to make its token) and holds every
    request's latency: its full collections took 49-80 ms, and a pause of the load generator
    is measured as the server's latency (requests due meanwhile are sent late). What is alive
    before a run is frozen out of the collector's walks; cycles made during the run wait."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def drive(args: argparse.Namespace, port: int, bearer: str) -> dict[str, Any]:
    products, customers = sample_ids(args.seed, int(args.rate * args.seconds))
    lists = {
        "also_bought": [f"/api/recommend/products/{p}/also-bought?limit=10" for p in products],
        "for_you": [f"/api/recommend/customers/{c}/for-you?limit=10" for c in customers],
    }
    runs: dict[str, Any] = {}
    say("warming up…")
    for paths in lists.values():  # every worker process imports, connects and caches
        await open_loop(port, paths[:400], bearer, 200, 2, args.connections, args.connect_gap)
    timed = [("health", ["/health"], None), *((n, p, bearer) for n, p in lists.items())]
    for name, paths, auth in timed:
        say(f"{name} at {args.rate}/s for {args.seconds} s{' (reference)' * (auth is None)}…")
        trace = args.trace / f"{name}.json" if args.trace else None
        with collector_paused():
            runs[name] = await open_loop(
                port,
                paths,
                auth,
                args.rate,
                args.seconds,
                args.connections,
                args.connect_gap,
                trace,
            )
        say(json.dumps(runs[name]))
    for name, paths, auth in timed:  # the throughput: as many as the server answers
        what = "the load generator's capacity" if auth is None else "the server's throughput"
        say(f"{name} closed loop ({what})…")
        with collector_paused():
            runs[f"{name}_max"] = await closed_loop(port, paths, auth, 5, 16, args.connect_gap)
        say(json.dumps(runs[f"{name}_max"]))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=TARGET_RATE)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="keep-alive connections",
    )
    parser.add_argument(
        "--connect-gap",
        type=float,
        default=CONNECT_GAP,
        help="seconds between opening two connections, so that both workers accept some "
        "(0: back to back, most land on one worker)",
    )
    parser.add_argument("--seed", type=int, default=500)
    parser.add_argument(
        "--rebuild", action="store_true", help="build the tables even if a build is current"
    )
    parser.add_argument("--data-dir", default=None, help="kept; an existing shop is reused")
    parser.add_argument(
        "--database-url",
        default=None,
        help="serve this shop (PostgreSQL: generated by demo_generate.py --db postgres) "
        "instead of a SQLite file in --data-dir, which then holds its keys.json",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        default=None,
        help="a directory: each open-loop run's requests (due time, latency) as RUN.json",
    )
    args = parser.parse_args()
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)

    if args.database_url and not args.data_dir:
        parser.error("--database-url needs --data-dir (the directory holding its keys.json)")
    temporary = args.data_dir is None
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="bench-recommend-")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{data_dir / 'patronage.db'}"
    if args.database_url and not _count(url, "customers"):
        parser.error(f"no shop in {url}: generate one (benchmarks/demo_generate.py --db postgres)")
    env = {
        **os.environ,
        "PATRONAGE_DATABASE_URL": url,
        "PATRONAGE_DATA_DIR": str(data_dir),
        "PATRONAGE_LOG_LEVEL": "WARNING",
    }
    server = None
    try:
        prepare(data_dir, args.customers, env, args.rebuild)
        shop = {"customers": _count(url, "customers"), "products": _count(url, "products")}
        use_database(url, data_dir)
        bearer = token()
        port = free_port()
        exe = Path(sys.executable).with_name("patronage")
        command = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(args.workers)]
        server = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_ready(port, server)
        global SERVER_PID
        SERVER_PID = server.pid
        import uvloop

        runs = uvloop.run(drive(args, port, bearer))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)

    met = all(
        runs[n]["p99_ms"] <= TARGET_P99_MS
        and runs[n]["errors"] == 0
        and runs[n]["achieved_rps"] >= 0.98 * args.rate
        for n in ("also_bought", "for_you")
    )
    result = {
        "benchmark": "recommend_serving",
        "db": url.split(":", 1)[0].split("+", 1)[0],
        **shop,
        "server_workers": args.workers,
        "rate": args.rate,
        "seconds": args.seconds,
        "connections": args.connections,
        "connect_gap": args.connect_gap,
        "cpus": os.cpu_count(),
        **runs,
        "target": {"p99_ms": TARGET_P99_MS, "rate": TARGET_RATE},
        "met": met,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
