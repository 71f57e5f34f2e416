"""What every resource service shares: etags, page tokens, filtered paging, rendering."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable
from typing import Any, Protocol

from cairn.domain.errors import invalid_field
from cairn.domain.filters import parse_filter

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Keys of stored documents that start with this are Cairn's bookkeeping, never rendered.
INTERNAL_PREFIX = "_"


class PagedRepository(Protocol):
    def page(
        self,
        parent: tuple[str, ...],
        *,
        after: str | None = None,
        limit: int = 100,
        states: Any = None,
    ) -> tuple[list[dict[str, Any]], str | None]: ...


def new_etag() -> str:
    """An opaque etag, base64 like Google's (`BlXqEgx9VQg=`)."""
    return base64.b64encode(os.urandom(8)).decode()


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without Cairn's internal keys."""
    return {k: v for k, v in doc.items() if not k.startswith(INTERNAL_PREFIX)}


def _encode_token(cursor: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"c": cursor}).encode()).decode()


def _decode_token(token: str) -> str:
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token.encode()))["c"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid_field(
            "page_token", "The page token is not valid; pass the nextPageToken of a previous list."
        ) from None
    if not isinstance(cursor, str):
        raise invalid_field("page_token", "The page token is not valid.")
    return cursor


def page_size_of(requested: int | None) -> int:
    if requested is None or requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested < 0:
        raise invalid_field("page_size", "The page size must not be negative.")
    return min(requested, MAX_PAGE_SIZE)


def list_page(
    repo: PagedRepository,
    parent: tuple[str, ...],
    *,
    collection: str,
    filter_text: str | None,
    page_size: int | None,
    page_token: str | None,
    render: Callable[[dict[str, Any]], dict[str, Any]] = public,
) -> dict[str, Any]:
    """One page of a list response, filtered, in creation order.

    Documents are fetched no further than the page needs, so the next page token always
    points right after the last document examined.
    """
    matches = parse_filter(filter_text)
    size = page_size_of(page_size)
    cursor = _decode_token(page_token) if page_token else None
    found: list[dict[str, Any]] = []
    more = True
    while len(found) < size:
        docs, next_cursor = repo.page(parent, after=cursor, limit=size - len(found))
        found.extend(render(doc) for doc in docs if matches(public(doc)))
        if next_cursor is None or not docs:
            more = False
            break
        cursor = next_cursor
    response: dict[str, Any] = {}
    if found:
        response[collection] = found
    if more and cursor is not None and _has_more(repo, parent, cursor):
        response["nextPageToken"] = _encode_token(cursor)
    return response


def _has_more(repo: PagedRepository, parent: tuple[str, ...], cursor: str) -> bool:
    docs, _ = repo.page(parent, after=cursor, limit=1)
    return bool(docs)
