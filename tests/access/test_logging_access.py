"""Who sees which log entries through `POST /v2/entries:list`, role by role.

The permission matrix (test_permission_matrix.py) covers routes whose path names the
resource; this route's scopes come in its body and each entry has its own source, so this
test is its matrix: every role, bound on the project, sees exactly the kinds of entries
its permissions open, and nothing of other projects or of jobs it holds no role on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.access.conftest import grant
from tests.monitoring.logged import (
    deploy_logged_model,
    list_entries,
    read_all,
    run_job,
    wait_for_entries,
)
from tests.remote import unique

from cairn.iam.roles import ROLES

PROJECT = unique("logacl").replace("_", "-")
SCOPE = f"projects/{PROJECT}"
JOB = unique("seen")
OTHER_JOB = unique("hidden")
MODEL = unique("acl_model")

# What each kind of entry needs (services/logs.py).
NEEDS = {
    "job": "ml.jobs.get",
    "console": "ml.versions.get",
    "access": "ml.versions.get",
    "requests": "ml.versions.update",
    "audit": "logging.logEntries.list",
}


def kind_of(entry: dict[str, Any]) -> str:
    kind = entry["resource"]["type"]
    if kind == "ml_job":
        return "job"
    if kind == "audited_resource":
        return "audit"
    return entry["logName"].rsplit("%2F", 1)[-1]


@pytest.fixture(scope="module")
def logged(cairn_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    run_job(cairn_server, PROJECT, JOB, tmp_path_factory.mktemp("seen"))
    run_job(cairn_server, PROJECT, OTHER_JOB, tmp_path_factory.mktemp("hidden"))
    deploy_logged_model(cairn_server, PROJECT, MODEL, tmp_path_factory.mktemp("model"))
    kinds = {
        kind_of(e)
        for e in wait_for_entries(
            cairn_server, {"resourceNames": [SCOPE], "filter": "logName:console"}, count=1
        )
    }
    assert kinds == {"console"}
    everything = {kind_of(e) for e in read_all(cairn_server, {"resourceNames": [SCOPE]})}
    assert everything == set(NEEDS), everything
    return cairn_server


def test_each_role_sees_exactly_the_entries_its_permissions_open(
    logged: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    mismatches = []
    for role, permissions in ROLES.items():
        headers = {"Authorization": principal_with(PROJECT, role)["Authorization"]}
        expected = {kind for kind, needed in NEEDS.items() if needed in permissions}
        response = list_entries(logged, {"resourceNames": [SCOPE], "pageSize": 1000}, headers)
        if not {"logging.logEntries.list", "ml.jobs.get", "ml.versions.get"} & permissions:
            if response.status_code != 403:
                mismatches.append(f"{role}: expected 403, got {response.status_code}")
            continue
        assert response.status_code == 200, (role, response.text)
        seen = {kind_of(e) for e in read_all(logged, {"resourceNames": [SCOPE]}, headers)}
        if seen != expected:
            mismatches.append(f"{role}: expected {sorted(expected)}, saw {sorted(seen)}")
        # A project role opens nothing of the instance's own logs.
        instance = list_entries(logged, {"resourceNames": ["organizations/cairn"]}, headers)
        if instance.status_code != 403:
            mismatches.append(f"{role} read organizations/cairn: {instance.status_code}")
    assert not mismatches, "\n".join(mismatches)


def test_a_role_on_one_job_opens_that_jobs_lines_only(
    logged: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    person = principal_with(PROJECT, None)
    headers = {"Authorization": person["Authorization"]}
    refused = list_entries(logged, {"resourceNames": [SCOPE]}, headers)
    assert refused.status_code == 403
    assert "logging.logEntries.list" in refused.json()["error"]["message"]
    grant(
        logged, f"{SCOPE}/jobs/{JOB}", "roles/ml.jobOwner", f"serviceAccount:{person['X-Account']}"
    )
    seen = read_all(logged, {"resourceNames": [SCOPE]}, headers)
    assert seen and {e["resource"]["labels"]["job_id"] for e in seen} == {JOB}
    hidden = read_all(
        logged,
        {"resourceNames": [SCOPE], "filter": f"resource.labels.job_id={OTHER_JOB}"},
        headers,
    )
    assert hidden == []


def test_another_projects_people_see_nothing_here(
    logged: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    elsewhere = unique("elsewhere").replace("_", "-")
    headers = {"Authorization": principal_with(elsewhere, "roles/owner")["Authorization"]}
    assert list_entries(logged, {"resourceNames": [SCOPE]}, headers).status_code == 403
    both = list_entries(logged, {"resourceNames": [f"projects/{elsewhere}", SCOPE]}, headers)
    assert both.status_code == 403
    assert (
        list_entries(logged, {"resourceNames": [f"projects/{elsewhere}"]}, headers).status_code
        == 200
    )


def test_the_service_log_is_for_the_instances_administrators(
    logged: Any, principal_with: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    body = {"resourceNames": ["organizations/cairn"], "filter": "resource.type=cairn_server"}
    viewer = principal_with(PROJECT, None)
    grant(logged, "organizations/cairn", "roles/viewer", f"serviceAccount:{viewer['X-Account']}")
    viewer_headers = {"Authorization": viewer["Authorization"]}
    assert read_all(logged, body, viewer_headers) == []  # audit yes, server log no
    assert read_all(
        logged, {"resourceNames": ["organizations/cairn"], "pageSize": 5}, viewer_headers
    )
    admin = principal_with(PROJECT, None)
    grant(logged, "organizations/cairn", "roles/owner", f"serviceAccount:{admin['X-Account']}")
    found = read_all(logged, body, {"Authorization": admin["Authorization"]})
    assert found and {e["resource"]["type"] for e in found} == {"cairn_server"}
