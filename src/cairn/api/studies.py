"""projects.locations (get, list, operations) and the Vizier studies and trials under them.

Studies have no IAM policy of their own in ml v1's REST surface, so every permission is
checked on the project. Suggest, measurements, completion, stop and the early-stopping
check change a trial: `ml.trials.update` (reference §6.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cairn.api.http import Call, Handler, Reply, Router, in_thread
from cairn.api.resources import needs, project
from cairn.services.platform import Platform


def register(router: Router, platform: Platform) -> None:
    locations = platform.locations
    operations = platform.location_operations
    studies = platform.studies

    async def get_location(call: Call) -> Reply:
        p = call.params
        return Reply.json(await in_thread(locations.get, p["project"], p["location"]))

    async def list_locations(call: Call) -> Reply:
        return Reply.json(
            await in_thread(
                locations.list,
                call.params["project"],
                call.int_arg("pageSize", "page_size"),
                call.arg("pageToken"),
            )
        )

    async def get_operation(call: Call) -> Reply:
        p = call.params
        return Reply.json(
            await in_thread(operations.get, p["project"], p["location"], p["operation"])
        )

    async def cancel_operation(call: Call) -> Reply:
        await call.json("body", required=False)
        p = call.params
        return Reply.json(
            await in_thread(operations.cancel, p["project"], p["location"], p["operation"])
        )

    async def create_study(call: Call) -> Reply:
        body = await call.json("study")
        p = call.params
        return Reply.json(
            await in_thread(studies.create, p["project"], p["location"], call.arg("studyId"), body)
        )

    async def get_study(call: Call) -> Reply:
        p = call.params
        return Reply.json(await in_thread(studies.get, p["project"], p["location"], p["study"]))

    async def list_studies(call: Call) -> Reply:
        p = call.params
        return Reply.json(await in_thread(studies.list_studies, p["project"], p["location"]))

    async def delete_study(call: Call) -> Reply:
        p = call.params
        return Reply.json(await in_thread(studies.delete, p["project"], p["location"], p["study"]))

    async def create_trial(call: Call) -> Reply:
        body = await call.json("trial")
        p = call.params
        return Reply.json(
            await in_thread(studies.create_trial, p["project"], p["location"], p["study"], body)
        )

    async def get_trial(call: Call) -> Reply:
        p = call.params
        return Reply.json(
            await in_thread(studies.get_trial, p["project"], p["location"], p["study"], p["trial"])
        )

    async def list_trials(call: Call) -> Reply:
        p = call.params
        return Reply.json(
            await in_thread(studies.list_trials, p["project"], p["location"], p["study"])
        )

    async def delete_trial(call: Call) -> Reply:
        p = call.params
        return Reply.json(
            await in_thread(
                studies.delete_trial, p["project"], p["location"], p["study"], p["trial"]
            )
        )

    def study_verb(method: Callable[..., dict[str, Any]]) -> Handler:
        """A POST on the study's trials collection whose body is the request itself."""

        async def handler(call: Call) -> Reply:
            body = await call.json("body", required=False)
            p = call.params
            return Reply.json(
                await in_thread(method, p["project"], p["location"], p["study"], body)
            )

        return handler

    def trial_verb(method: Callable[..., dict[str, Any]]) -> Handler:
        """A POST on one trial (`…/trials/T:verb`) whose body is the request itself."""

        async def handler(call: Call) -> Reply:
            body = await call.json("body", required=False)
            p = call.params
            return Reply.json(
                await in_thread(method, p["project"], p["location"], p["study"], p["trial"], body)
            )

        return handler

    base = "/v1/projects/{project}/locations"
    location = base + "/{location}"
    study = location + "/studies/{study}"
    trial = study + "/trials/{trial}"
    router.add("GET", base, list_locations, needs("ml.locations.list", project))
    router.add("GET", location, get_location, needs("ml.locations.get", project))
    router.add(
        "GET",
        location + "/operations/{operation}",
        get_operation,
        needs("ml.operations.get", project),
    )
    router.add(
        "POST",
        location + "/operations/{operation}:cancel",
        cancel_operation,
        needs("ml.operations.cancel", project),
    )
    router.add("POST", location + "/studies", create_study, needs("ml.studies.create", project))
    router.add("GET", location + "/studies", list_studies, needs("ml.studies.list", project))
    router.add("GET", study, get_study, needs("ml.studies.get", project))
    router.add("DELETE", study, delete_study, needs("ml.studies.delete", project))
    router.add("POST", study + "/trials", create_trial, needs("ml.trials.create", project))
    router.add("GET", study + "/trials", list_trials, needs("ml.trials.list", project))
    router.add(
        "POST",
        study + "/trials:suggest",
        study_verb(studies.suggest),
        needs("ml.trials.update", project),
    )
    # Reads only: kept out of the admin-activity audit log, like a GET.
    router.add(
        "POST",
        study + "/trials:listOptimalTrials",
        study_verb(studies.list_optimal),
        needs("ml.trials.list", project, audited=False),
    )
    router.add("GET", trial, get_trial, needs("ml.trials.get", project))
    router.add("DELETE", trial, delete_trial, needs("ml.trials.delete", project))
    for verb, method in (
        ("addMeasurement", studies.add_measurement),
        ("complete", studies.complete),
        ("stop", studies.stop),
        ("checkEarlyStoppingState", studies.check_early_stopping),
    ):
        router.add(
            "POST", f"{trial}:{verb}", trial_verb(method), needs("ml.trials.update", project)
        )
