"""projects.getConfig, projects.predict, and the methods Cairn does not build yet."""

from __future__ import annotations

from cairn.api.gate import Access
from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import needs, predict_permission, predict_target, project
from cairn.domain.errors import ApiError, Code
from cairn.services.platform import Platform


def register(router: Router, platform: Platform, *, predict_max_bytes: int) -> None:
    predictions = platform.predictions

    async def get_config(call: Call) -> Reply:
        return Reply.json(await in_thread(platform.projects.get_config, call.params["project"]))

    async def predict(call: Call) -> Reply:
        body = await call.body(limit=predict_max_bytes)
        status, payload = await predictions.predict("projects/" + call.params["name"], body)
        return Reply(status, payload)

    async def unimplemented(call: Call) -> Reply:
        raise ApiError(
            Code.UNIMPLEMENTED,
            f"{call.method} {call.path} is not built in Cairn yet.",
        )

    router.add(
        "GET",
        "/v1/projects/{project}:getConfig",
        get_config,
        needs("ml.projects.getConfig", project),
    )
    # A prediction reads data, it changes nothing: not in the admin-activity audit log.
    prediction = Access(predict_permission, predict_target, audited=False)
    router.add("POST", "/v1/projects/{name**}:predict", predict, prediction)
    router.add("POST", "/v1/projects/{name**}:explain", unimplemented, prediction)
