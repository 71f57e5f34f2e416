"""Policies through Google's Cloud Resource Manager client, groups, the creator's ownership,
facts of AI Platform's roles, browsers kept out, and the audit log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tests.access.conftest import grant, owner_call
from tests.client.cli_runner import invoke
from tests.factories import sklearn_model_dir
from tests.remote import ml_client, unique, upload_dir


def test_project_policy_through_cloud_resource_manager_client(cairn_server: Any) -> None:
    crm = ml_client(cairn_server.url, cairn_server.credentials(), "cloudresourcemanager", "v1")
    project = unique("crm").replace("_", "-")
    policy = crm.projects().getIamPolicy(resource=project, body={}).execute()
    assert policy.get("bindings", []) == []
    policy["bindings"] = [{"role": "roles/ml.viewer", "members": ["user:eve@example.com"]}]
    crm.projects().setIamPolicy(resource=project, body={"policy": policy}).execute()
    again = crm.projects().getIamPolicy(resource=project, body={}).execute()
    assert again["bindings"] == policy["bindings"] and again["etag"] != policy["etag"]
    # A stale etag is refused rather than overwriting the change.
    stale = owner_call(
        cairn_server,
        "POST",
        f"/v1/projects/{project}:setIamPolicy",
        json={"policy": {"bindings": [], "etag": policy["etag"]}},
    )
    assert stale.status_code == 409 and stale.json()["error"]["status"] == "ABORTED"


def test_cli_binds_roles_on_a_project(cairn_server: Any) -> None:
    project = unique("clibind").replace("_", "-")
    added = invoke(
        cairn_server.url,
        "projects", "add-iam-policy-binding", project,
        "--member", "group:team@example.com", "--role", "roles/ml.developer",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    shown = invoke(cairn_server.url, "projects", "get-iam-policy", project, "--format", "json")
    assert "group:team@example.com" in shown.stdout and "roles/ml.developer" in shown.stdout
    removed = invoke(
        cairn_server.url,
        "projects", "remove-iam-policy-binding", project,
        "--member", "group:team@example.com", "--role", "roles/ml.developer",
    )  # fmt: skip
    assert removed.exit_code == 0 and "group:team" not in removed.stdout
    bad = invoke(
        cairn_server.url,
        "projects", "add-iam-policy-binding", project,
        "--member", "user:x@example.com", "--role", "roles/ml.wizard",
    )  # fmt: skip
    assert bad.exit_code == 1 and "does not exist" in bad.output


def test_group_members_get_the_group_role(
    cairn_server: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    project = unique("groups").replace("_", "-")
    member = principal_with(project, None)
    url = f"{cairn_server.url}/v1/projects/{project}/models"
    headers = {"Authorization": member["Authorization"]}
    assert httpx.get(url, headers=headers).status_code == 403
    group = f"{unique('grp')}@example.com"
    made = owner_call(
        cairn_server,
        "POST",
        "/cairn/v1/groups",
        json={"email": group, "members": [f"serviceAccount:{member['X-Account']}"]},
    )
    assert made.status_code == 200, made.text
    grant(cairn_server, f"projects/{project}", "roles/ml.viewer", f"group:{group}")
    assert httpx.get(url, headers=headers).status_code == 200


def test_ai_platform_role_facts(
    cairn_server: Any, tmp_path: Path, principal_with: Callable[..., dict[str, str]]
) -> None:
    project = unique("facts").replace("_", "-")
    owner = cairn_server.client()
    owner.projects().models().create(parent=f"projects/{project}", body={"name": "m"}).execute()
    uri = upload_dir(
        cairn_server.url,
        sklearn_model_dir(tmp_path / "m"),
        "facts",
        project,
        cairn_server.headers(),
    )
    developer = principal_with(project, "roles/ml.developer")
    viewer = principal_with(project, "roles/viewer")
    ml_viewer = principal_with(project, "roles/ml.viewer")

    def call(who: dict[str, str], method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{cairn_server.url}/v1/projects/{project}/{path}",
            json=body,
            headers={"Authorization": who["Authorization"]},
            timeout=120,
        )

    version = {
        "name": "v1",
        "deploymentUri": uri,
        "framework": "SCIKIT_LEARN",
        "runtimeVersion": "2.11",
    }
    # roles/ml.developer may create models but not versions.
    assert call(developer, "POST", "models/m/versions", version).status_code == 403
    assert call(developer, "POST", "models", {"name": "dev_model"}).status_code == 200
    operation = (
        owner.projects()
        .models()
        .versions()
        .create(parent=f"projects/{project}/models/m", body=version)
        .execute()
    )
    from tests.remote import wait_operation

    assert "error" not in wait_operation(owner, operation["name"])
    instances = {"instances": [[0.1, 0.2, 0.3, 0.4]]}
    # The basic viewer role may predict; AI Platform's own viewer role may not.
    assert call(viewer, "POST", "models/m:predict", instances).status_code == 200
    assert call(ml_viewer, "POST", "models/m:predict", instances).status_code == 403
    assert call(ml_viewer, "GET", "models/m/versions/v1").status_code == 200
    # A developer owns the job it submits, and cannot cancel anyone else's.
    job = {"jobId": unique("devjob"), "trainingInput": {
        "scaleTier": "BASIC", "packageUris": ["gs://facts/none.tar.gz"],
        "pythonModule": "trainer.task", "region": "us-central1"}}  # fmt: skip
    assert call(developer, "POST", "jobs", job).status_code == 200, "developer submits"
    other = principal_with(project, "roles/ml.developer")
    assert call(other, "POST", f"jobs/{job['jobId']}:cancel", {}).status_code == 403
    assert call(developer, "POST", f"jobs/{job['jobId']}:cancel", {}).status_code != 403


def test_browsers_cannot_drive_the_api(cairn_server: Any, start_server: Any) -> None:
    insecure = start_server(extra_args=["--insecure-no-auth"])
    for server, headers in ((cairn_server, cairn_server.headers()), (insecure, {})):
        url = f"{server.url}/v1/projects/browsers/models"
        cross_site = httpx.post(
            url,
            content=b'{"name": "evil"}',
            headers={**headers, "Content-Type": "text/plain", "Origin": "http://evil.example"},
        )
        assert cross_site.status_code == 403, cross_site.text
        simple = httpx.post(
            url, content=b'{"name": "evil"}', headers={**headers, "Content-Type": "text/plain"}
        )
        assert simple.status_code == 400 and "Content-Type" in simple.json()["error"]["message"]
        rebinding = httpx.get(url, headers={**headers, "Host": "evil.example"})
        assert rebinding.status_code == 403 and "Host" in rebinding.json()["error"]["message"]
        assert httpx.get(url, headers=headers).status_code == 200
    assert "authentication is OFF" in insecure.log()


def test_audit_log_records_changes_refusals_and_sign_ins(
    cairn_server: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    project = unique("audit").replace("_", "-")
    owner_call(cairn_server, "POST", f"/v1/projects/{project}/models", json={"name": "audited"})
    stranger = principal_with(project, None)
    denied = httpx.delete(
        f"{cairn_server.url}/v1/projects/{project}/models/audited",
        headers={"Authorization": stranger["Authorization"]},
    )
    assert denied.status_code == 403

    def entries(scope: str, filter_text: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"resourceNames": [scope], "orderBy": "timestamp desc"}
        if filter_text:
            body["filter"] = filter_text
        response = owner_call(cairn_server, "POST", "/v2/entries:list", json=body)
        assert response.status_code == 200, response.text
        return list(response.json().get("entries", []))

    found = entries(f"projects/{project}")
    created = [
        e for e in found if e["protoPayload"]["methodName"] == "POST /v1/projects/{project}/models"
    ]
    assert (
        created
        and created[0]["protoPayload"]["authenticationInfo"]["principalEmail"]
        == "owner@cairn.local"
    )
    assert created[0]["severity"] == "NOTICE"
    refused = entries(f"projects/{project}", "severity=ERROR")
    assert (
        refused[0]["protoPayload"]["authenticationInfo"]["principalEmail"] == stranger["X-Account"]
    )
    assert refused[0]["protoPayload"]["status"]["code"] == 7
    assert refused[0]["protoPayload"]["authorizationInfo"][0] == {
        "permission": "ml.models.delete",
        "resource": f"projects/{project}/models/audited",
        "granted": False,
    }
    sign_ins = entries(
        "organizations/cairn",
        f'protoPayload.authenticationInfo.principalEmail="{stranger["X-Account"]}"',
    )
    assert sign_ins and sign_ins[0]["protoPayload"]["methodName"] == "POST /token"
    shown = invoke(cairn_server.url, "logging", "read", "severity=ERROR", "--project", project)
    assert shown.exit_code == 0, shown.output
    assert "DELETE" in shown.output and stranger["X-Account"] in shown.output
    # Reading the audit log is itself a permission.
    assert (
        httpx.post(
            f"{cairn_server.url}/v2/entries:list",
            json={"resourceNames": [f"projects/{project}"]},
            headers={"Authorization": stranger["Authorization"]},
        ).status_code
        == 403
    )


def test_model_roles_granted_on_one_model_reach_that_model_only(
    cairn_server: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    project = unique("modelrole").replace("_", "-")
    for model in ("shared", "private"):
        owner_call(cairn_server, "POST", f"/v1/projects/{project}/models", json={"name": model})
    user = principal_with(project, None)
    grant(
        cairn_server,
        f"projects/{project}/models/shared",
        "roles/ml.modelUser",
        f"serviceAccount:{user['X-Account']}",
    )
    headers = {"Authorization": user["Authorization"]}
    base = f"{cairn_server.url}/v1/projects/{project}/models"
    assert httpx.get(f"{base}/shared", headers=headers).status_code == 200
    assert httpx.get(f"{base}/private", headers=headers).status_code == 403
    assert httpx.get(base, headers=headers).status_code == 403  # listing is project-wide
    tested = httpx.post(
        f"{base}/shared:testIamPermissions",
        json={"permissions": ["ml.models.get", "ml.models.predict", "ml.models.delete"]},
        headers=headers,
    )
    assert tested.json() == {"permissions": ["ml.models.get", "ml.models.predict"]}
    nothing = httpx.post(
        f"{base}/private:testIamPermissions",
        json={"permissions": ["ml.models.get"]},
        headers=headers,
    )
    assert nothing.status_code == 200 and nothing.json() == {}


def test_the_readme_python_snippet_works(cairn_server: Any, monkeypatch: Any) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "google.auth.default" in snippet
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(cairn_server.home / "credentials" / "owner.json")
    )
    scope: dict[str, Any] = {}
    exec(snippet.replace("http://127.0.0.1:8080", cairn_server.url), scope)  # noqa: S102
    assert scope["ml"].projects().getConfig(name="projects/cairn-local").execute()
