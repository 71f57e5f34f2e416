"""projects.models and projects.models.versions."""

from __future__ import annotations

from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import model, needs, project
from cairn.services.platform import Platform


def register(router: Router, platform: Platform) -> None:
    models = platform.models
    versions = platform.versions

    async def create_model(call: Call) -> Reply:
        body = await call.json("model")
        created = await in_thread(models.create, call.params["project"], body)
        await in_thread(
            platform.access.grant_creator, created["name"], "roles/ml.modelOwner", call.caller
        )
        return Reply.json(created)

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
    version = base + "/{model}/versions/{version}"
    router.add("POST", base, create_model, needs("ml.models.create", project))
    router.add("GET", base, list_models, needs("ml.models.list", project))
    router.add("GET", base + "/{model}", get_model, needs("ml.models.get", model))
    router.add("PATCH", base + "/{model}", patch_model, needs("ml.models.update", model))
    router.add("DELETE", base + "/{model}", delete_model, needs("ml.models.delete", model))
    router.add(
        "POST", base + "/{model}/versions", create_version, needs("ml.versions.create", model)
    )
    router.add("GET", base + "/{model}/versions", list_versions, needs("ml.versions.list", model))
    router.add("GET", version, get_version, needs("ml.versions.get", model))
    router.add("PATCH", version, patch_version, needs("ml.versions.update", model))
    router.add("DELETE", version, delete_version, needs("ml.versions.delete", model))
    router.add("POST", version + ":setDefault", set_default, needs("ml.versions.update", model))
