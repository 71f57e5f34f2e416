"""Turn an HTTP error answer of the ml v1 API back into Cairn's one error type.

Google APIs answer `{"error": {"code", "message", "status", "details"}}`; online prediction
answers `{"error": "<text>"}` for a bad instance. Both become `ApiError` so every caller
(CLI, scripts) handles one type, with the canonical code the server meant.
"""

from __future__ import annotations

from typing import Any

import httpx

from cairn.domain.errors import ApiError, Code, FieldViolation

_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# HTTP status -> canonical code when a body names no status (first entry per status wins).
_BY_HTTP: dict[int, Code] = {}
for _code in Code:
    _BY_HTTP.setdefault(_code.http_status, _code)
_BY_HTTP[400] = Code.INVALID_ARGUMENT
_BY_HTTP[500] = Code.INTERNAL


def code_for_http_status(status: int) -> Code:
    """The canonical code a bare HTTP status most likely means."""
    if status in _BY_HTTP:
        return _BY_HTTP[status]
    return Code.INVALID_ARGUMENT if 400 <= status < 500 else Code.UNKNOWN


def error_from_response(response: httpx.Response) -> ApiError:
    """Parse an error response (any shape) into an `ApiError`."""
    try:
        body: Any = response.json()
    except ValueError:
        text = response.text.strip() or response.reason_phrase
        return ApiError(code_for_http_status(response.status_code), text)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return ApiError(code_for_http_status(response.status_code), error)
    if not isinstance(error, dict):
        return ApiError(code_for_http_status(response.status_code), response.text.strip())
    return error_from_status(error, http_status=response.status_code)


def error_from_status(error: dict[str, Any], http_status: int | None = None) -> ApiError:
    """Build an `ApiError` from Google's error object or from a google.rpc.Status.

    An operation's `error` is a google.rpc.Status (numeric `code`, no `status` name), while
    an HTTP error body carries the HTTP code and the status name; both shapes are accepted.
    """
    code = _code_from(error, http_status)
    message = str(error.get("message") or code.name)
    violations = [
        FieldViolation(str(v.get("field", "")), str(v.get("description", "")))
        for detail in error.get("details") or []
        if isinstance(detail, dict) and detail.get("@type") == _BAD_REQUEST_TYPE
        for v in detail.get("fieldViolations") or []
        if isinstance(v, dict)
    ]
    return ApiError(code, message, violations)


def _code_from(error: dict[str, Any], http_status: int | None) -> Code:
    status = error.get("status")
    if isinstance(status, str) and status in Code.__members__:
        return Code[status]
    number = error.get("code")
    if http_status is None and isinstance(number, int):
        for code in Code:
            if code.number == number:
                return code
    return code_for_http_status(http_status or 500)
