"""Schemathesis against the app's own OpenAPI: no server errors, responses as documented.

Bounded and derandomised (the same cases every run): 25 examples per operation, as admin
through a bearer token; the tracking API with a source's write key.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from patronage import db
from patronage.auth import service as auth_service
from tests.conftest import bearer

EXAMPLES = 25


def _fuzz(operation: Any, headers: dict[str, str], path_parameters: dict[str, Any]) -> None:
    strategy = operation.as_strategy(headers=headers, path_parameters=path_parameters or None)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

    run()


@pytest.mark.slow
def test_fuzz_the_api(app, staff):
    with db.transaction() as s:
        _, write_key = auth_service.create_source(s, "fuzz")
        spare, _ = auth_service.create_token(s, "admin", "revoked by the fuzzer")
        spare_id = spare.id
    admin = {"Authorization": f"Bearer {staff['admin']}"}
    tracking = {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = tracking if operation.path.startswith("/v1/") else admin
        # the fuzzer must not revoke the token it works with
        fixed = {"token_id": spare_id} if operation.path == "/api/tokens/{token_id}" else {}
        try:
            _fuzz(operation, headers, fixed)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its failures
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
        tested += 1
    assert tested >= 20
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())


# -- plain regression tests for what the fuzzer found ---------------------------------------------


def test_audit_offset_beyond_any_integer_is_422(client, staff):
    """Found by the fuzzer: a huge offset reached the database and overflowed (500)."""
    r = client.get(
        "/api/audit", params={"offset": 381408583341992003812458496}, headers=bearer(staff["admin"])
    )
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"
    assert (
        client.get(
            "/api/audit", params={"offset": 100_000_000}, headers=bearer(staff["admin"])
        ).status_code
        == 200
    )


def test_openapi_documents_the_error_shape(client, staff):
    """Found by the fuzzer: the schema promised FastAPI's 422 body, the app sends its own."""
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["Error"]["required"] == ["error", "detail"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            error = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}, (method, path)
            if "422" in operation["responses"]:
                assert (
                    operation["responses"]["422"]["content"]
                    == operation["responses"]["default"]["content"]
                )
    r = client.post("/api/customers", json={"email": "0@0.0.test"}, headers=bearer(staff["admin"]))
    assert r.status_code == 422
    assert r.json() == {
        "error": "validation_error",
        "detail": [
            {
                "loc": ["body", "email"],
                "msg": "value is not a valid email address: The part after the @-sign is a "
                "special-use or reserved name that cannot be used with email.",
            }
        ],
    }


@pytest.mark.parametrize(
    ("timestamp", "sent_at"),
    [
        ("0001-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
        ("9999-12-31T00:00:00Z", "2000-01-01T00:00:00Z"),
    ],
)
def test_tracking_timestamps_at_the_ends_of_time_are_400(client, timestamp, sent_at):
    """Found by the fuzzer: clock-skew correction overflowed (500); fixed in collect."""
    with db.transaction() as s:
        _, key = auth_service.create_source(s, "regression")
    h = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    message = {
        "type": "track",
        "userId": "u",
        "event": "e",
        "timestamp": timestamp,
        "sentAt": sent_at,
    }
    single = client.post("/v1/track", json=message, headers=h)
    batch = client.post("/v1/batch", json={"batch": [message]}, headers=h)
    assert (single.status_code, batch.status_code) == (400, 400)
    assert single.json()["error"] == batch.json()["error"] == "invalid_message"


def test_values_the_database_cannot_store_are_422(client, staff, backend):
    """Found by the fuzzer: PostgreSQL refuses NUL characters (DataError), which was a 500.
    Now refused at the edge on every backend alike."""
    h = bearer(staff["admin"])
    for body in ({"traits": {"note": "a\u0000b"}}, {"user_id": "nul\u0000id"}):
        r = client.post("/api/customers", json=body, headers=h)
        assert r.status_code == 422
        assert r.json()["error"] == "validation_error"
    page = client.get("/api/customers", headers=h).json()
    assert page["meta"]["total"] == 0


def test_driver_data_errors_from_raw_cursors_are_422(client, staff, monkeypatch):
    """Found by the fuzzer: a value PostgreSQL refused on a raw cursor (bulk writes) was a 500."""
    import psycopg

    from patronage.customers import service as customers

    def refused(*args: object, **kwargs: object) -> None:
        raise psycopg.errors.UntranslatableCharacter("unsupported Unicode escape sequence")

    monkeypatch.setattr(customers, "create_customer", refused)
    r = client.post("/api/customers", json={"user_id": "x"}, headers=bearer(staff["admin"]))
    assert r.status_code == 422
    assert r.json() == {
        "error": "validation_error",
        "detail": "a value cannot be stored: it holds a NUL character, or is too long or "
        "out of range",
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/analytics/customers/{id}/scores"),
        ("DELETE", "/api/tokens/{id}"),
    ],
)
def test_ids_beyond_bigint_are_422(client, staff, method, path):
    """Found by the fuzzer: an id past BIGINT overflowed in the driver (500)."""
    h = bearer(staff["admin"])
    r = client.request(method, path.format(id=10230104883801316392960), headers=h)
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"
    assert client.request(method, path.format(id=2**63 - 1), headers=h).status_code == 404
