"""What every resource service shares: etags, page tokens, filtered paging, rendering."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
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
        newest_first: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]: ...


def new_etag() -> str:
    """An opaque etag, base64 like Google's (`BlXqEgx9VQg=`)."""
    return base64.b64encode(os.urandom(8)).decode()


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without Cairn's internal keys."""
    return {k: v for k, v in doc.items() if not k.startswith(INTERNAL_PREFIX)}


def page_size_of(requested: int | None) -> int:
    if requested is None or requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested < 0:
        raise invalid_field("page_size", "The page size must not be negative.")
    return min(requested, MAX_PAGE_SIZE)


@dataclass(frozen=True)
class ListRequest:
    """The standard list parameters of ml v1: `filter`, `pageSize`, `pageToken`."""

    filter_text: str | None = None
    page_size: int | None = None
    page_token: str | None = None


def list_page(
    repo: PagedRepository,
    parent: tuple[str, ...],
    request: ListRequest,
    *,
    collection: str,
    render: Callable[[dict[str, Any]], dict[str, Any]] = public,
    newest_first: bool = False,
) -> dict[str, Any]:
    """One page of a list response, filtered, in creation order.

    Documents are fetched no further than the page needs, so the store's cursor (the page
    token) always points right after the last document examined. With a filter, a page may
    hold fewer matches than asked for; the token then says where to go on.
    """
    matches = parse_filter(request.filter_text)
    size = page_size_of(request.page_size)
    cursor = request.page_token or None
    found: list[dict[str, Any]] = []
    while len(found) < size:
        docs, cursor = repo.page(
            parent, after=cursor, limit=size - len(found), newest_first=newest_first
        )
        found.extend(render(doc) for doc in docs if matches(public(doc)))
        if cursor is None:
            break
    response: dict[str, Any] = {}
    if found:
        response[collection] = found
    if cursor is not None:
        response["nextPageToken"] = cursor
    return response
