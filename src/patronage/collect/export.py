"""The event lake: events as Parquet, partitioned by day, incremental and resumable.

`DIR/date=YYYY-MM-DD/part-<first id>-<last id>.parquet` (Hive partitioning, what Spark,
DuckDB and pyarrow datasets read), one file per day per batch. `DIR/_export_state.json`
records the last exported event id; a run exports the events after it, batch by batch,
and moves the state on after each batch. Files are written under a hidden temporary name
and renamed into place, so readers never see half a file; a run that dies between a file
and the state update leaves files whose first id is past the recorded one: the next run
deletes them before it writes them again. Names starting with "." or "_" are ignored by
dataset readers.

Events carry no personal data (tracking scrubs it). Network details (ip, user agent, page,
location, device ids) are exported only for customers whose analytics consent holds now;
events without a customer lose them too.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from patronage import db
from patronage.collect import repository as repo
from patronage.collect.privacy import strip_without_consent
from patronage.customers import service as customers_service
from patronage.customers.consent import Purpose
from patronage.errors import ValidationFailed

STATE = "_export_state.json"
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("name", pa.string()),
        ("customer_id", pa.int64()),
        ("anonymous_id", pa.string()),
        ("user_id", pa.string()),
        ("source_id", pa.int64()),
        ("properties", pa.string()),  # JSON text
        ("context", pa.string()),  # JSON text
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("sent_at", pa.timestamp("us", tz="UTC")),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass
class ExportReport:
    events: int = 0
    files: int = 0
    last_id: int = 0


def read_state(folder: Path) -> int:
    path = folder / STATE
    if not path.exists():
        return 0
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["last_id"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValidationFailed(f"{path} is damaged; remove it to export everything again") from None
    if not isinstance(value, int) or value < 0:
        raise ValidationFailed(f"{path} is damaged; remove it to export everything again")
    return value


def _write_atomic(path: Path, write: Any) -> None:
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(temporary)
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _save_state(folder: Path, last_id: int) -> None:
    def write(path: Path) -> None:
        path.write_text(json.dumps({"last_id": last_id}) + "\n", encoding="utf-8")

    _write_atomic(folder / STATE, write)


def _clean(folder: Path, last_id: int) -> None:
    """Drop what an interrupted run left: temporary files, and parts past the state."""
    for partition in folder.glob("date=*"):
        if not partition.is_dir():
            continue
        for path in partition.iterdir():
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)
            elif path.name.startswith("part-") and path.suffix == ".parquet":
                try:
                    first = int(path.name.split("-")[1])
                except (IndexError, ValueError):
                    continue
                if first > last_id:
                    path.unlink(missing_ok=True)


def _json(value: Any) -> str:
    return json.dumps(value if value is not None else {}, separators=(",", ":"), default=str)


def export_events(
    folder: Path, *, since: date | None = None, batch_size: int = 100_000
) -> ExportReport:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationFailed(f"cannot create {folder}: {exc.strerror}") from None
    last_id = read_state(folder)
    _clean(folder, last_id)
    start = datetime.combine(since, time(), tzinfo=UTC) if since is not None else None
    report = ExportReport(last_id=last_id)
    while True:
        with db.transaction() as session:
            rows = repo.events_after(session, last_id, start, batch_size)
            if not rows:
                break
            people = {int(r[4]) for r in rows if r[4] is not None}
            allowed = customers_service.may_use_many(session, people, Purpose.ANALYTICS)
        days: dict[date, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            record = dict(zip(repo.EXPORT_COLUMNS, row, strict=True))
            context = dict(record["context"] or {})
            properties = dict(record["properties"] or {})
            customer = record["customer_id"]
            if customer is None or not allowed.get(int(customer), False):
                strip_without_consent(record["type"], context, properties)
            record["context"], record["properties"] = _json(context), _json(properties)
            days[record["timestamp"].astimezone(UTC).date()].append(record)
        for day, records in sorted(days.items()):
            partition = folder / f"date={day.isoformat()}"
            partition.mkdir(exist_ok=True)
            name = f"part-{records[0]['id']:015d}-{records[-1]['id']:015d}.parquet"
            table = pa.Table.from_pylist(records, schema=SCHEMA)

            def write(path: Path, table: pa.Table = table) -> None:
                pq.write_table(table, path, compression="zstd")

            _write_atomic(partition / name, write)
            report.files += 1
        last_id = int(rows[-1][0])
        _save_state(folder, last_id)
        report.events += len(rows)
        report.last_id = last_id
    return report
