"""`entries:list` and `cairn logging read` over a real server's logs: a real training job's
replicas, a served version's node output, access and request logs, the audit log and the
server's own service log; paging; Google's logging client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.client.cli_runner import invoke
from tests.monitoring.logged import (
    deploy_logged_model,
    list_entries,
    read_all,
    run_job,
    wait_for_entries,
)
from tests.remote import unique

PROJECT = unique("logs").replace("_", "-")
SCOPE = f"projects/{PROJECT}"
JOB = unique("twin")
OTHER_JOB = unique("solo")
MODEL = unique("served")


@pytest.fixture(scope="module")
def logged(cairn_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two jobs (one a master and a worker) and a model with every prediction log."""
    run_job(
        cairn_server,
        PROJECT,
        JOB,
        tmp_path_factory.mktemp("twin"),
        scaleTier="CUSTOM",
        masterType="standard",
        workerType="standard",
        workerCount="1",
    )
    run_job(cairn_server, PROJECT, OTHER_JOB, tmp_path_factory.mktemp("solo"))
    deploy_logged_model(cairn_server, PROJECT, MODEL, tmp_path_factory.mktemp("model"))
    return cairn_server


def test_a_jobs_replica_logs_by_job_task_and_severity(logged: Any) -> None:
    job = read_all(logged, {"resourceNames": [SCOPE], "filter": f'resource.labels.job_id="{JOB}"'})
    tasks = {e["resource"]["labels"]["task_name"] for e in job}
    assert {"master-replica-0", "worker-replica-0", "service"} <= tasks
    assert {e["resource"]["type"] for e in job} == {"ml_job"}
    assert {e["resource"]["labels"]["job_id"] for e in job} == {JOB}
    # Oldest first by default; every entry in Cloud Logging's LogEntry shape.
    times = [e["timestamp"] for e in job]
    assert times == sorted(times)
    master = next(e for e in job if e["resource"]["labels"]["task_name"] == "master-replica-0")
    assert master["logName"] == f"{SCOPE}/logs/master-replica-0"
    assert set(master) >= {"logName", "resource", "timestamp", "severity", "insertId"}
    assert "textPayload" in master
    service = next(e for e in job if e["resource"]["labels"]["task_name"] == "service")
    assert service["logName"] == f"{SCOPE}/logs/ml.googleapis.com%2F{JOB}"

    worker = read_all(
        logged,
        {
            "resourceNames": [SCOPE],
            "filter": f'resource.type=ml_job resource.labels.job_id="{JOB}" '
            'resource.labels.task_name="worker-replica-0"',
            "orderBy": "timestamp desc",
        },
    )
    texts = [e["textPayload"] for e in worker]
    assert texts[-3:] == [f"worker-0 step {n} loss {1 / (n + 1):.3f}" for n in (2, 1, 0)]
    assert all("master" not in text for text in texts)

    errors = read_all(
        logged,
        {"resourceNames": [SCOPE], "filter": f"resource.labels.job_id={JOB} severity>=ERROR"},
    )
    assert sorted(e["textPayload"] for e in errors) == sorted(
        f"ERROR:root:{name} saw a NaN in {JOB}" for name in ("chief-0", "worker-0")
    )
    assert {e["severity"] for e in errors} == {"ERROR"}
    warnings = read_all(
        logged,
        {"resourceNames": [SCOPE], "filter": f"resource.labels.job_id={JOB} severity=WARNING"},
    )
    assert len(warnings) == 2 and all("warming up" in e["textPayload"] for e in warnings)
    # gcloud's `jobs stream-logs` asks with this filter.
    streamed = read_all(
        logged,
        {
            "resourceNames": [SCOPE],
            "filter": f'(resource.type="ml_job" OR resource.type="cloudml_job") AND '
            f'resource.labels.job_id="{OTHER_JOB}" AND (resource.labels.task_name='
            '"master-replica-0" OR labels.task_name="master-replica-0")',
            "orderBy": "timestamp asc",
        },
    )
    assert [e["textPayload"] for e in streamed][:3] == [
        f"chief-0 step {n} loss {1 / (n + 1):.3f}" for n in range(3)
    ]
    # Text search and has-tests across both jobs.
    nan = read_all(logged, {"resourceNames": [SCOPE], "filter": 'textPayload:"saw a nan"'})
    assert {e["resource"]["labels"]["job_id"] for e in nan} == {JOB, OTHER_JOB}


def test_a_versions_node_access_and_request_logs(logged: Any) -> None:
    version = f'resource.type=cloudml_model_version resource.labels.model_id="{MODEL}"'
    console = wait_for_entries(
        logged,
        {"resourceNames": [SCOPE], "filter": f"{version} logName:console"},
        count=1,
    )
    assert console, "the node's console output"
    assert {e["resource"]["labels"]["version_id"] for e in console} == {"v1"}
    assert {e["labels"]["node"] for e in console} == {"0"}
    access = read_all(
        logged, {"resourceNames": [SCOPE], "filter": f"{version} httpRequest.status=200"}
    )
    assert len(access) == 3
    assert all(e["httpRequest"]["requestMethod"] == "POST" for e in access)
    requests = read_all(
        logged,
        {
            "resourceNames": [SCOPE],
            "filter": f'{version} logName="{SCOPE}/logs/ml.googleapis.com%2Frequests"',
            "orderBy": "timestamp asc",
        },
    )
    assert [json.loads(e["jsonPayload"]["raw_data"]) for e in requests] == [
        {"instances": [[value, 0.5]]} for value in (1.0, -1.0, 2.0)
    ]
    only_v2 = read_all(
        logged, {"resourceNames": [SCOPE], "filter": f"{version} resource.labels.version_id=v2"}
    )
    assert only_v2 == []


