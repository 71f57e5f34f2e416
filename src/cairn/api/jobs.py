"""projects.jobs: create, get, list, cancel, patch (+ Cairn's log reader)."""

from __future__ import annotations

from typing import Any

from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import job, needs, project
from cairn.domain.errors import invalid_field
from cairn.services.access import Principal
from cairn.services.platform import Platform

# Task names are `<role>-replica-<index>` or `service`; anything longer names nothing.
_MAX_TASK_NAME = 128


def register(router: Router, platform: Platform) -> None:
    jobs = platform.jobs

    async def create(call: Call) -> Reply:
        body = await call.json("job")
        project = call.params["project"]
        await in_thread(check_may_act_as, project, body, call.caller)
        created = await in_thread(jobs.create, project, body)
        name = f"projects/{project}/jobs/{created['jobId']}"
        await in_thread(platform.access.grant_creator, name, "roles/ml.jobOwner", call.caller)
        return Reply.json(created)

    def check_may_act_as(project: str, body: Any, caller: Principal) -> None:
        """A job that runs as a service account needs the submitter to hold actAs on it."""
        training = body.get("trainingInput") if isinstance(body, dict) else None
        account = training.get("serviceAccount") if isinstance(training, dict) else None
        if not account:
            return
        if not isinstance(account, str):
            raise invalid_field("training_input.service_account", "Give the account's email.")
        platform.access.check(caller, "iam.serviceAccounts.actAs", f"projects/{project}")
        platform.identity.get_service_account(project, account)

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
        """Cairn's log reader: `?cursor=` goes on from an earlier batch; `?taskName=` keeps
        one replica's lines (`master-replica-0`, `worker-replica-1`, `service`), as gcloud's
        `stream-logs --task-name` does. Lines come in the order they were written."""
        task_name = call.arg("taskName") or None
        if task_name is not None and len(task_name) > _MAX_TASK_NAME:
            raise invalid_field("task_name", "Give a replica's task name, e.g. worker-replica-1.")
        project, job_id = call.params["project"], call.params["job"]
        trial, replica = None, task_name
        if task_name is not None:
            # `trial-3/master-replica-0`, as tuning jobs' lines are shown, names one trial's.
            prefix, _, rest = task_name.partition("/")
            if rest and prefix.startswith("trial-"):
                trial, replica = prefix.removeprefix("trial-"), rest
            await in_thread(_check_task_name, project, job_id, replica)
        batch = await in_thread(jobs.read_logs, project, job_id, call.arg("cursor"))
        if task_name is not None:
            batch["entries"] = [
                e
                for e in batch["entries"]
                if e.get("taskName") == replica and (trial is None or e.get("trialId") == trial)
            ]
        return Reply.json(batch)

    def _check_task_name(project: str, job_id: str, replica: str | None) -> None:
        """A name none of the job's replicas has is a typo, not a quiet replica: say which
        names there are (known once the job's replicas were launched)."""
        known = [r["taskName"] for r in jobs.get(project, job_id).get("cairnReplicas") or []]
        if known and replica not in {*known, "service"}:
            raise invalid_field(
                "task_name",
                f"Job {job_id} has no replica {replica!r}; its task names are "
                f"{', '.join(known)} and service (Cairn's own lines).",
            )

    router.add("POST", "/v1/projects/{project}/jobs", create, needs("ml.jobs.create", project))
    router.add("GET", "/v1/projects/{project}/jobs", list_jobs, needs("ml.jobs.list", project))
    router.add("GET", "/v1/projects/{project}/jobs/{job}", get, needs("ml.jobs.get", job))
    router.add("PATCH", "/v1/projects/{project}/jobs/{job}", patch, needs("ml.jobs.update", job))
    router.add(
        "POST", "/v1/projects/{project}/jobs/{job}:cancel", cancel, needs("ml.jobs.cancel", job)
    )
    router.add(
        "GET", "/cairn/v1/projects/{project}/jobs/{job}/logs", logs, needs("ml.jobs.get", job)
    )
