"""REST upload (`/api/imports`) and the record of imports, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

from sqlalchemy import text

from patronage import db
from patronage.collect import imports
from tests.conftest import bearer

LINES = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART,6,12/01/2010 08:26,2.55,17850,United Kingdom\n"
    "536366,22633,HAND WARMER,6,12/01/2010 08:28,1.85,17851,France\n"
    "536367,84879,BIRD,abc,12/01/2010 08:34,1.69,13047,United Kingdom\n"
)


def _count(table: str) -> int:
    with db.transaction() as s:
        return int(s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _upload(client, token: str, body: str = LINES, **form: str):  # type: ignore[no-untyped-def]
    files = {"file": ("lines.csv", body.encode(), "text/csv")}
    data = {"kind": "orders", "preset": "order-lines", **form}
    return client.post("/api/imports", files=files, data=data, headers=bearer(token))


def test_upload_is_all_or_nothing_and_answers_the_first_rejects(client, staff):
    r = _upload(client, staff["analyst"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["rows"], body["valid"], body["rejected_rows"]) == (
        "aborted", 3, 2, 1,
    )  # fmt: skip
    assert body["rejects"] == [{"row": 3, "column": "Quantity", "reason": "not a whole number"}]
    assert body["created_by"] == "analyst" and body["file_name"] == "lines.csv"
    assert _count("orders") == 0
    report = client.get(f"/api/imports/{body['id']}/rejects", headers=bearer(staff["analyst"]))
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(report.text))) == [
        ["row", "column", "reason"],
        ["3", "Quantity", "not a whole number"],
    ]


def test_dry_run_then_confirm_with_skip_invalid(client, staff):
    token = staff["admin"]
    preview = _upload(client, token, dry_run="true").json()
    assert preview["status"] == "invalid"
    assert preview["counts"] == {}
    assert _count("orders") == 0
    done = client.post(
        f"/api/imports/{preview['id']}/run", json={"skip_invalid": True}, headers=bearer(token)
    )
    assert done.status_code == 201, done.text
    result = done.json()
    assert result["status"] == "done"
    assert result["counts"]["orders_inserted"] == 2
    assert _count("orders") == 2
    # a finished import is not run twice
    again = client.post(f"/api/imports/{preview['id']}/run", json={}, headers=bearer(token))
    assert again.status_code == 422
    listed = client.get("/api/imports", headers=bearer(token)).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == preview["id"]


def test_clean_upload_imports_and_re_upload_changes_nothing(client, staff):
    good = "".join(LINES.splitlines(keepends=True)[:3])
    first = _upload(client, staff["admin"], good).json()
    assert first["status"] == "done"
    assert first["counts"]["orders_inserted"] == 2
    second = _upload(client, staff["admin"], good).json()
    assert second["counts"]["orders_unchanged"] == 2
    assert second["counts"]["orders_inserted"] == 0
    assert (
        client.get(
            f"/api/imports/{second['id']}/rejects", headers=bearer(staff["admin"])
        ).status_code
        == 404
    )


def test_bad_uploads_get_clear_errors(client, staff):
    token = staff["admin"]
    r = _upload(client, token, kind="pets")
    assert r.status_code == 422 and r.json()["detail"] == (
        "kind must be one of customers, products, orders, events"
    )
    r = _upload(client, token, preset="nope")
    assert r.status_code == 422 and r.json()["detail"].startswith("unknown preset")
    r = _upload(client, token, preset="", mapping="[fields\nx=")
    assert r.status_code == 422 and r.json()["detail"].startswith("mapping is not valid TOML")
    r = _upload(client, token, b"\xff\xfe\x00".decode("latin-1"))
    assert r.status_code == 201
    assert r.json()["status"] == "failed"
    assert r.json()["detail"].startswith("not a text file")
    assert _count("orders") == 0


def test_large_uploads_run_as_a_job_with_progress(client, staff, monkeypatch, tmp_path):
    from patronage import jobs

    monkeypatch.setattr(imports, "INLINE_BYTES", 10)
    huey = jobs.make_huey(url=f"sqlite:///{tmp_path / 'q.db'}", name="imports")
    jobs.set_huey(huey)
    try:
        r = _upload(client, staff["admin"])
        assert r.status_code == 202
        run_id = r.json()["id"]
        assert r.json()["status"] == "queued"
        pending = huey.pending()
        assert [t.name for t in pending] == ["collect.import_run"]
        huey.execute(pending[0])  # what `patronage worker` does
    finally:
        jobs.set_huey(None)
    after = client.get(f"/api/imports/{run_id}", headers=bearer(staff["admin"])).json()
    assert (after["status"], after["progress_done"], after["progress_total"]) == ("aborted", 3, 3)
    assert after["rejects"] == [{"row": 3, "column": "Quantity", "reason": "not a whole number"}]
    assert after["finished_at"] is not None


def test_body_limit_of_the_upload_route(client, staff):
    from patronage.app import IMPORT_BODY_LIMIT

    r = client.post(
        "/api/imports",
        content=b"x",
        headers={**bearer(staff["admin"]), "content-length": str(IMPORT_BODY_LIMIT + 1)},
    )
    assert r.status_code == 413
    assert r.json() == {
        "error": "payload_too_large",
        "detail": f"request body over {IMPORT_BODY_LIMIT} bytes",
    }


def test_progress_of_the_write_phase_is_readable_while_it_runs(database, backend):
    run_id = imports.record_upload(io.BytesIO(LINES.encode()), "x.csv", "orders", "me")
    progress = imports._Progress(run_id)
    imports._set(run_id, status="running")
    progress("validate", 3, 3)
    progress("write", 0, 40)
    progress.last = 0.0  # a second later
    with db.transaction() as s:
        s.execute(text("SELECT 1"))  # the import's own transaction would hold the lock here
        progress("write", 25, 40)
    with db.transaction() as s:
        run = imports.read_run(s, run_id)
    assert (run.status, run.phase, run.progress_done, run.progress_total) == (
        "running", "write", 25, 40,
    )  # fmt: skip
    assert imports.progress_path(run_id).exists() == (backend == "sqlite")
