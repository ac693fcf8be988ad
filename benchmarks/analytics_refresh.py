"""Benchmark: the full analytics refresh (features, RFM, patterns, CLV fit and scoring, write)
on a big demo database, on each analytics engine, plus RFM against a plain pandas version.

    .venv/bin/python benchmarks/demo_generate.py --customers 1000000 --db sqlite \\
        --data-dir /tmp/bench-sqlite                      # once: ~10 min, keeps bench.db
    .venv/bin/python benchmarks/analytics_refresh.py \\
        --db-url sqlite:////tmp/bench-sqlite/bench.db --data-dir /tmp/bench-sqlite \\
        --engines duckdb,spark [--pg-url postgresql://postgres@127.0.0.1:5432/bench_demo \\
        --pg-data-dir /tmp/bench-pg]                      # adds the `database` engine

Each engine runs in a process of its own (so peak memory is its own): it opens one
transaction, runs `refresh.run` exactly as `patronage analytics refresh` does, times each
step, and rolls back (the database is left as it was). The DuckDB child then reads the store
again (in a transaction of its own) and times RFM on the order lines twice over the same
in-memory data: patronage's Ibis expression on DuckDB,
and a straightforward pandas implementation (groupby + rank), and checks both give the same
scores. `database` needs a PostgreSQL copy of the shop (`--pg-url`); duckdb also runs there
when given, for the comparison on the same store.

Prints progress to stderr and one JSON line: per engine the step seconds (and CPU seconds),
total seconds, peak RSS of the refresh (MiB; Spark also reports its JVM's), customers, buyers,
the load average at start and end; the target (full refresh
on DuckDB <= 60 s for 1M customers) and whether it was met; the RFM reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGET_SECONDS = 60.0
NOW = "2026-07-01T00:00:00+00:00"  # the demo shop ends 2026-06-30


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _jvm_peak_mib() -> float | None:
    """Peak RSS of this process's descendants (the Spark JVM), from /proc."""
    me = os.getpid()
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    total = 0
    for pid in parents:
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor == me:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                continue
    return round(total / 1024, 1) if total else None


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class RolledBack(Exception):
    pass


