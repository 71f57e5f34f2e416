"""Attacks a cold security review tried, each refused (regression tests)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.access.conftest import grant, owner_call
from tests.client.cli_runner import invoke
from tests.factories import build_trainer_sdist
from tests.remote import unique, upload_file


@pytest.fixture
def impostor(cairn_server: Any) -> Iterator[tuple[str, list[bytes]]]:
    """A process on a loopback port that claims the real server's home."""
    seen: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen.append(self.path.encode() + b" " + self.rfile.read(length))
            body = json.dumps({"home": str(cairn_server.home)}).encode()
            self.send_response(200 if self.path == "/cairn/v1/info" else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_the_cli_never_hands_the_owner_credential_to_another_server(
    cairn_server: Any, impostor: tuple[str, list[bytes]]
) -> None:
    url, seen = impostor
    owner = json.loads((cairn_server.home / "credentials" / "owner.json").read_text())
    invoke(url, "models", "list")
    assert seen, "the CLI asked nothing"
    assert not any(owner["refresh_token"].encode() in request for request in seen)
    # The real server, named by its own URL, is still trusted.
    assert invoke(cairn_server.url, "models", "list").exit_code == 0


def test_scopes_must_be_whole_projects(
    cairn_server: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    project = unique("scopes").replace("_", "-")
    owner_call(cairn_server, "POST", f"/v1/projects/{project}/models", json={"name": "m"})
    model = f"projects/{project}/models/m"
    # A model's policy takes model roles only, so its owner cannot widen its reach.
    widened = owner_call(
        cairn_server,
        "POST",
        f"/v1/{model}:setIamPolicy",
        json={"policy": {"bindings": [{"role": "roles/owner", "members": ["user:x@example.com"]}]}},
    )
    assert widened.status_code == 400 and "not supported for this resource" in widened.text
    log = owner_call(cairn_server, "POST", "/v2/entries:list", json={"resourceNames": [model]})
    assert log.status_code == 400
    upload = owner_call(
        cairn_server,
        "POST",
        "/upload/storage/v1/b/scopes/o",
        params={"name": "x", "userProject": f"{project}/models/m"},
        content=b"x",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 400


def test_strangers_cannot_write_into_a_projects_audit_log(cairn_server: Any) -> None:
    project = unique("spam").replace("_", "-")
    long_name = "A" * 5000
    refused = httpx.post(
        f"{cairn_server.url}/v1/projects/{project}/models/{long_name}:predict",
        json={"instances": []},
    )
    assert refused.status_code == 401
    entries = owner_call(
        cairn_server, "POST", "/v2/entries:list", json={"resourceNames": [f"projects/{project}"]}
    ).json()
    assert entries == {}
    instance = owner_call(
        cairn_server,
        "POST",
        "/v2/entries:list",
        json={"resourceNames": ["organizations/cairn"], "orderBy": "timestamp desc", "pageSize": 5},
    ).json()["entries"]
    spam = [e for e in instance if project in e["protoPayload"]["resourceName"]]
    assert spam and len(spam[0]["protoPayload"]["resourceName"]) <= 256
    assert spam[0]["protoPayload"]["authorizationInfo"][0]["granted"] is False


def test_repeated_host_or_authorization_headers_are_refused(cairn_server: Any) -> None:
    import socket

    token = cairn_server.headers()["Authorization"]
    request = (
        f"GET /v1/projects/p/models HTTP/1.1\r\nHost: evil.example\r\n"
        f"Host: 127.0.0.1:{cairn_server.port}\r\nAuthorization: {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", cairn_server.port)) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"repeats the host header" in answer


SLOW_SETUP = """
import time
from setuptools import setup, find_packages
time.sleep(120)  # the server is killed while this package installs
setup(name="slowtrainer", version="0.1", packages=find_packages())
"""


def test_a_crash_never_leaves_a_job_credential_alive(start_server: Any, tmp_path: Path) -> None:
    server = start_server()
    project = "crashcred"
    sdist = build_trainer_sdist(tmp_path, "print('never runs')\n", name="slowtrainer")
    # Replace setup.py inside the sdist with one that installs slowly.
    import io
    import tarfile

    rebuilt = tmp_path / "slow" / sdist.name
    rebuilt.parent.mkdir()
    with tarfile.open(sdist) as source, tarfile.open(rebuilt, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            if member.name.endswith("/setup.py"):
                payload = SLOW_SETUP.encode()
                member.size = len(payload)
                data = io.BytesIO(payload)
            target.addfile(member, data)
    package = upload_file(server.url, rebuilt, "staging", f"slow/{rebuilt.name}", server.headers())
    grant(server, f"projects/{project}", "roles/ml.admin", "user:owner@cairn.local")
    job_id = unique("slow")
    owner_call(
        server,
        "POST",
        f"/v1/projects/{project}/jobs",
        json={
            "jobId": job_id,
            "trainingInput": {
                "scaleTier": "BASIC",
                "packageUris": [package],
                "pythonModule": "slowtrainer.task",
                "region": "us-central1",
            },
        },
    )
    credential = server.home / "jobs" / project / job_id / "application_default_credentials.json"
    deadline = time.monotonic() + 60
    while not credential.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    refresh_token = json.loads(credential.read_text())["refresh_token"]
    server.kill()
    server.restart()
    job = owner_call(server, "GET", f"/v1/projects/{project}/jobs/{job_id}").json()
    assert job["state"] == "FAILED"
    exchange = httpx.post(
        f"{server.url}/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )
    assert exchange.status_code == 400 and exchange.json()["error"] == "invalid_grant"
    assert not credential.exists()


def test_a_project_cannot_write_into_another_projects_bucket(
    cairn_server: Any, principal_with: Callable[..., dict[str, str]]
) -> None:
    ours, theirs = (unique(p).replace("_", "-") for p in ("ours", "theirs"))
    bucket = unique("claimed").replace("_", "-")

    def upload(project: str, who: dict[str, str]) -> httpx.Response:
        return httpx.post(
            f"{cairn_server.url}/upload/storage/v1/b/{bucket}/o",
            params={"name": "trainer.tar.gz", "userProject": project},
            content=b"package",
            headers={**who, "Content-Type": "application/gzip"},
        )

    assert upload(theirs, principal_with(theirs, "roles/storage.objectAdmin")).status_code == 200
    intruder = upload(ours, principal_with(ours, "roles/storage.objectAdmin"))
    assert intruder.status_code == 403 and f"projects/{theirs}" in intruder.text
    # Whoever may write in the owning project may write there from any project.
    assert upload(ours, cairn_server.headers()).status_code == 200
