"""projects.operations: get, list, cancel."""

from __future__ import annotations

from cairn.api.http import Call, Reply, Router, in_thread
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

    router.add("GET", "/v1/projects/{project}/operations", list_operations)
    router.add("GET", "/v1/projects/{project}/operations/{operation}", get)
    router.add("POST", "/v1/projects/{project}/operations/{operation}:cancel", cancel)
