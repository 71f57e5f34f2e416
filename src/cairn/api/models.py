"""projects.models and projects.models.versions."""

from __future__ import annotations

from cairn.api.http import Call, Reply, Router, in_thread
from cairn.services.platform import Platform


def register(router: Router, platform: Platform) -> None:
    models = platform.models
    versions = platform.versions

    async def create_model(call: Call) -> Reply:
        body = await call.json("model")
        return Reply.json(await in_thread(models.create, call.params["project"], body))

    async def get_model(call: Call) -> Reply:
        return Reply.json(await in_thread(models.get, call.params["project"], call.params["model"]))

    async def list_models(call: Call) -> Reply:
        return Reply.json(await in_thread(models.list, call.params["project"], call.list_request()))

    async def patch_model(call: Call) -> Reply:
        body = await call.json("model")
        return Reply.json(
            await in_thread(
                models.patch,
                call.params["project"],
                call.params["model"],
                body,
                call.arg("updateMask"),
            )
        )

    async def delete_model(call: Call) -> Reply:
        return Reply.json(
            await in_thread(models.delete, call.params["project"], call.params["model"])
        )

    async def create_version(call: Call) -> Reply:
        body = await call.json("version")
        return Reply.json(
            await in_thread(versions.create, call.params["project"], call.params["model"], body)
        )

    async def get_version(call: Call) -> Reply:
        p = call.params
        return Reply.json(await in_thread(versions.get, p["project"], p["model"], p["version"]))

    async def list_versions(call: Call) -> Reply:
        return Reply.json(
            await in_thread(
                versions.list, call.params["project"], call.params["model"], call.list_request()
            )
        )

    async def patch_version(call: Call) -> Reply:
        body = await call.json("version")
        p = call.params
        return Reply.json(
            await in_thread(
                versions.patch, p["project"], p["model"], p["version"], body, call.arg("updateMask")
            )
        )

    async def delete_version(call: Call) -> Reply:
        p = call.params
        return Reply.json(await in_thread(versions.delete, p["project"], p["model"], p["version"]))

    async def set_default(call: Call) -> Reply:
        await call.json("body", required=False)
        p = call.params
        return Reply.json(
            await in_thread(versions.set_default, p["project"], p["model"], p["version"])
        )

    base = "/v1/projects/{project}/models"
    router.add("POST", base, create_model)
    router.add("GET", base, list_models)
    router.add("GET", base + "/{model}", get_model)
    router.add("PATCH", base + "/{model}", patch_model)
    router.add("DELETE", base + "/{model}", delete_model)
    router.add("POST", base + "/{model}/versions", create_version)
    router.add("GET", base + "/{model}/versions", list_versions)
    router.add("GET", base + "/{model}/versions/{version}", get_version)
    router.add("PATCH", base + "/{model}/versions/{version}", patch_version)
    router.add("DELETE", base + "/{model}/versions/{version}", delete_version)
    router.add("POST", base + "/{model}/versions/{version}:setDefault", set_default)
