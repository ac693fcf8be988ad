"""Sustained ingestion through POST /v1/batch, on SQLite and PostgreSQL.

A real server (uvicorn, 2 workers) on 127.0.0.1; load generated on this machine by a few
client processes over keep-alive connections, 100 messages a batch (realistic web-shop
traffic: page views, product views, cart and order events, identifies; ~20% of batches carry
consent preferences). The API lands accepted messages and answers; the processor (a child
process of each server worker, at a lower CPU priority) turns them into events
(docs/adr/0004-ingest-landing.md). Measures,
per database:

- sustained events/s acknowledged at full load (closed loop), with some batches sent twice;
  the processor's events/s during that load and the backlog it leaves;
- the processor alone: the time to drain that backlog, and its events/s (API idle);
- p50 / p99 batch latency at half the full-load rate (paced), and the backlog after it;
- zero loss: after the processor drains, events stored == unique messages acknowledged;
  resent batches store nothing (duplicates stored 0);
- the raw limit: the same rows inserted directly, 100 a transaction (executemany on SQLite,
  COPY on PostgreSQL), and the ratio API / raw;
- kill -9: the server (all workers) killed in the middle of sustained load and restarted,
  clients retrying every batch not acknowledged; after draining, every acknowledged message
  is stored exactly once (--kill-seconds 0 skips it).

    .venv/bin/python benchmarks/ingest_batch.py [--db sqlite,postgres] [--seconds 20]

Prints one JSON line; progress on stderr.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 100


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# -- environment: a database, a data directory, a source ---------------------------------


@contextmanager
def environment(kind: str, pg_url: str) -> Iterator[dict[str, str]]:
    """A fresh migrated database and data directory; yields the server's environment."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    tmp = Path(tempfile.mkdtemp(prefix=f"patronage-bench-{kind}-"))
    env = {
        "PATRONAGE_ENV": "development",
        "PATRONAGE_DATA_DIR": str(tmp),
        "PATRONAGE_LOG_LEVEL": "WARNING",
        "PATRONAGE_INGEST_PROCESSING": "background",
    }
    admin = None
    dbname = None
    if kind == "sqlite":
        env["PATRONAGE_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    else:
        base = make_url(pg_url).set(drivername="postgresql+psycopg")
        dbname = f"patronage_bench_{os.getpid()}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}"'))
            conn.execute(text(f'CREATE DATABASE "{dbname}"'))
        env["PATRONAGE_DATABASE_URL"] = base.set(database=dbname).render_as_string(
            hide_password=False
        )
    os.environ.update(env)
    from patronage import config, db, migrate

    config.get_settings.cache_clear()
    config.reset_cipher()
    db.dispose_engines()
    migrate.upgrade()
    try:
        yield env
    finally:
        db.dispose_engines()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def create_source() -> str:
    from patronage import db
    from patronage.auth import service as auth_service

    with db.transaction() as s:
        _, key = auth_service.create_source(s, "bench")
    return key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "patronage.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning",
        ],
        env={**os.environ, **env},
        start_new_session=True,  # its own process group: kill -9 takes the workers too
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited at start-up")
        time.sleep(0.2)
    raise RuntimeError("server did not start within 60 s")


def stop_server(proc: subprocess.Popen[bytes], hard: bool = False) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- traffic -------------------------------------------------------------------------------

PRODUCTS = [
    {
        "product_id": f"sku-{n}",
        "name": f"Product {n}",
        "price": round(5 + n * 0.37, 2),
        "category": f"Cat {n % 12}",
    }
    for n in range(400)
]
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
PAGE = {
    "url": "https://shop.example/p/42?ref=nl",
    "path": "/p/42",
    "referrer": "https://news.example/",
    "title": "Lamp",
}


