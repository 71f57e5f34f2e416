"""The one error type of Cairn, carrying a google.rpc canonical code.

Every layer raises `ApiError`; the API renders it as Google's error body and the CLI
prints its message. HTTP statuses live here, in one table, so no layer guesses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Code(Enum):
    """google.rpc.Code: (number, HTTP status)."""

    CANCELLED = (1, 499)
    UNKNOWN = (2, 500)
    INVALID_ARGUMENT = (3, 400)
    DEADLINE_EXCEEDED = (4, 504)
    NOT_FOUND = (5, 404)
    ALREADY_EXISTS = (6, 409)
    PERMISSION_DENIED = (7, 403)
    RESOURCE_EXHAUSTED = (8, 429)
    FAILED_PRECONDITION = (9, 400)
    ABORTED = (10, 409)
    OUT_OF_RANGE = (11, 400)
    UNIMPLEMENTED = (12, 501)
    INTERNAL = (13, 500)
    UNAVAILABLE = (14, 503)
    DATA_LOSS = (15, 500)
    UNAUTHENTICATED = (16, 401)

    @property
    def number(self) -> int:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass
class ApiError(Exception):
    """An error with a canonical code; `field_violations` name the fields at fault."""

    code: Code
    message: str
    field_violations: list[FieldViolation] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        """google.rpc.Status as JSON (the shape inside `{"error": ...}` and in operations)."""
        status: dict[str, Any] = {"code": self.code.number, "message": self.message}
        if self.field_violations:
            status["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": v.field, "description": v.description}
                        for v in self.field_violations
                    ],
                }
            ]
        return status

    def to_error_body(self) -> dict[str, Any]:
        """The HTTP error body Google APIs answer with."""
        status = self.to_status()
        body: dict[str, Any] = {
            "code": self.code.http_status,
            "message": self.message,
            "status": self.code.name,
        }
        if "details" in status:
            body["details"] = status["details"]
        return {"error": body}


# Longest text of a request echoed back in an error message: enough to recognise it, while
# a megabyte-long value still gets a short answer.
MAX_ECHOED_CHARS = 120


def shown(value: str) -> str:
    """`value` quoted for an error message, shortened when it is long."""
    if len(value) <= MAX_ECHOED_CHARS:
        return repr(value)
    return f"{value[:MAX_ECHOED_CHARS]!r}... ({len(value)} characters)"


def invalid_field(field_path: str, description: str) -> ApiError:
    """INVALID_ARGUMENT in AI Platform's `Field: <path> Error: <text>` form."""
    return ApiError(
        Code.INVALID_ARGUMENT,
        f"Field: {field_path} Error: {description}",
        [FieldViolation(field_path, description)],
    )


def not_found(what: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, f"{what} not found.")


def already_exists(field_path: str, description: str) -> ApiError:
    return ApiError(
        Code.ALREADY_EXISTS,
        f"Field: {field_path} Error: {description}",
        [FieldViolation(field_path, description)],
    )


def failed_precondition(message: str) -> ApiError:
    return ApiError(Code.FAILED_PRECONDITION, message)


def unimplemented(what: str) -> ApiError:
    return ApiError(
        Code.UNIMPLEMENTED,
        f"{what} is not built in Cairn yet.",
    )
