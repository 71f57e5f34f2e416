"""Principals for access tests: service accounts with Google key files, signed in by google-auth."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.remote import unique

CLOUD_PLATFORM = ["https://www.googleapis.com/auth/cloud-platform"]


def owner_call(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**server.headers(), **(kwargs.pop("headers", None) or {})}
    return httpx.request(method, server.url + path, headers=headers, timeout=60, **kwargs)


def new_service_account(server: Any, project: str, tmp_path: Path) -> tuple[str, Path]:
    """A service account of `project` and its Google key file (made through the API)."""
    account_id = unique("sa").replace("_", "-")[:28]
    created = owner_call(
        server, "POST", f"/v1/projects/{project}/serviceAccounts", json={"accountId": account_id}
    )
    assert created.status_code == 200, created.text
    email = created.json()["email"]
    key = owner_call(server, "POST", f"/v1/projects/{project}/serviceAccounts/{email}/keys")
    assert key.status_code == 200, key.text
    path = tmp_path / f"{account_id}.json"
    path.write_bytes(base64.b64decode(key.json()["privateKeyData"]))
    return email, path


def token_from_key_file(path: Path) -> str:
    """An access token obtained exactly as google-auth does it for a key file."""
    import google.auth.transport.requests
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_file(
        str(path), scopes=CLOUD_PLATFORM
    )
    credentials.refresh(google.auth.transport.requests.Request())
    return str(credentials.token)


def grant(server: Any, resource: str, role: str, member: str) -> None:
    """Add one binding to a project's (POST) or a model's/job's (GET) policy."""
    reads_with_post = resource.count("/") == 1
    path = f"/v1/{resource}:getIamPolicy"
    current = owner_call(server, "POST" if reads_with_post else "GET", path).json()
    bindings = [*current.get("bindings", []), {"role": role, "members": [member]}]
    changed = owner_call(
        server,
        "POST",
        f"/v1/{resource}:setIamPolicy",
        json={"policy": {"bindings": bindings, "etag": current["etag"]}},
    )
    assert changed.status_code == 200, changed.text


@pytest.fixture
def principal_with(cairn_server: Any, tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Factory: headers of a fresh service account holding `role` on `project`."""

    def make(project: str, role: str | None) -> dict[str, str]:
        email, key_file = new_service_account(cairn_server, project, tmp_path)
        if role is not None:
            grant(cairn_server, f"projects/{project}", role, f"serviceAccount:{email}")
        info = json.loads(key_file.read_text())
        return {
            "Authorization": f"Bearer {token_from_key_file(key_file)}",
            "X-Account": info["client_email"],
        }

    return make
