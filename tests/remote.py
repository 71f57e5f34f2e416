"""Small helpers for tests that drive a running server over HTTP."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx


def unique(prefix: str) -> str:
    """A fresh resource id, so tests sharing one server never collide."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def owner_credentials(home: Path):  # type: ignore[no-untyped-def]
    """google-auth credentials from the owner file a server writes into its home."""
    from google.auth import external_account_authorized_user

    path = str(home / "credentials" / "owner.json")
    return external_account_authorized_user.Credentials.from_file(path)


def access_token(home: Path) -> str:
    """A fresh access token for the server's owner, obtained as google-auth would."""
    import google.auth.transport.requests

    credentials = owner_credentials(home)
    credentials.refresh(google.auth.transport.requests.Request())
    return str(credentials.token)


def upload_file(
    url: str, local: Path, bucket: str, name: str, headers: dict[str, str] | None = None
) -> str:
    response = httpx.post(
        f"{url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name, safe='')}",
        content=local.read_bytes(),
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
        timeout=30,
    )
    response.raise_for_status()
    return f"gs://{bucket}/{name}"


def upload_dir(
    url: str, local: Path, bucket: str, prefix: str, headers: dict[str, str] | None = None
) -> str:
    for path in sorted(local.rglob("*")):
        if path.is_file():
            name = f"{prefix}/{path.relative_to(local).as_posix()}"
            upload_file(url, path, bucket, name, headers)
    return f"gs://{bucket}/{prefix}"


def wait_operation(ml: Any, name: str, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        operation: dict[str, Any] = ml.projects().operations().get(name=name).execute()
        if operation.get("done"):
            return operation
        if time.monotonic() > deadline:
            raise AssertionError(f"operation {name} not done after {timeout}s: {operation}")
        time.sleep(0.2)


def wait_job(
    ml: Any,
    name: str,
    timeout: float = 180.0,
    states: tuple[str, ...] = ("SUCCEEDED", "FAILED", "CANCELLED"),
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = ml.projects().jobs().get(name=name).execute()
        if job.get("state") in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {name} still {job.get('state')} after {timeout}s: {job}")
        time.sleep(0.2)


def ml_client(url: str, credentials: Any = None, api: str = "ml", version: str = "v1"):  # type: ignore[no-untyped-def]
    """google-api-python-client's client (ml v1 by default) pointed at a Cairn server.

    `credentials` are google-auth credentials, e.g. `owner_credentials(home)`.
    """
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient.discovery import build

    return build(
        api,
        version,
        client_options={"api_endpoint": url},
        credentials=credentials or AnonymousCredentials(),
        static_discovery=True,
        cache_discovery=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
