"""Credentials: Google's client libraries sign in against Cairn; bad, expired and revoked
tokens are refused; the CLI finds the owner's credential by itself."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.access.conftest import CLOUD_PLATFORM, new_service_account, owner_call
from tests.client.cli_runner import invoke
from tests.remote import ml_client, unique


def test_requests_without_a_valid_credential_are_unauthenticated(cairn_server: Any) -> None:
    url = f"{cairn_server.url}/v1/projects/authn/models"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401, response.text
        error = response.json()["error"]
        assert error["status"] == "UNAUTHENTICATED" and error["code"] == 401


def test_owner_credential_file_is_private_and_works_with_google_auth(cairn_server: Any) -> None:
    owner_file = cairn_server.home / "credentials" / "owner.json"
    assert owner_file.stat().st_mode & 0o777 == 0o600
    assert (owner_file.parent.stat().st_mode & 0o777) == 0o700
    ml = cairn_server.client()  # google-auth's own credential type, refreshed at /token
    assert ml.projects().getConfig(name="projects/authn").execute()["serviceAccount"]


def test_service_account_key_file_works_with_unmodified_google_code(
    cairn_server: Any, tmp_path: Path
) -> None:
    from google.oauth2 import service_account

    project = unique("keyfile").replace("_", "-")
    email, key_file = new_service_account(cairn_server, project, tmp_path)
    owner_call(
        cairn_server,
        "POST",
        f"/v1/projects/{project}:setIamPolicy",
        json={
            "policy": {
                "bindings": [{"role": "roles/ml.admin", "members": [f"serviceAccount:{email}"]}]
            }
        },
    )
    info = json.loads(key_file.read_text())
    assert info["type"] == "service_account" and "private_key" in info
    credentials = service_account.Credentials.from_service_account_file(
        str(key_file), scopes=CLOUD_PLATFORM
    )
    ml = ml_client(cairn_server.url, credentials)
    ml.projects().models().create(parent=f"projects/{project}", body={"name": "from_key"}).execute()
    listed = ml.projects().models().list(parent=f"projects/{project}").execute()
    assert [m["name"] for m in listed["models"]] == [f"projects/{project}/models/from_key"]
    # The creator owns what it created.
    policy = (
        ml.projects()
        .models()
        .getIamPolicy(resource=f"projects/{project}/models/from_key")
        .execute()
    )
    assert {"role": "roles/ml.modelOwner", "members": [f"serviceAccount:{email}"]} in policy[
        "bindings"
    ]


def test_deleting_a_key_revokes_it(cairn_server: Any, tmp_path: Path) -> None:
    import google.auth.exceptions
    import google.auth.transport.requests
    from google.oauth2 import service_account

    project = unique("revkey").replace("_", "-")
    email, key_file = new_service_account(cairn_server, project, tmp_path)
    credentials = service_account.Credentials.from_service_account_file(
        str(key_file), scopes=CLOUD_PLATFORM
    )
    credentials.refresh(google.auth.transport.requests.Request())
    token = credentials.token
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        httpx.get(f"{cairn_server.url}/cairn/v1/auth/principal", headers=headers).json()["email"]
        == email
    )
    key_id = json.loads(key_file.read_text())["private_key_id"]
    deleted = owner_call(
        cairn_server, "DELETE", f"/v1/projects/{project}/serviceAccounts/{email}/keys/{key_id}"
    )
    assert deleted.status_code == 200
    assert (
        httpx.get(f"{cairn_server.url}/cairn/v1/auth/principal", headers=headers).status_code == 401
    )
    with pytest.raises(google.auth.exceptions.RefreshError):
        credentials.refresh(google.auth.transport.requests.Request())


def test_a_forged_assertion_is_refused(cairn_server: Any, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.auth import crypt, jwt

    project = unique("forge").replace("_", "-")
    _, key_file = new_service_account(cairn_server, project, tmp_path)
    info = json.loads(key_file.read_text())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = crypt.RSASigner.from_service_account_info(info)
    now = int(time.time())
    claims = {"iss": info["client_email"], "aud": info["token_uri"], "iat": now, "exp": now + 600}
    assertion = jwt.encode(signer, claims).decode()
    response = httpx.post(
        info["token_uri"],
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_people_sign_in_with_a_code_and_google_auth_default_works(
    cairn_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth

    email = f"{unique('ada')}@example.com"
    created = owner_call(cairn_server, "POST", "/cairn/v1/users", json={"email": email})
    code = created.json()["loginCode"]
    config = tmp_path / "config"
    env = {"CAIRN_CONFIG": str(config)}
    result = invoke(
        cairn_server.url, "auth", "application-default", "login", "--code", code, env=env
    )
    assert result.exit_code == 0, result.output
    adc = config / "application_default_credentials.json"
    assert adc.stat().st_mode & 0o777 == 0o600
    # A code is good for one sign-in only.
    again = invoke(cairn_server.url, "auth", "login", "--code", code, env=env)
    assert again.exit_code == 1 and "unknown, used or expired" in again.output

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    credentials, _ = google.auth.default(scopes=CLOUD_PLATFORM)
    ml = ml_client(cairn_server.url, credentials)
    with pytest.raises(Exception) as denied:  # signed in, but granted nothing yet
        ml.projects().models().list(parent="projects/adas-project").execute()
    assert "403" in str(denied.value)
    owner_call(
        cairn_server,
        "POST",
        "/v1/projects/adas-project:setIamPolicy",
        json={"policy": {"bindings": [{"role": "roles/ml.viewer", "members": [f"user:{email}"]}]}},
    )
    assert ml.projects().models().list(parent="projects/adas-project").execute() == {}


def test_cli_login_print_token_and_revoke(cairn_server: Any, tmp_path: Path) -> None:
    email = f"{unique('bob')}@example.com"
    env = {"CAIRN_CONFIG": str(tmp_path / "config")}
    made = invoke(cairn_server.url, "iam", "users", "create", email, env=env)
    assert made.exit_code == 0, made.output
    code = made.output.split("--code ")[1].split()[0]
    login = invoke(cairn_server.url, "auth", "login", "--code", code, env=env)
    assert login.exit_code == 0 and f"signed in as [{email}]" in login.output
    token = invoke(cairn_server.url, "auth", "print-access-token", env=env).stdout.strip()
    principal = httpx.get(
        f"{cairn_server.url}/cairn/v1/auth/principal", headers={"Authorization": f"Bearer {token}"}
    )
    assert principal.json()["principal"] == f"user:{email}"
    listed = invoke(cairn_server.url, "auth", "list", env=env)
    assert f"* {email}" in listed.output
    revoked = invoke(cairn_server.url, "auth", "revoke", env=env)
    assert revoked.exit_code == 0, revoked.output
    after = httpx.get(
        f"{cairn_server.url}/cairn/v1/auth/principal", headers={"Authorization": f"Bearer {token}"}
    )
    assert after.status_code == 401


def test_access_tokens_expire(start_server: Any) -> None:
    server = start_server(extra_env={"CAIRN_ACCESS_TOKEN_SECONDS": "2"})
    headers = server.headers()
    url = f"{server.url}/cairn/v1/auth/principal"
    assert httpx.get(url, headers=headers).status_code == 200
    time.sleep(2.5)
    expired = httpx.get(url, headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
