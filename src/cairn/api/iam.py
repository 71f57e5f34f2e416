"""IAM policies: ml v1's getIamPolicy, setIamPolicy and testIamPermissions on models and jobs,
and Cloud Resource Manager v1's on projects and on the instance (`organizations/cairn`).

Policies inherit downwards (instance → project → model or job), so a project binding of
roles/ml.viewer lets its member read every model of the project.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cairn.api.gate import authenticated
from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import Params, job, model, needs, project
from cairn.domain.errors import not_found
from cairn.domain.names import check_project
from cairn.iam.policy import INSTANCE
from cairn.services.platform import Platform


def register(router: Router, platform: Platform) -> None:
    access = platform.access

    def exists(params: Params, resource: str) -> None:
        """NOT_FOUND for a model or job that does not exist, before touching its policy."""
        if resource.startswith("organizations/") and resource != INSTANCE:
            raise not_found(f"Organization {resource}; this server's is {INSTANCE}")
        if resource.startswith("projects/"):
            check_project(params["project"])
        if "/models/" in resource:
            platform.models.get(params["project"], params["model"])
        elif "/jobs/" in resource:
            platform.jobs.get(params["project"], params["job"])

    def methods(prefix: str, template: str, on: Callable[[Params], str], verb_get: str) -> None:
        async def get_policy(call: Call) -> Reply:
            resource = on(call.params)
            await in_thread(exists, call.params, resource)
            return Reply.json(await in_thread(access.get_policy, resource))

        async def set_policy(call: Call) -> Reply:
            resource = on(call.params)
            body: Any = await call.json("policy")
            await in_thread(exists, call.params, resource)
            return Reply.json(await in_thread(access.set_policy, resource, body))

        async def test_permissions(call: Call) -> Reply:
            resource = on(call.params)
            body = await call.json("permissions")
            await in_thread(exists, call.params, resource)
            return Reply.json(await in_thread(access.test_permissions, call.caller, resource, body))

        router.add(
            verb_get,
            template + ":getIamPolicy",
            get_policy,
            needs(f"{prefix}.getIamPolicy", on, audited=False),
        )
        router.add(
            "POST", template + ":setIamPolicy", set_policy, needs(f"{prefix}.setIamPolicy", on)
        )
        router.add("POST", template + ":testIamPermissions", test_permissions, authenticated())

    methods("ml.models", "/v1/projects/{project}/models/{model}", model, "GET")
    methods("ml.jobs", "/v1/projects/{project}/jobs/{job}", job, "GET")
    # Cloud Resource Manager v1 reads policies with POST.
    methods("resourcemanager.projects", "/v1/projects/{project}", project, "POST")
    methods("resourcemanager.projects", "/v1/organizations/{organization}", organization, "POST")


def organization(params: Params) -> str:
    return f"organizations/{params['organization']}"
