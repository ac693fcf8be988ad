"""One error shape for the whole API: {"error": CODE, "detail": ...} with a correct status.

Services raise these; the app turns them into responses (JSON for the API, a page for the
web console). Messages must never carry personal data.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail if detail is not None else self.code.replace("_", " ")
        self.headers = headers


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class TooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"


class CsrfFailed(AppError):
    status_code = 403
    code = "csrf_failed"
