"""projects.jobs: create, get, list, cancel, patch (+ Cairn's log reader)."""

from __future__ import annotations

from cairn.api.http import Call, Reply, Router, in_thread
from cairn.services.platform import Platform


def register(router: Router, platform: Platform) -> None:
    jobs = platform.jobs

    async def create(call: Call) -> Reply:
        body = await call.json("job")
        return Reply.json(await in_thread(jobs.create, call.params["project"], body))

    async def get(call: Call) -> Reply:
        return Reply.json(await in_thread(jobs.get, call.params["project"], call.params["job"]))

    async def list_jobs(call: Call) -> Reply:
        return Reply.json(await in_thread(jobs.list, call.params["project"], call.list_request()))

    async def cancel(call: Call) -> Reply:
        await call.json("body", required=False)
        return Reply.json(await in_thread(jobs.cancel, call.params["project"], call.params["job"]))

    async def patch(call: Call) -> Reply:
        body = await call.json("job")
        return Reply.json(
            await in_thread(
                jobs.patch,
                call.params["project"],
                call.params["job"],
                body,
                call.arg("updateMask"),
            )
        )

    async def logs(call: Call) -> Reply:
        return Reply.json(
            await in_thread(
                jobs.read_logs, call.params["project"], call.params["job"], call.arg("cursor")
            )
        )

    router.add("POST", "/v1/projects/{project}/jobs", create)
    router.add("GET", "/v1/projects/{project}/jobs", list_jobs)
    router.add("GET", "/v1/projects/{project}/jobs/{job}", get)
    router.add("PATCH", "/v1/projects/{project}/jobs/{job}", patch)
    router.add("POST", "/v1/projects/{project}/jobs/{job}:cancel", cancel)
    router.add("GET", "/cairn/v1/projects/{project}/jobs/{job}/logs", logs)