def _message(rng: random.Random, client: int, batch: int, i: int) -> dict[str, Any]:
    visitor = rng.randrange(5000)
    anon = f"anon-{visitor}"
    user = f"user-{visitor}" if visitor % 3 == 0 else None
    context: dict[str, Any] = {
        "ip": f"198.51.{visitor % 250}.{visitor % 199}",
        "userAgent": UA,
        "locale": "de-DE",
        "timezone": "Europe/Berlin",
        "library": {"name": "analytics.js", "version": "5.2.0"},
        "page": dict(PAGE),
        "campaign": {"source": "newsletter", "medium": "email", "name": "autumn"},
    }  # fmt: skip
    if batch % 5 == 0:
        context["consent"] = {
            "categoryPreferences": {"Analytics": visitor % 2 == 0, "Functional": True}
        }
    roll = rng.random()
    product = PRODUCTS[rng.randrange(len(PRODUCTS))]
    msg: dict[str, Any]
    if roll < 0.35:
        msg = {"type": "page", "name": "Product", "properties": {"path": "/p/42", "title": "Lamp"}}
    elif roll < 0.75:
        msg = {"type": "track", "event": "Product Viewed", "properties": dict(product)}
    elif roll < 0.9:
        msg = {
            "type": "track",
            "event": "Product Added",
            "properties": {**product, "quantity": 1, "cart_id": f"c-{visitor}"},
        }
    elif roll < 0.97:
        msg = {"type": "track", "event": "Products Searched", "properties": {"query": "desk lamp"}}
    else:
        msg = {"type": "identify", "traits": {"plan": "basic", "language": "de"}}
    msg.update(
        messageId=f"c{client}-b{batch}-m{i}",
        anonymousId=anon,
        timestamp="2026-11-20T10:00:00.000Z",
        sentAt="2026-11-20T10:00:00.100Z",
        context=context,
    )
    if user:
        msg["userId"] = user
    return msg


def batch_body(client: int, batch: int) -> bytes:
    rng = random.Random(client * 1_000_003 + batch)
    return json.dumps({"batch": [_message(rng, client, batch, i) for i in range(BATCH)]}).encode()


class Sender:
    """One keep-alive connection; reconnects (and the caller retries) when it breaks."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.headers = {
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        }
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            self.conn.request("POST", "/v1/batch", body, self.headers)
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            return 0


def client_run(
    client: int,
    port: int,
    key: str,
    seconds: float,
    rate: float | None,
    resend_every: int,
    phase: str,
    out: Any,
) -> None:
    """Send batches for `seconds` (as fast as possible, or `rate` batches/s); report."""
    # pre-build a pool of bodies so that generation never competes with the measurement
    pool = [batch_body(client, b) for b in range(64)]
    sender = Sender(port, key)
    latencies: list[float] = []
    acked = errors = resent = 0
    start = time.perf_counter()
    batch = 0
    next_at = start
    while True:
        now = time.perf_counter()
        if now - start >= seconds:
            break
        if rate:
            if now < next_at:
                time.sleep(next_at - now)
            next_at += 1.0 / rate
        # each batch number has its own message ids: the pool body with its ids renamed
        body = pool[batch % 64].replace(
            b'"messageId": "c', f'"messageId": "{phase}{batch}c'.encode()
        )
        t0 = time.perf_counter()
        status = sender.post(body)
        latencies.append(time.perf_counter() - t0)
        if status == 200:
            acked += 1
            if resend_every and batch % resend_every == 0:  # a client retry of the same batch
                sender.post(body)
                resent += 1
        else:
            errors += 1
        batch += 1
    elapsed = time.perf_counter() - start
    out.put(
        {
            "client": client,
            "acked": acked,
            "errors": errors,
            "resent": resent,
            "elapsed": elapsed,
            "latencies": latencies,
        }
    )


def run_load(
    port: int,
    key: str,
    clients: int,
    seconds: float,
    rate: float | None,
    resend_every: int,
    phase: str,
) -> dict[str, Any]:
    queue: Any = mp.get_context("fork").Queue()
    procs = [
        mp.get_context("fork").Process(
            target=client_run,
            args=(
                c,
                port,
                key,
                seconds,
                rate / clients if rate else None,
                resend_every,
                phase,
                queue,
            ),
        )
        for c in range(clients)
    ]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for r in results for x in r["latencies"])
    acked = sum(r["acked"] for r in results)
    elapsed = max(r["elapsed"] for r in results)
    return {
        "acked_batches": acked,
        "acked_messages": acked * BATCH,
        "errors": sum(r["errors"] for r in results),
        "resent_batches": sum(r["resent"] for r in results),
        "seconds": round(elapsed, 2),
        "events_per_s": round(acked * BATCH / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1)
        if latencies
        else None,
    }


# -- checks and the raw reference --------------------------------------------------------


def backlog() -> int:
    """Messages landed and not yet processed (SQLite: the landing table is a file of its own)."""
    from patronage import db
    from patronage.collect import service

    with db.transaction() as s:
        waiting, _set_aside = service.landing_backlog(s)
    return waiting


def event_count() -> int:
    from sqlalchemy import text

    from patronage import db

    with db.transaction() as s:
        return int(s.execute(text("SELECT count(*) FROM events")).scalar_one())


def wait_drained(timeout: float = 900.0) -> dict[str, Any]:
    """Wait for the server's processors to empty the landing table; their events/s."""
    pending, before = backlog(), event_count()
    t0 = time.perf_counter()
    while backlog() and time.perf_counter() - t0 < timeout:
        time.sleep(0.25)
    elapsed = time.perf_counter() - t0
    processed = event_count() - before
    return {
        "backlog": pending,
        "drain_seconds": round(elapsed, 2),
        "left": backlog(),
        "events_per_s": round(processed / elapsed) if pending and elapsed else None,
    }


