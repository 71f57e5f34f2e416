"""`CairnClient`: the synchronous Python client of Cairn's ml v1 REST API.

One method per ml v1 method the CLI uses, plus Cairn's two extensions (object upload into a
local bucket, job logs). Bodies travel as plain JSON dicts in the API's own camelCase shape,
so what a user reads in Google's reference is what they pass here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import IO, Any
from urllib.parse import quote

import httpx

from cairn.client.credentials import Credential, find_credential
from cairn.client.errors import error_from_response, error_from_status
from cairn.domain.errors import ApiError, Code

TERMINAL_JOB_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

Json = dict[str, Any]


class CairnClient:
    """Talks to one Cairn server on behalf of one project."""

    def __init__(
        self,
        api_url: str,
        project: str,
        *,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        credential: Credential | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.project = project
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout, transport=transport)
        self._credential = credential

    @property
    def credential(self) -> Credential:
        """The credential requests carry: the one given, else the one found on first use."""
        if self._credential is None:
            self._credential = find_credential(self.api_url)
        return self._credential

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CairnClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- names ---------------------------------------------------------------------------

    @property
    def project_name(self) -> str:
        return f"projects/{self.project}"

    def job_name(self, job_id: str) -> str:
        return f"{self.project_name}/jobs/{job_id}"

    def model_name(self, model: str) -> str:
        return model if model.startswith("projects/") else f"{self.project_name}/models/{model}"

    def version_name(self, model: str, version: str) -> str:
        if version.startswith("projects/"):
            return version
        return f"{self.model_name(model)}/versions/{version}"

    def operation_name(self, operation: str) -> str:
        if operation.startswith("projects/"):
            return operation
        return f"{self.project_name}/operations/{operation}"

    # -- project -------------------------------------------------------------------------

    def get_config(self) -> Json:
        return self._call("GET", f"v1/{self.project_name}:getConfig")

    def server_info(self) -> Json:
        """Cairn's own `GET /cairn/v1/info`: version, home and where the buckets live."""
        return self._call("GET", "cairn/v1/info")

    # -- jobs ----------------------------------------------------------------------------

    def create_job(self, job: Json) -> Json:
        return self._call("POST", f"v1/{self.project_name}/jobs", json=job)

    def get_job(self, job_id: str) -> Json:
        return self._call("GET", f"v1/{self.job_name(job_id)}")

    def list_jobs(self, filter: str | None = None, page_size: int | None = None) -> Iterator[Json]:
        """Every job of the project, fetching page after page as the caller iterates."""
        return self._pages(f"v1/{self.project_name}/jobs", "jobs", filter, page_size)

    def cancel_job(self, job_id: str) -> None:
        self._call("POST", f"v1/{self.job_name(job_id)}:cancel", json={})

    def patch_job(self, job_id: str, body: Json, update_mask: str) -> Json:
        return self._call(
            "PATCH", f"v1/{self.job_name(job_id)}", json=body, params={"updateMask": update_mask}
        )

    # -- models --------------------------------------------------------------------------

    def create_model(self, model: Json) -> Json:
        return self._call("POST", f"v1/{self.project_name}/models", json=model)

    def get_model(self, model: str) -> Json:
        return self._call("GET", f"v1/{self.model_name(model)}")

    def list_models(
        self, filter: str | None = None, page_size: int | None = None
    ) -> Iterator[Json]:
        return self._pages(f"v1/{self.project_name}/models", "models", filter, page_size)

    def patch_model(self, model: str, body: Json, update_mask: str) -> Json:
        """Returns the update's Operation."""
        return self._call(
            "PATCH", f"v1/{self.model_name(model)}", json=body, params={"updateMask": update_mask}
        )

    def delete_model(self, model: str) -> Json:
        """Returns the delete's Operation."""
        return self._call("DELETE", f"v1/{self.model_name(model)}")

    # -- versions ------------------------------------------------------------------------

    def create_version(self, model: str, version: Json) -> Json:
        """Returns the create's Operation; `wait_operation` it to get the Version."""
        return self._call("POST", f"v1/{self.model_name(model)}/versions", json=version)

    def get_version(self, model: str, version: str) -> Json:
        return self._call("GET", f"v1/{self.version_name(model, version)}")

    def list_versions(
        self, model: str, filter: str | None = None, page_size: int | None = None
    ) -> Iterator[Json]:
        return self._pages(f"v1/{self.model_name(model)}/versions", "versions", filter, page_size)

    def patch_version(self, model: str, version: str, body: Json, update_mask: str) -> Json:
        """Returns the update's Operation."""
        return self._call(
            "PATCH",
            f"v1/{self.version_name(model, version)}",
            json=body,
            params={"updateMask": update_mask},
        )

    def delete_version(self, model: str, version: str) -> Json:
        """Returns the delete's Operation."""
        return self._call("DELETE", f"v1/{self.version_name(model, version)}")

    def set_default_version(self, model: str, version: str) -> Json:
        return self._call("POST", f"v1/{self.version_name(model, version)}:setDefault", json={})

    # -- operations ----------------------------------------------------------------------

    def get_operation(self, operation: str) -> Json:
        return self._call("GET", f"v1/{self.operation_name(operation)}")

    def list_operations(
        self, filter: str | None = None, page_size: int | None = None
    ) -> Iterator[Json]:
        return self._pages(f"v1/{self.project_name}/operations", "operations", filter, page_size)

    def cancel_operation(self, operation: str) -> None:
        self._call("POST", f"v1/{self.operation_name(operation)}:cancel", json={})

    def wait_operation(
        self,
        operation: str | Json,
        *,
        interval: float = 0.5,
        timeout: float | None = None,
        on_poll: Callable[[Json], None] | None = None,
    ) -> Json:
        """Poll until the operation is done; return it, or raise its error as `ApiError`."""
        current = operation if isinstance(operation, dict) else self.get_operation(operation)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not current.get("done"):
            if on_poll is not None:
                on_poll(current)
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(
                    Code.DEADLINE_EXCEEDED,
                    f"Operation [{current.get('name')}] is still running after {timeout:g}s. "
                    "Check on it later with `cairn operations describe`.",
                )
            time.sleep(interval)
            current = self.get_operation(str(current["name"]))
        if current.get("error"):
            raise error_from_status(current["error"])
        return current

    # -- prediction ----------------------------------------------------------------------

    def predict(self, name: str, body: Json) -> Json:
        """POST `{name}:predict`; `name` is a model (default version) or a version name."""
        return self._call("POST", f"v1/{name}:predict", json=body)

    # -- Cairn extensions ----------------------------------------------------------------

    def upload_object(self, bucket: str, name: str, data: bytes | IO[bytes]) -> Json:
        """Store bytes at gs://bucket/name (Cloud Storage JSON API media upload)."""
        return self._call(
            "POST",
            f"upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": name, "userProject": self.project},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def delete_object(self, bucket: str, name: str) -> None:
        """Remove gs://bucket/name (Cloud Storage JSON API objects.delete)."""
        self._call(
            "DELETE",
            f"storage/v1/b/{bucket}/o/{name}",  # `_send` quotes the path once
            params={"userProject": self.project},
        )

    def read_job_logs(
        self, job_id: str, cursor: str | None = None, task_name: str | None = None
    ) -> Json:
        """One batch of a job's log lines: `{"entries": [...], "cursor", "jobState"}`;
        `task_name`: only that replica's (e.g. `worker-replica-1`, or `service`)."""
        params = {"cursor": cursor} if cursor else {}
        if task_name:
            params["taskName"] = task_name
        return self._call(
            "GET", f"cairn/v1/{self.project_name}/jobs/{job_id}/logs", params=params or None
        )

    def prediction_log_entries(
        self,
        kind: str,
        model: str,
        *,
        version: str | None = None,
        table: str | None = None,
        since: str | None = None,
        until: str | None = None,
        newest_first: bool = True,
        limit: int | None = None,
        page_size: int = 100,
    ) -> Iterator[Json]:
        """Rows of a model's `requestLogs` (sampled requests) or `accessLogs`, page by page.

        `since`/`until` are RFC 3339 times (inclusive, exclusive); `limit` None reads all.
        """
        params: dict[str, str] = {"order": "desc" if newest_first else "asc"}
        for name, value in (("version", version), ("table", table), ("since", since),
                            ("until", until)):  # fmt: skip
            if value:
                params[name] = value
        sent = 0
        path = f"cairn/v1/{self.model_name(model)}/{kind}"
        while limit is None or sent < limit:
            wanted = page_size if limit is None else min(page_size, limit - sent)
            page = self._call("GET", path, params={**params, "pageSize": str(wanted)})
            for entry in page.get("entries") or []:
                sent += 1
                yield entry
            if not page.get("nextPageToken"):
                return
            params["pageToken"] = page["nextPageToken"]

    def set_request_groundtruth(
        self, model: str, request_id: str, groundtruth: str, version: str | None = None
    ) -> Json:
        """Attach ground truth (a string, usually JSON) to one logged request of `model`
        (refused as NOT_FOUND unless the request went to `version`, when given)."""
        body = {"requestId": request_id, "groundtruth": groundtruth}
        if version is not None:
            body["version"] = version
        return self._call(
            "POST", f"cairn/v1/{self.model_name(model)}/requestLogs:setGroundtruth", json=body
        )

    def read_console_logs(self, model: str, version: str, lines: int | None = None) -> Json:
        """The last lines of each node's stdout/stderr: `{"entries": [{"node", "text"}]}`."""
        params = {"lines": str(lines)} if lines else None
        return self._call(
            "GET", f"cairn/v1/{self.version_name(model, version)}/consoleLogs", params=params
        )

    # -- access control ------------------------------------------------------------------

    def get_iam_policy(self, resource: str) -> Json:
        """The IAM policy of `projects/P`, a model, a job or `organizations/cairn`."""
        if _reads_policy_with_post(resource):
            return self._call("POST", f"v1/{resource}:getIamPolicy", json={})
        return self._call("GET", f"v1/{resource}:getIamPolicy")

    def set_iam_policy(self, resource: str, policy: Json) -> Json:
        return self._call("POST", f"v1/{resource}:setIamPolicy", json={"policy": policy})

    def test_iam_permissions(self, resource: str, permissions: list[str]) -> list[str]:
        body = {"permissions": permissions}
        answer = self._call("POST", f"v1/{resource}:testIamPermissions", json=body)
        return list(answer.get("permissions") or [])

    def caller(self) -> Json:
        """Who the server takes this client for: `{"principal", "email"}`."""
        return self._call("GET", "cairn/v1/auth/principal")

    def create_user(self, email: str, display_name: str | None = None) -> Json:
        """Returns the user with a one-time `loginCode` to hand over."""
        body = {"email": email, **({"displayName": display_name} if display_name else {})}
        return self._call("POST", "cairn/v1/users", json=body)

    def issue_login_code(self, email: str) -> Json:
        return self._call("POST", f"cairn/v1/users/{email}:issueLoginCode", json={})

    def list_users(self) -> list[Json]:
        return list(self._call("GET", "cairn/v1/users").get("users") or [])

    def delete_user(self, email: str) -> None:
        self._call("DELETE", f"cairn/v1/users/{email}")

    def create_group(self, email: str, members: list[str], display_name: str | None = None) -> Json:
        body: Json = {"email": email, "members": members}
        if display_name:
            body["displayName"] = display_name
        return self._call("POST", "cairn/v1/groups", json=body)

    def modify_group(self, email: str, add: list[str], remove: list[str]) -> Json:
        body = {"add": add, "remove": remove}
        return self._call("POST", f"cairn/v1/groups/{email}:modifyMembers", json=body)

    def list_groups(self) -> list[Json]:
        return list(self._call("GET", "cairn/v1/groups").get("groups") or [])

    def delete_group(self, email: str) -> None:
        self._call("DELETE", f"cairn/v1/groups/{email}")

    def create_service_account(self, account_id: str, display_name: str | None = None) -> Json:
        body: Json = {"accountId": account_id}
        if display_name:
            body["serviceAccount"] = {"displayName": display_name}
        return self._call("POST", f"v1/{self.project_name}/serviceAccounts", json=body)

    def list_service_accounts(self) -> list[Json]:
        path = f"v1/{self.project_name}/serviceAccounts"
        return list(self._call("GET", path).get("accounts") or [])

    def delete_service_account(self, email: str) -> None:
        self._call("DELETE", f"v1/{self.project_name}/serviceAccounts/{email}")

    def create_service_account_key(self, email: str) -> Json:
        """Returns the key with `privateKeyData`: the base64 of a Google key file."""
        return self._call("POST", f"v1/{self.project_name}/serviceAccounts/{email}/keys", json={})

    def list_service_account_keys(self, email: str) -> list[Json]:
        path = f"v1/{self.project_name}/serviceAccounts/{email}/keys"
        return list(self._call("GET", path).get("keys") or [])

    def delete_service_account_key(self, email: str, key_id: str) -> None:
        self._call("DELETE", f"v1/{self.project_name}/serviceAccounts/{email}/keys/{key_id}")

    def read_log_entries(
        self, scope: str, filter: str | None = None, *, newest_first: bool = True, limit: int = 100
    ) -> Iterator[Json]:
        """Log entries of `projects/P` or `organizations/cairn` (docs/logging.md), up to
        `limit` of them."""
        body: Json = {
            "resourceNames": [scope],
            "orderBy": "timestamp desc" if newest_first else "timestamp asc",
            "pageSize": min(limit, 100),
        }
        if filter:
            body["filter"] = filter
        sent = 0
        while sent < limit:
            page = self._call("POST", "v2/entries:list", json=body)
            for entry in page.get("entries") or []:
                if sent >= limit:
                    return
                sent += 1
                yield entry
            if not page.get("nextPageToken"):
                return
            body["pageToken"] = page["nextPageToken"]

    # -- plumbing ------------------------------------------------------------------------

    def _pages(
        self, path: str, key: str, filter: str | None, page_size: int | None
    ) -> Iterator[Json]:
        params: dict[str, str] = {}
        if filter:
            params["filter"] = filter
        if page_size:
            params["pageSize"] = str(page_size)
        while True:
            page = self._call("GET", path, params=params)
            yield from page.get(key) or []
            token = page.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Json | None = None,
        content: bytes | IO[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Json:
        response = self._send(method, path, params, json, content, headers)
        if response.status_code == 401 and self.credential.invalidate():
            if hasattr(content, "seek"):
                content.seek(0)  # type: ignore[union-attr]
            response = self._send(method, path, params, json, content, headers)
        if response.is_error:
            raise error_from_response(response)
        if not response.content:
            return {}
        body = response.json()
        return body if isinstance(body, dict) else {"value": body}

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        json: Json | None,
        content: bytes | IO[bytes] | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        headers = dict(headers or {})
        token = self.credential.token(self.api_url)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._http.request(
                method,
                "/" + quote(path, safe="/:"),
                params=params,
                json=json,
                content=content,  # type: ignore[arg-type]
                headers=headers,
            )
        except httpx.TransportError as exc:
            raise _unreachable(self.api_url, exc) from exc


def _reads_policy_with_post(resource: str) -> bool:
    """Cloud Resource Manager reads policies with POST; ml v1 (models, jobs) with GET."""
    parts = resource.split("/")
    return len(parts) == 2


def _unreachable(api_url: str, exc: httpx.TransportError) -> ApiError:
    if isinstance(exc, httpx.TimeoutException):
        return ApiError(
            Code.DEADLINE_EXCEEDED,
            f"The Cairn server at {api_url} did not answer in time. Check that it is "
            "healthy (`cairn server` logs) and retry.",
        )
    return ApiError(
        Code.UNAVAILABLE,
        f"No Cairn server answers at {api_url}. Start one with `cairn server` (add "
        "`--home DIR` to reopen an existing home, e.g. `--home .cairn-demo` for `make demo`'s), "
        "or point --api / CAIRN_API at a running one.",
    )
