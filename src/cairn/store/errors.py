"""The two conflicts the store reports, as `ApiError`s so an uncaught one still renders well.

Services usually catch them to word a better message (naming the resource), but if one slips
through, the API still answers 409 with a Google-style body instead of a 500.
"""

from __future__ import annotations

from cairn.domain.errors import ApiError, Code


class DuplicateKeyError(ApiError):
    """An insert found a document already stored under the same key."""

    def __init__(self, table: str, key: tuple[str, ...]) -> None:
        super().__init__(
            Code.ALREADY_EXISTS,
            f"A {table} entry named {'/'.join(key)!r} already exists; choose another name "
            "or delete the existing one first.",
        )
        self.table = table
        self.key = key


class EtagMismatchError(ApiError):
    """An update carried an etag that no longer matches the stored document."""

    def __init__(self, table: str, key: tuple[str, ...], expected: str, actual: str | None) -> None:
        super().__init__(
            Code.ABORTED,
            f"The etag {expected!r} does not match the current etag of {'/'.join(key)!r}: "
            "someone changed it since you read it. Read it again and retry with the new etag.",
        )
        self.table = table
        self.key = key
        self.expected = expected
        self.actual = actual