def stored_events() -> tuple[int, int]:
    from sqlalchemy import text

    from patronage import db

    with db.transaction() as s:
        total = s.execute(text("SELECT count(*) FROM events")).scalar_one()
        distinct = s.execute(text("SELECT count(DISTINCT message_id) FROM events")).scalar_one()
    return int(total), int(distinct)


def raw_insert_rate(kind: str, limit: int) -> dict[str, Any]:
    """The same rows (as stored by the API) inserted directly into an empty copy of the
    table, 100 a transaction: executemany on SQLite, COPY on PostgreSQL."""
    from sqlalchemy import text

    from patronage import db
    from patronage.collect.repository import COLUMNS

    cols = ", ".join(COLUMNS)
    engine = db.get_engine()
    with engine.connect() as conn:
        rows = [
            tuple(r)
            for r in conn.execute(text(f"SELECT {cols} FROM events ORDER BY id LIMIT {limit}"))
        ]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if kind == "sqlite":
            cur.execute("DROP TABLE IF EXISTS events_raw")
            ddl = cur.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
            cur.execute(ddl.replace("CREATE TABLE events", "CREATE TABLE events_raw", 1))
            for index_sql in cur.execute(
                "SELECT sql FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
            ).fetchall():
                cur.execute(
                    index_sql[0]
                    .replace(" ON events ", " ON events_raw ")
                    .replace("INDEX ix_events", "INDEX raw_ix_events")
                )
            raw.commit()
            sql = f"INSERT INTO events_raw ({cols}) VALUES ({', '.join('?' for _ in COLUMNS)})"
            t0 = time.perf_counter()
            for start in range(0, len(rows), BATCH):
                cur.executemany(sql, rows[start : start + BATCH])
                raw.commit()
            elapsed = time.perf_counter() - t0
        else:
            cur.execute("DROP TABLE IF EXISTS events_raw")
            cur.execute("CREATE TABLE events_raw (LIKE events INCLUDING ALL)")
            raw.commit()
            converted = [
                tuple(json.dumps(v) if isinstance(v, dict) else v for v in r) for r in rows
            ]
            t0 = time.perf_counter()
            for start in range(0, len(converted), BATCH):
                with cur.copy(f"COPY events_raw ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in converted[start : start + BATCH]:
                        copy.write_row(row)
                raw.commit()
            elapsed = time.perf_counter() - t0
        cur.execute("DROP TABLE events_raw")
        raw.commit()
    finally:
        raw.close()
    return {"rows": len(rows), "events_per_s": round(len(rows) / elapsed)}


def phase_load(
    kind: str, name: str, port: int, key: str, args: argparse.Namespace, **load: Any
) -> dict[str, Any]:
    """One load phase, with what the processor did meanwhile and the backlog it leaves."""
    stored_before = event_count()
    result = run_load(port, key, args.clients, args.seconds, phase=name[0], **load)
    result["processed_events_per_s"] = round((event_count() - stored_before) / result["seconds"])
    result["backlog_after"] = backlog()
    log(
        f"[{kind}] {name}: {result['events_per_s']} events/s acknowledged, p50"
        f" {result['p50_ms']} ms, p99 {result['p99_ms']} ms; processor"
        f" {result['processed_events_per_s']} events/s meanwhile, backlog"
        f" {result['backlog_after']}"
    )
    return result


def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with environment(kind, args.pg_url) as env:
        key = create_source()
        port = free_port()
        server = start_server(env, port, args.workers)
        try:
            log(f"[{kind}] warm-up {args.warmup}s")
            warm = run_load(port, key, args.clients, args.warmup, None, 0, "w")
            drain_warm = wait_drained()
            log(f"[{kind}] full load {args.seconds}s with {args.clients} clients")
            full = phase_load(
                kind, "full", port, key, args, rate=None, resend_every=args.resend_every
            )
            drain_full = wait_drained()
            log(
                f"[{kind}] processor alone: {drain_full['backlog']} messages in"
                f" {drain_full['drain_seconds']} s = {drain_full['events_per_s']} events/s"
            )
            half_rate = full["events_per_s"] / 2 / BATCH
            log(f"[{kind}] half load ({half_rate:.0f} batches/s) {args.seconds}s")
            half = phase_load(kind, "half", port, key, args, rate=half_rate, resend_every=0)
            drain_half = wait_drained()
        finally:
            stop_server(server)
        total, distinct = stored_events()
        acked = (warm["acked_batches"] + full["acked_batches"] + half["acked_batches"]) * BATCH
        raw = raw_insert_rate(kind, full["acked_messages"])
        log(f"[{kind}] raw: {raw['events_per_s']} events/s")
        for phase in (warm, full, half):
            phase.pop("acked_batches")
        result: dict[str, Any] = {
            "full_load": full,
            "half_load": half,
            "processor": {
                "alone_events_per_s": drain_full["events_per_s"],
                "backlog_after_full_load": drain_full["backlog"],
                "drain_seconds_after_full_load": drain_full["drain_seconds"],
                "during_full_load_events_per_s": full["processed_events_per_s"],
                "during_half_load_events_per_s": half["processed_events_per_s"],
                "backlog_after_half_load": drain_half["backlog"],
                "drain_seconds_after_half_load": drain_half["drain_seconds"],
                "left_after_drain": drain_warm["left"] + drain_full["left"] + drain_half["left"],
            },
            "zero_loss": {
                "acknowledged": acked,
                "stored": total,
                "duplicates_stored": total - distinct,
                "resent_batches": full["resent_batches"],
                "ok": total == acked and total == distinct,
            },
            "raw_insert": raw,
            "api_vs_raw": round(full["events_per_s"] / raw["events_per_s"], 3),
        }
        if args.kill_seconds:
            result["kill9"] = kill9_run(kind, env, key, args)
        return result


# -- kill -9 in the middle, clients retrying ------------------------------------------------


def retrying_client(client: int, port: int, key: str, seconds: float, out: Any) -> None:
    """Distinct batches for `seconds`; one not acknowledged (refused or reset connection,
    5xx) is sent again until it is, as the SDKs do."""
    pool = [batch_body(client, b) for b in range(64)]
    sender = Sender(port, key)
    acked: list[int] = []
    retries = 0
    start = time.perf_counter()
    batch = 0
    while time.perf_counter() - start < seconds:
        body = pool[batch % 64].replace(b'"messageId": "c', f'"messageId": "k{batch}c'.encode())
        deadline = time.perf_counter() + 120
        while sender.post(body) != 200:
            retries += 1
            if time.perf_counter() > deadline:
                raise RuntimeError(f"batch {batch} of client {client} never acknowledged")
            time.sleep(0.1)
        acked.append(batch)
        batch += 1
    out.put({"client": client, "retries": retries, "batches": acked})


def kill9_run(kind: str, env: dict[str, str], key: str, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from patronage import db

    port = free_port()
    servers = [start_server(env, port, args.workers)]
    ctx = mp.get_context("fork")
    queue: Any = ctx.Queue()
    procs = [
        ctx.Process(target=retrying_client, args=(c, port, key, args.kill_seconds, queue))
        for c in range(args.clients)
    ]
    for p in procs:
        p.start()
    time.sleep(args.kill_seconds / 2)
    log(f"[{kind}] kill -9 of the server (all workers), backlog {backlog()}")
    stop_server(servers[-1], hard=True)
    t0 = time.perf_counter()
    servers.append(start_server(env, port, args.workers))
    restart = round(time.perf_counter() - t0, 2)
    log(f"[{kind}] restarted in {restart} s")
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    drained = wait_drained()
    stop_server(servers[-1])
    expected = {
        f"k{b}c{r['client']}-b{b % 64}-m{i}"
        for r in results
        for b in r["batches"]
        for i in range(BATCH)
    }
    with db.transaction() as s:
        query = text("SELECT message_id FROM events WHERE message_id LIKE 'k%'")
        stored = [m for (m,) in s.execute(query)]
    unique = set(stored)
    outcome = {
        "kills": 1,
        "restart_seconds": restart,
        "acknowledged": len(expected),
        "stored": len(stored),
        "duplicates_stored": len(stored) - len(unique),
        "missing_acknowledged": len(expected - unique),
        "client_retries": sum(r["retries"] for r in results),
        "drain_seconds": drained["drain_seconds"],
        "exactly_once": len(stored) == len(unique) and not expected - unique,
    }
    log(f"[{kind}] kill -9: {outcome}")
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--resend-every", type=int, default=20, help="resend every Nth batch")
    parser.add_argument("--kill-seconds", type=float, default=20.0, help="0: no kill -9 run")
    parser.add_argument(
        "--pg-url", default=os.environ.get("PATRONAGE_TEST_DATABASE_URL", PG_DEFAULT)
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "ingest_batch",
        "batch_size": BATCH,
        "clients": args.clients,
        "server_workers": args.workers,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_events_per_s": 25_000,
        "target_p99_ms": 50,
    }
    for kind in args.db.split(","):
        results[kind] = measure(kind.strip(), args)
    results["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
