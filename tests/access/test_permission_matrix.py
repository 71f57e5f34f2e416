"""Every route × every role, over HTTP: a role's permissions are exactly what it may call.

The routes come from the server's own router, so a route added later is covered the day it
is added, and the router refuses a route that names no Access at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.remote import unique

from cairn.api.gate import UPLOAD_BODY, Access
from cairn.api.http import Router
from cairn.config import Settings
from cairn.iam.roles import ROLES
from cairn.server import build_app

PLACEHOLDERS = {
    "model": "nosuch_model",
    "job": "nosuch_job",
    "version": "v1",
    "operation": "nosuch_op",
    "rest": "us-central1",
    "bucket": "nosuch-bucket",
    "object": "nosuch-object",
    "destination_bucket": "nosuch-bucket",
    "destination": "nosuch-copy",
    "account": "nosuch-account@nowhere.iam.gserviceaccount.com",
    "key": "nosuchkey",
    "email": "nobody@example.com",
    "organization": "cairn",
    "location": "us-central1",
    "study": "nosuch_study",
    "trial": "1",
}


def checked_routes(tmp_path: Path) -> list[tuple[str, str, Access]]:
    app, platform = build_app(Settings(home=tmp_path / "routes-home"))
    routes = [
        (route.method, route.template, route.access)
        for route in app.router.routes
        if not route.access.public and route.access.resource is not None
    ]
    platform.stop()
    return routes


def fill(template: str, project: str) -> tuple[str, dict[str, str]]:
    params: dict[str, str] = {}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "project":
            params[name] = project
        elif name == "name":
            params[name] = f"{project}/models/nosuch_model"
        else:
            params[name] = PLACEHOLDERS[name]
        return params[name]

    path = re.sub(r"\{(\w+)(?:\*\*)?\}", value, template)
    return path, params


def test_every_route_names_its_access() -> None:
    router = Router()

    async def handler(call: Any) -> Any:
        raise AssertionError("never called")

    with pytest.raises(TypeError):
        router.add("GET", "/v1/x", handler, None)  # type: ignore[arg-type]


def test_roles_grant_exactly_their_permissions(
    cairn_server: Any, tmp_path: Path, principal_with: Callable[..., dict[str, str]]
) -> None:
    project = unique("matrix").replace("_", "-")
    routes = checked_routes(tmp_path)
    assert len(routes) > 40
    mismatches: list[str] = []
    for role, permissions in ROLES.items():
        headers = principal_with(project, role)
        for method, template, access in routes:
            path, params = fill(template, project)
            permission = access.permission_for({**params, "userProject": project})
            resource = access.resource({**params, "userProject": project})  # type: ignore[misc]
            expected = permission in permissions and resource.startswith("projects/")
            body_type = (
                "application/octet-stream"
                if access.body_type == UPLOAD_BODY
                else "application/json"
            )
            response = httpx.request(
                method,
                cairn_server.url + path,
                params={"userProject": project} if "storage/v1" in path else None,
                content=b"{}" if method in ("POST", "PATCH") else None,
                headers={"Authorization": headers["Authorization"], "Content-Type": body_type},
                timeout=30,
            )
            assert response.status_code != 500, (method, path, response.text)
            allowed = response.status_code not in (401, 403)
            if allowed != expected:
                mismatches.append(
                    f"{role} {method} {path} ({permission}): expected "
                    f"{'allowed' if expected else 'denied'}, got {response.status_code} {response.text}"
                )
            if not allowed:
                error = response.json()["error"]
                assert error["status"] == "PERMISSION_DENIED" and permission in error["message"]
    assert not mismatches, "\n".join(mismatches)


def test_docs_print_the_current_permission_table(tmp_path: Path) -> None:
    from cairn.api.app import permission_table

    app, platform = build_app(Settings(home=tmp_path / "docs-home"))
    platform.stop()
    docs = (Path(__file__).parents[2] / "docs" / "access.md").read_text()
    printed = docs.split("<!-- permission-table -->\n")[1].split("<!-- /permission-table -->")[0]
    assert printed == permission_table(app.router), "regenerate the table in docs/access.md"


JUNK_BODIES: list[Any] = [
    [],
    "text",
    12,
    None,
    {"unknown": 1},
    {"email": ["a"], "accountId": 5, "members": "x", "displayName": 7},
    {"policy": "x"},
    {"policy": {"bindings": [{"role": ["x"], "members": "y"}]}},
    {"permissions": [1, None]},
    {"resourceNames": [{"x": 1}], "pageSize": "ten", "filter": 3},
    {"add": "x", "remove": {}},
    {"serviceAccount": "x", "accountId": "valid-account"},
]


def test_access_control_methods_answer_junk_with_google_errors(
    cairn_server: Any, tmp_path: Path
) -> None:
    """The methods the fuzz test's discovery document does not know: IAM, identity, audit."""
    project = unique("junk").replace("_", "-")
    owner_call_headers = {**cairn_server.headers(), "Content-Type": "application/json"}
    fuzzed = [
        (method, template)
        for method, template, _ in checked_routes(tmp_path)
        if method in ("POST", "PATCH")
        and any(
            part in template
            for part in (
                "/cairn/v1/users",
                "/cairn/v1/groups",
                "serviceAccounts",
                "IamP",
                "entries",
            )
        )
    ]
    assert len(fuzzed) >= 12
    for method, template in fuzzed:
        path, _ = fill(template, project)
        for body in JUNK_BODIES:
            response = httpx.request(
                method,
                cairn_server.url + path,
                content=json.dumps(body).encode(),
                headers=owner_call_headers,
                timeout=30,
            )
            assert response.status_code < 500, (method, path, body, response.text)
            if response.status_code >= 400:
                error = response.json()["error"]
                assert {"code", "message", "status"} <= set(error), (path, body, error)