def test_audit_entries_and_the_service_log(logged: Any) -> None:
    audit = read_all(
        logged,
        {
            "resourceNames": [SCOPE],
            "filter": 'resource.type=audited_resource protoPayload.methodName:"/jobs"',
        },
    )
    assert len(audit) >= 2 and {e["severity"] for e in audit} == {"NOTICE"}
    service = read_all(
        logged,
        {
            "resourceNames": ["organizations/cairn"],
            "filter": 'resource.type=cairn_server jsonPayload.message:"Service log opened"',
        },
    )
    assert service and service[0]["resource"] == {"type": "cairn_server", "labels": {}}
    assert service[0]["logName"] == "organizations/cairn/logs/cairn.googleapis.com%2Fserver"
    # A project's scope holds no server entries, the instance's no job lines.
    assert (
        read_all(logged, {"resourceNames": [SCOPE], "filter": "resource.type=cairn_server"}) == []
    )
    assert (
        read_all(
            logged, {"resourceNames": ["organizations/cairn"], "filter": "resource.type=ml_job"}
        )
        == []
    )


def test_paging_newest_first_sees_every_entry_once_while_logs_grow(logged: Any) -> None:
    body = {"resourceNames": [SCOPE], "orderBy": "timestamp desc"}
    whole = read_all(logged, {**body, "pageSize": 1000})
    assert len(whole) > 40
    first = list_entries(logged, {**body, "pageSize": 7}).json()
    assert len(first["entries"]) == 7 and first["nextPageToken"]
    # New entries arrive (an audited call) between pages: they are newer than the listing.
    logged.client().projects().models().create(
        parent=SCOPE, body={"name": unique("late")}
    ).execute()
    paged = first["entries"] + read_all(
        logged, {**body, "pageSize": 7, "pageToken": first["nextPageToken"]}
    )
    assert [e["insertId"] for e in paged] == [e["insertId"] for e in whole]
    times = [e["timestamp"] for e in paged]
    assert times == sorted(times, reverse=True)


def test_bad_requests_are_invalid_argument(logged: Any) -> None:
    cases = [
        ({"resourceNames": [SCOPE], "filter": "severity>="}, "character 11"),
        ({"resourceNames": [SCOPE], "orderBy": "severity"}, "timestamp asc"),
        ({"resourceNames": [f"{SCOPE}/models/{MODEL}"]}, "projects/P or organizations/cairn"),
        ({"resourceNames": [SCOPE], "pageToken": "bm90IG1pbmU"}, "page token"),
        ({"resourceNames": [SCOPE], "pageSize": -1}, "negative"),
        ({"resourceNames": []}, "Name 1 to"),
        ({"resourceNames": [SCOPE], "colour": "blue"}, "Unknown field"),
    ]
    for body, expected in cases:
        response = list_entries(logged, body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and expected in error["message"], error


def test_googles_logging_client_lists_entries(logged: Any) -> None:
    from googleapiclient.discovery import build

    logging_v2 = build(
        "logging",
        "v2",
        client_options={"api_endpoint": logged.url},
        credentials=logged.credentials(),
        static_discovery=True,
        cache_discovery=False,
    )
    request = logging_v2.entries().list(
        body={
            "resourceNames": [SCOPE],
            "filter": f"resource.labels.job_id={OTHER_JOB} severity>=ERROR",
            "orderBy": "timestamp desc",
            "pageSize": 5,
        }
    )
    answer = request.execute()
    assert [e["textPayload"] for e in answer["entries"]] == [
        f"ERROR:root:chief-0 saw a NaN in {OTHER_JOB}"
    ]


def test_cairn_logging_read(logged: Any, tmp_path: Path) -> None:
    shown = invoke(
        logged.url, "logging", "read", f"resource.labels.job_id={JOB} severity>=ERROR",
        "--project", PROJECT,
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    lines = shown.output.strip().splitlines()
    assert lines[0].split() == ["TIMESTAMP", "SEVERITY", "RESOURCE", "MESSAGE"]
    assert len(lines) == 3 and f"ml_job {JOB}/master-replica-0" in shown.output
    as_json = invoke(
        logged.url, "logging", "read", f"resource.labels.job_id={JOB}", "--limit", "4",
        "--order", "asc", "--format", "json", "--project", PROJECT,
    )  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    entries = json.loads(as_json.output)
    assert len(entries) == 4 and [e["timestamp"] for e in entries] == sorted(
        e["timestamp"] for e in entries
    )
    # --freshness bounds newest-first reads unless the filter names a timestamp.
    fresh = invoke(
        logged.url, "logging", "read", f"resource.labels.job_id={JOB}", "--freshness", "1s",
        "--project", PROJECT, "--format", "json",
    )  # fmt: skip
    assert fresh.exit_code == 0 and json.loads(fresh.stdout or "[]") == []
    bad = invoke(logged.url, "logging", "read", "--freshness", "soon", "--project", PROJECT)
    assert bad.exit_code == 2 and "duration" in bad.output
    unparsed = invoke(logged.url, "logging", "read", "severity>=", "--project", PROJECT)
    assert unparsed.exit_code == 1 and "character" in unparsed.output
    helped = invoke(logged.url, "logging", "read", "--help")
    assert "resource.labels.job_id" in helped.output and "--freshness" in helped.output
