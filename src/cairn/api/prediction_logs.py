"""Cairn's readers of online-prediction logs: sampled requests, access logs, console output.

Cairn-specific routes under /cairn/v1 (AI Platform sent these to BigQuery and Cloud
Logging). The request log holds request and response bodies, which may be personal data:
reading it needs ml.versions.update on the model (editors, admins, owners, the model's
modelOwner), not the ml.versions.get every viewer holds; so does attaching ground truth.
Access logs (sizes, statuses, latencies) and console logs need ml.versions.get.
"""

from __future__ import annotations

from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import model, needs
from cairn.services.platform import Platform
from cairn.services.request_logs import LogRead


def register(router: Router, platform: Platform) -> None:
    logs = platform.request_logs

    def log_read(call: Call) -> LogRead:
        return LogRead(
            version=call.arg("version"),
            table=call.arg("table"),
            since=call.arg("since"),
            until=call.arg("until"),
            order=call.arg("order"),
            page_size=call.int_arg("pageSize", "page_size"),
            page_token=call.arg("pageToken"),
        )

    async def read_requests(call: Call) -> Reply:
        p = call.params
        return Reply.json(
            await in_thread(logs.read_requests, p["project"], p["model"], log_read(call))
        )

    async def read_accesses(call: Call) -> Reply:
        p = call.params
        return Reply.json(
            await in_thread(logs.read_accesses, p["project"], p["model"], log_read(call))
        )

    async def set_groundtruth(call: Call) -> Reply:
        body = await call.json("body")
        p = call.params
        return Reply.json(await in_thread(logs.set_groundtruth, p["project"], p["model"], body))

    async def read_console(call: Call) -> Reply:
        p = call.params
        lines = call.int_arg("lines", "lines")
        return Reply.json(
            await in_thread(logs.read_console, p["project"], p["model"], p["version"], lines)
        )

    base = "/cairn/v1/projects/{project}/models/{model}"
    router.add("GET", base + "/requestLogs", read_requests, needs("ml.versions.update", model))
    router.add(
        "POST",
        base + "/requestLogs:setGroundtruth",
        set_groundtruth,
        needs("ml.versions.update", model),
    )
    router.add("GET", base + "/accessLogs", read_accesses, needs("ml.versions.get", model))
    router.add(
        "GET",
        base + "/versions/{version}/consoleLogs",
        read_console,
        needs("ml.versions.get", model),
    )