def rfm_reference(store: Any, now_us: int) -> dict[str, Any]:
    """RFM on the order lines: patronage (Ibis on DuckDB) vs plain pandas, same data."""
    import numpy as np
    import pandas as pd

    from patronage.analytics import features, rfm

    c, o, r = store["customers"], store["orders"], store["refunds"]
    lines = int(store.scalar(store["order_items"].count()))
    # patronage: counted orders -> per-customer basis -> rfm.rfm_table, as in the refresh
    started = time.perf_counter()
    good = features.counted_orders(store.tables, now_us)
    live = c.filter(c.merged_into_id.isnull()).select(customer_id=c.id)
    good = good.filter(~good.cancelled).join(live, "customer_id")
    basis = good.group_by("customer_id").agg(
        orders=good.count(),
        total_spend_minor=good.net_minor.sum(),
        recency_days=now_us // features.DAY_US - good.placed_us.max() // features.DAY_US,
    )
    ours = rfm.compute(store, basis)
    ours_s = time.perf_counter() - started

    # pandas: the same definitions, from the same tables (conversion to pandas not timed)
    orders = store.arrow(o).to_pandas()
    refunds = store.arrow(r).to_pandas()
    customers = store.arrow(c).to_pandas()
    started = time.perf_counter()
    refunded = refunds.groupby("order_id")["amount_minor"].sum()
    df = orders[orders["placed_us"] <= now_us]
    df = df[(df["status"] != "cancelled") & df["cancelled_us"].isna()]
    df = df[df["customer_id"].isin(customers.loc[customers["merged_into_id"].isna(), "id"])]
    net = df["total_minor"] - df["id"].map(refunded).fillna(0).astype("int64")
    df = df.assign(net=net, day=df["placed_us"] // features.DAY_US)
    g = df.groupby("customer_id").agg(
        orders=("id", "size"), spend=("net", "sum"), last=("day", "max")
    )
    g["recency"] = now_us // features.DAY_US - g["last"]
    n = len(g)

    def score(values: pd.Series, ascending: bool) -> pd.Series:
        rank = values.rank(method="min", ascending=ascending).astype("int64")
        return 1 + (5 * (rank - 1)) // n

    g["r"] = score(g["recency"], ascending=False)
    g["f"] = score(g["orders"], ascending=True)
    g["m"] = score(g["spend"], ascending=True)
    rr, ff, mm = g["r"].to_numpy(), g["f"].to_numpy(), g["m"].to_numpy()
    conditions = [
        (rr >= 4) & (ff >= 4) & (mm >= 4),
        (rr >= 3) & (ff >= 4),
        (rr >= 4) & (ff >= 2) & (ff <= 3),
        (rr == 5) & (ff == 1),
        (rr == 4) & (ff == 1),
        (rr == 3) & (ff >= 2) & (ff <= 3),
        (rr == 3) & (ff == 1),
        (rr <= 2) & (ff == 5),
        (rr <= 2) & (ff >= 3) & (ff <= 4),
        (rr == 2) & (ff <= 2),
    ]
    names = list(rfm.SEGMENT_NAMES)
    g["segment"] = np.select(conditions, names[:-1], default=names[-1])
    g = g.sort_index()
    pandas_s = time.perf_counter() - started
    theirs = list(
        zip(
            g.index.astype(int).tolist(),
            g["r"].tolist(),
            g["f"].tolist(),
            g["m"].tolist(),
            g["segment"].tolist(),
            strict=True,
        )
    )
    return {
        "order_lines": lines,
        "buyers": len(ours),
        "patronage_seconds": round(ours_s, 2),
        "pandas_seconds": round(pandas_s, 2),
        "same_scores": ours == theirs,
    }


def child(engine_name: str, now: datetime) -> dict[str, Any]:
    from patronage import db
    from patronage.analytics import engine, features, refresh

    marks: list[tuple[str, float, float]] = []

    def step(name: str) -> None:
        marks.append((name, time.perf_counter(), _cpu()))
        log(f"{engine_name}: {name}")

    out: dict[str, Any] = {"engine": engine_name, "loadavg_start": _load()}
    started = time.perf_counter()
    try:
        with db.transaction() as session:
            result = refresh.run(session, now, progress=step, engine_name=engine_name)
            done, done_cpu = time.perf_counter(), _cpu()
            out["loadavg_end"] = _load()
            # the refresh's own peak, before the reference below reads the store again
            out["peak_rss_mib"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            )
            if engine_name == "spark":
                out["jvm_peak_rss_mib"] = _jvm_peak_mib()
            log(f"{engine_name}: refresh done")
            out.update(customers=result.customers, buyers=result.buyers)
            raise RolledBack
    except RolledBack:
        pass
    if engine_name == "duckdb":
        # after the rollback: the store as it was, read as the refresh read it
        with db.transaction() as session, engine.open_store(session, "duckdb") as store:
            log("duckdb: RFM reference (patronage vs pandas)")
            out["rfm_reference"] = rfm_reference(store, features.to_us(now))
    ends = [(t, c) for _, t, c in marks[1:]] + [(done, done_cpu)]
    out["steps"] = {
        name: round(end - t, 2) for (name, t, _), (end, _) in zip(marks, ends, strict=True)
    }
    # CPU seconds of this process (all its threads; Spark's JVM not included): on a shared
    # machine, wall time = CPU time / the share of the cores the process got
    out["steps_cpu"] = {
        name: round(end - c, 2) for (name, _, c), (_, end) in zip(marks, ends, strict=True)
    }
    out["seconds"] = round(done - started, 2)
    out["cpu_seconds"] = round(done_cpu - marks[0][2], 2) if marks else None
    if engine_name == "spark":
        engine.stop_spark()
    return out


def run_child(
    engine_name: str, url: str, data_dir: str, now: str, spark_memory: str = "4g"
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONAGE_")}
    # Spark's driver JVM (local mode: it is the executor too) gets 1 GiB unless told
    env.setdefault("PYSPARK_SUBMIT_ARGS", f"--driver-memory {spark_memory} pyspark-shell")
    env.update(
        PATRONAGE_DATABASE_URL=url,
        PATRONAGE_DATA_DIR=data_dir,
        PATRONAGE_ANALYTICS_ENGINE=engine_name,
        PATRONAGE_LOG_LEVEL="WARNING",
    )
    proc = subprocess.run(
        [sys.executable, __file__, "--child", engine_name, "--now", now],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"engine": engine_name, "error": f"exit {proc.returncode}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    store = "postgresql" if url.startswith("postgres") else "sqlite"
    result["store"] = store
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db-url", help="the SQLite (or PostgreSQL) demo database")
    parser.add_argument("--data-dir", help="the data directory holding its keys.json")
    parser.add_argument("--pg-url", help="a PostgreSQL copy of the shop (for `database`)")
    parser.add_argument("--pg-data-dir", help="its data directory (keys.json)")
    parser.add_argument("--engines", default="duckdb,spark,database")
    parser.add_argument("--now", default=NOW)
    parser.add_argument("--spark-memory", default="4g", help="Spark driver memory (local mode)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now).astimezone(UTC)
    if args.child:
        print(json.dumps(child(args.child, now)))
        return
    if not args.db_url or not args.data_dir:
        parser.error("--db-url and --data-dir are required")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    runs = []
    for name in engines:
        if name == "database":
            continue
        log(f"engine {name} on {args.db_url.split(':')[0]}")
        runs.append(run_child(name, args.db_url, args.data_dir, args.now, args.spark_memory))
    if args.pg_url:
        pg_dir = args.pg_data_dir or args.data_dir
        for name in ("database", "duckdb"):
            if name in engines and not (name == "duckdb" and args.db_url == args.pg_url):
                log(f"engine {name} on postgresql")
                runs.append(run_child(name, args.pg_url, pg_dir, args.now))
    main_run = next((r for r in runs if r["engine"] == "duckdb" and "seconds" in r), None)
    reference = main_run.pop("rfm_reference", None) if main_run else None
    for r in runs:
        r.pop("rfm_reference", None)
    print(
        json.dumps(
            {
                "benchmark": "analytics_refresh",
                "now": args.now,
                "customers": main_run["customers"] if main_run else None,
                "refresh_seconds_duckdb": main_run["seconds"] if main_run else None,
                "target": {
                    "refresh_seconds": TARGET_SECONDS,
                    "for_customers": 1_000_000,
                    # judged only on a shop of the target's size
                    "met": bool(main_run["seconds"] <= TARGET_SECONDS)
                    if main_run and main_run["customers"] >= 1_000_000
                    else None,
                },
                "engines": runs,
                "rfm_reference": reference,
                "cores": os.cpu_count(),
                "loadavg_end": _load(),
            }
        )
    )


if __name__ == "__main__":
    main()
