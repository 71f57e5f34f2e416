"""The audit log, read in Cloud Logging v2's `entries:list` shape.

`resourceNames` names the scope (`projects/P`, or `organizations/cairn` for sign-ins and
changes to people and groups); `filter` uses the list-filter language on the entry's JSON
(`protoPayload.methodName`, `protoPayload.authenticationInfo.principalEmail`, `severity`,
`timestamp>="…"`); `orderBy` is `timestamp asc` (the default) or `timestamp desc`.
"""

from __future__ import annotations

import re

from cairn.api.gate import authenticated
from cairn.api.http import Call, Reply, Router, in_thread
from cairn.domain.errors import invalid_field
from cairn.domain.names import check_project
from cairn.iam.policy import INSTANCE
from cairn.services.platform import Platform
from cairn.services.records import ListRequest


def register(router: Router, platform: Platform) -> None:
    access = platform.access

    async def list_entries(call: Call) -> Reply:
        body = await call.json("body")
        if not isinstance(body, dict):
            raise invalid_field("body", "The request must be a JSON object.")
        scopes = body.get("resourceNames")
        if not isinstance(scopes, list) or len(scopes) != 1 or not isinstance(scopes[0], str):
            raise invalid_field(
                "resource_names", "Name one scope: projects/P or organizations/cairn."
            )
        scope = scopes[0]
        # Only a whole project or the instance: a model's policy must not open its project's log.
        if scope != INSTANCE and not re.fullmatch(r"projects/[^/]+", scope):
            raise invalid_field(
                "resource_names", "Name one scope: projects/P or organizations/cairn."
            )
        if scope != INSTANCE:
            check_project(scope.split("/", 1)[1])
        order = body.get("orderBy") or "timestamp asc"
        if order not in ("timestamp asc", "timestamp desc"):
            raise invalid_field("order_by", "Use 'timestamp asc' or 'timestamp desc'.")
        page_size = body.get("pageSize")
        if page_size is not None and not isinstance(page_size, int):
            raise invalid_field("page_size", "The page size must be an integer.")
        for name in ("filter", "pageToken"):
            if body.get(name) is not None and not isinstance(body.get(name), str):
                raise invalid_field(name, "Must be a string.")
        await in_thread(access.check, call.caller, "logging.logEntries.list", scope)
        request = ListRequest(body.get("filter"), page_size, body.get("pageToken"))
        return Reply.json(
            await in_thread(
                access.read_audit, scope, request, newest_first=order == "timestamp desc"
            )
        )

    # The scope comes in the body, so the handler checks logging.logEntries.list itself.
    router.add("POST", "/v2/entries:list", list_entries, authenticated())
