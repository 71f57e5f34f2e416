"""Cloud Logging v2's `entries:list` over every log Cairn keeps (`services/logs.py`).

`resourceNames` names the scopes (`projects/P`, or `organizations/cairn` for the instance's
audit entries and Cairn's service log); `filter` is Cloud Logging's filter language;
`orderBy` is `timestamp asc` (the default) or `timestamp desc`; `pageSize` up to 1000.
Google's logging clients call it unchanged with the endpoint pointed here.
"""

from __future__ import annotations

from typing import Any

from cairn.api.gate import authenticated
from cairn.api.http import Call, Reply, Router, in_thread
from cairn.domain.errors import invalid_field
from cairn.domain.names import check_project
from cairn.iam.policy import INSTANCE
from cairn.services.logs import ListEntries
from cairn.services.platform import Platform

_MAX_SCOPES = 20
_MAX_PAGE_SIZE = 1000  # Cloud Logging's entries:list caps pageSize at 1000
_DEFAULT_PAGE_SIZE = 50


def register(router: Router, platform: Platform) -> None:
    logs = platform.logs
    if logs is None:  # a platform built without a home (some tests) keeps no logs to read
        return

    async def list_entries(call: Call) -> Reply:
        request = parse_list_request(await call.json("body"))
        return Reply.json(await in_thread(logs.list_entries, call.caller, request))

    # The scopes come in the body and each entry's source has its own permission, so the
    # service checks them (services/logs.py); the route needs a valid credential.
    router.add("POST", "/v2/entries:list", list_entries, authenticated())


def parse_list_request(body: Any) -> ListEntries:
    if not isinstance(body, dict):
        raise invalid_field("body", "The request must be a JSON object.")
    unknown = set(body) - {"resourceNames", "filter", "orderBy", "pageSize", "pageToken"}
    if "projectIds" in unknown:
        raise invalid_field("project_ids", "projectIds is deprecated; use resourceNames.")
    if unknown:
        raise invalid_field(sorted(unknown)[0], "Unknown field.")
    names = body.get("resourceNames")
    if (
        not isinstance(names, list)
        or not names
        or len(names) > _MAX_SCOPES
        or not all(isinstance(n, str) for n in names)
    ):
        raise invalid_field(
            "resource_names",
            f"Name 1 to {_MAX_SCOPES} scopes: projects/P or organizations/cairn.",
        )
    for name in names:
        # A whole project or the instance only: a model's policy must not open its project's log.
        parts = name.split("/")
        if name == INSTANCE:
            continue
        if len(parts) != 2 or parts[0] != "projects" or not parts[1]:
            raise invalid_field(
                "resource_names", "Name one scope: projects/P or organizations/cairn."
            )
        check_project(parts[1])
    order = body.get("orderBy") or "timestamp asc"
    if not isinstance(order, str) or " ".join(order.split()).lower() not in (
        "timestamp asc",
        "timestamp desc",
        "timestamp",
    ):
        raise invalid_field("order_by", "Use 'timestamp asc' or 'timestamp desc'.")
    size = body.get("pageSize")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise invalid_field("page_size", "The page size must be an integer.")
    if size is not None and size < 0:
        raise invalid_field("page_size", "The page size must not be negative.")
    for name in ("filter", "pageToken"):
        if body.get(name) is not None and not isinstance(body.get(name), str):
            raise invalid_field(name, "Must be a string.")
    return ListEntries(
        resource_names=tuple(dict.fromkeys(names)),
        filter_text=body.get("filter"),
        newest_first=order.split()[-1].lower() == "desc",
        page_size=min(size or _DEFAULT_PAGE_SIZE, _MAX_PAGE_SIZE),
        page_token=body.get("pageToken") or None,
    )
