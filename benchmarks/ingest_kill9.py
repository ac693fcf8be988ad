"""Zero loss through a crash: the server is `kill -9`ed in the middle of sustained ingestion
and restarted; clients retry every batch that was not acknowledged. Afterwards every
acknowledged message is stored exactly once (SQLite and PostgreSQL).

    .venv/bin/python benchmarks/ingest_kill9.py [--db sqlite,postgres] [--seconds 20]

Prints one JSON line; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_batch import (
    BATCH,
    PG_DEFAULT,
    Sender,
    batch_body,
    create_source,
    environment,
    free_port,
    log,
    start_server,
    stop_server,
)


def client_run(client: int, port: int, key: str, seconds: float, out: Any) -> None:
    """Send distinct batches for `seconds`; a batch that was not acknowledged (connection
    refused or reset, 5xx) is sent again until it is, as the SDKs do."""
    pool = [batch_body(client, b) for b in range(64)]
    sender = Sender(port, key)
    acked = retries = 0
    acked_ids: list[int] = []
    start = time.perf_counter()
    batch = 0
    while time.perf_counter() - start < seconds:
        body = pool[batch % 64].replace(b'"messageId": "c', f'"messageId": "k{batch}c'.encode())
        deadline = time.perf_counter() + 120
        while True:
            status = sender.post(body)
            if status == 200:
                acked += 1
                acked_ids.append(batch)
                break
            retries += 1
            if time.perf_counter() > deadline:
                raise RuntimeError(f"batch {batch} of client {client} never acknowledged")
            time.sleep(0.1)
        batch += 1
    out.put({"client": client, "acked": acked, "retries": retries, "batches": acked_ids})


def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with environment(kind, args.pg_url) as env:
        key = create_source()
        port = free_port()
        server = start_server(env, port, args.workers)
        ctx = mp.get_context("fork")
        queue: Any = ctx.Queue()
        procs = [
            ctx.Process(target=client_run, args=(c, port, key, args.seconds, queue))
            for c in range(args.clients)
        ]
        for p in procs:
            p.start()
        kills: list[float] = []
        restart_s: list[float] = []
        servers = [server]

        def killer() -> None:
            for _ in range(args.kills):
                time.sleep(args.seconds / (args.kills + 1))
                log(f"[{kind}] kill -9 of the server (all workers)")
                kills.append(time.time())
                stop_server(servers[-1], hard=True)
                t0 = time.perf_counter()
                servers.append(start_server(env, port, args.workers))
                restart_s.append(round(time.perf_counter() - t0, 2))
                log(f"[{kind}] restarted in {restart_s[-1]} s")

        thread = threading.Thread(target=killer)
        thread.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        thread.join()
        stop_server(servers[-1])

        from sqlalchemy import text

        from patronage import db

        acked_messages = sum(r["acked"] for r in results) * BATCH
        with db.transaction() as s:
            total = int(s.execute(text("SELECT count(*) FROM events")).scalar_one())
            distinct = int(
                s.execute(text("SELECT count(DISTINCT message_id) FROM events")).scalar_one()
            )
            # every acknowledged batch is there, whole
            missing = 0
            for r in results:
                for b in r["batches"]:
                    prefix = f"k{b}c{r['client']}-"
                    found = s.execute(
                        text("SELECT count(*) FROM events WHERE message_id LIKE :p"),
                        {"p": prefix + "%"},
                    ).scalar_one()
                    missing += BATCH - int(found)
        return {
            "kills": len(kills),
            "restart_seconds": restart_s,
            "acknowledged": acked_messages,
            "stored": total,
            "duplicates_stored": total - distinct,
            "missing_acknowledged": missing,
            "client_retries": sum(r["retries"] for r in results),
            "exactly_once": total == acked_messages and total == distinct and missing == 0,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument(
        "--pg-url", default=os.environ.get("PATRONAGE_TEST_DATABASE_URL", PG_DEFAULT)
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "ingest_kill9",
        "clients": args.clients,
        "server_workers": args.workers,
    }
    for kind in args.db.split(","):
        results[kind] = measure(kind.strip(), args)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
