"""`patronage export events`: Parquet partitioned by day, incremental, resumable, and no
network details for customers without analytics consent."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from patronage.cli import app
from patronage.collect import export
from tests.collect.helpers import basic, new_source, track


def _send(client, h, batch):  # type: ignore[no-untyped-def]
    r = client.post("/v1/batch", json={"batch": batch}, headers=h)
    assert r.status_code == 200, r.text


def _context(consent: bool) -> dict:
    return {
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0",
        "locale": "fr-FR",
        "consent": {"categoryPreferences": {"analytics": consent}},
    }


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_partitioned_incremental_and_consent(client, tmp_path: Path) -> None:
    h = basic(new_source())
    _send(
        client,
        h,
        [
            track("A", userId="yes", timestamp="2026-11-01T10:00:00Z", context=_context(True)),
            track("B", userId="no", timestamp="2026-11-01T11:00:00Z", context=_context(False)),
            track("C", userId="yes", timestamp="2026-11-02T09:00:00Z", context=_context(True)),
        ],
    )
    lake = tmp_path / "lake"
    result = CliRunner().invoke(app, ["export", "events", "--to", str(lake)])
    assert result.exit_code == 0, result.output
    assert "3 events exported into 2 files" in result.output
    files = _files(lake)
    assert files[0] == "_export_state.json"
    assert [f.split("/")[0] for f in files[1:]] == ["date=2026-11-01", "date=2026-11-02"]
    table = ds.dataset(lake, format="parquet", partitioning="hive").to_table()
    rows = sorted(table.to_pylist(), key=lambda r: r["name"])
    assert [(r["name"], str(r["date"])) for r in rows] == [
        ("A", "2026-11-01"), ("B", "2026-11-01"), ("C", "2026-11-02"),
    ]  # fmt: skip
    contexts = [json.loads(r["context"]) for r in rows]
    assert contexts[0]["ip"] == "203.0.113.9" and contexts[0]["userAgent"] == "Mozilla/5.0"
    assert "ip" not in contexts[1] and "userAgent" not in contexts[1]
    assert contexts[1]["locale"] == "fr-FR"
    # the customer withdraws analytics consent later: newer exports leave their network out
    _send(
        client,
        h,
        [track("D", userId="yes", timestamp="2026-11-02T10:00:00Z", context=_context(True))],
    )
    from sqlalchemy import text

    from patronage import db
    from patronage.customers import service as customers_service
    from patronage.customers.consent import Purpose

    with db.transaction() as s:
        cid = s.execute(text("SELECT id FROM customers WHERE user_id = 'yes'")).scalar_one()
        customers_service.record_consent(s, cid, Purpose.ANALYTICS, False, "test")
    again = export.export_events(lake)
    assert (again.events, again.files) == (1, 1)  # only the new event
    newest = pq.read_table(
        sorted((lake / "date=2026-11-02").glob("part-*.parquet"))[-1]
    ).to_pylist()
    assert [r["name"] for r in newest] == ["D"]
    assert "ip" not in json.loads(newest[0]["context"])
    assert export.export_events(lake).events == 0  # nothing new


def test_since_and_a_crash_mid_way_leaves_no_partial_file(client, tmp_path, monkeypatch) -> None:
    h = basic(new_source())
    _send(
        client,
        h,
        [
            track("old", userId="u", timestamp="2026-10-01T10:00:00Z"),
            track("a", userId="u", timestamp="2026-11-01T10:00:00Z"),
            track("b", userId="u", timestamp="2026-11-02T10:00:00Z"),
            track("c", userId="u", timestamp="2026-11-03T10:00:00Z"),
        ],
    )
    lake = tmp_path / "lake"
    calls = {"n": 0}
    real = pq.write_table

    def dying(table, where, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            Path(where).write_bytes(b"PAR1 half a file")
            raise OSError("disk full")
        return real(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", dying)
    from datetime import date

    with pytest.raises(OSError):
        export.export_events(lake, since=date(2026, 11, 1), batch_size=10)
    # the first day's file is in place, the second's temporary file is gone, no state yet
    assert _files(lake) == [
        f"date=2026-11-01/{p.name}" for p in (lake / "date=2026-11-01").iterdir()
    ]
    monkeypatch.setattr(pq, "write_table", real)
    report = export.export_events(lake, since=date(2026, 11, 1), batch_size=10)
    assert (report.events, report.files) == (3, 3)
    table = ds.dataset(lake, format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("name").to_pylist()) == ["a", "b", "c"]  # once each, no "old"


def test_damaged_state_is_a_clear_error(database, tmp_path: Path) -> None:
    (tmp_path / "_export_state.json").write_text("{oops")
    result = CliRunner().invoke(app, ["export", "events", "--to", str(tmp_path)])
    assert result.exit_code == 1
    assert "_export_state.json is damaged; remove it to export everything again" in result.output
    bad = CliRunner().invoke(app, ["export", "events", "--to", str(tmp_path), "--since", "x"])
    assert bad.exit_code == 1 and "--since takes a date as YYYY-MM-DD" in bad.output
