"""projects.operations: get, list, cancel."""

from __future__ import annotations

from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import needs, project
from cairn.services.platform import Platform


def register(router: Router, platform: Platform) -> None:
    operations = platform.operations

    async def get(call: Call) -> Reply:
        return Reply.json(
            await in_thread(operations.get, call.params["project"], call.params["operation"])
        )

    async def list_operations(call: Call) -> Reply:
        return Reply.json(
            await in_thread(operations.list, call.params["project"], call.list_request())
        )

    async def cancel(call: Call) -> Reply:
        return Reply.json(
            await in_thread(operations.cancel, call.params["project"], call.params["operation"])
        )

    base = "/v1/projects/{project}/operations"
    router.add("GET", base, list_operations, needs("ml.operations.list", project))
    router.add("GET", base + "/{operation}", get, needs("ml.operations.get", project))
    router.add("POST", base + "/{operation}:cancel", cancel, needs("ml.operations.cancel", project))
