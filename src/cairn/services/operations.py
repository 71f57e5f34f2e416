"""Long-running operations: recorded when a model or version change starts, finished by it."""

from __future__ import annotations

import threading
import time
from typing import Any

from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.domain.names import check_project
from cairn.domain.operations import OperationMetadata, operation_doc
from cairn.domain.wire import now
from cairn.services.projects import ProjectService, project_number
from cairn.services.records import ListRequest, list_page


class OperationService:
    def __init__(self, repo: Any, projects: ProjectService) -> None:
        self._repo = repo
        self._projects = projects
        self._cancel_requested: set[str] = set()
        self._lock = threading.Lock()

    # ----- used by other services --------------------------------------------------------

    def begin(
        self,
        project: str,
        operation_id: str,
        operation_type: str,
        *,
        model_name: str,
        version: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record a new, running operation and return it as the API renders it."""
        metadata = OperationMetadata.model_validate(
            {
                "createTime": now(),
                "startTime": now(),
                "operationType": operation_type,
                "modelName": model_name,
                "version": version,
                "projectNumber": project_number(project),
            }
        )
        name = f"projects/{project}/operations/{operation_id}"
        doc = operation_doc(name, metadata)
        self._repo.insert((project, operation_id), doc)
        return doc

    def succeed(self, name: str, response: dict[str, Any]) -> None:
        self._finish(name, {"response": response})

    def fail(self, name: str, error: ApiError) -> None:
        self._finish(name, {"error": error.to_status()})

    def cancel_requested(self, name: str) -> bool:
        with self._lock:
            return name in self._cancel_requested

    def _finish(self, name: str, outcome: dict[str, Any]) -> None:
        project, operation_id = _split(name)

        def finish(doc: dict[str, Any]) -> dict[str, Any] | None:
            if doc.get("done"):
                return None
            metadata = dict(doc.get("metadata", {}))
            metadata["endTime"] = OperationMetadata(end_time=now()).to_json()["endTime"]
            return {**doc, "metadata": metadata, "done": True, **outcome}

        self._repo.update((project, operation_id), finish)
        with self._lock:
            self._cancel_requested.discard(name)

    # ----- API methods -------------------------------------------------------------------

    def get(self, project: str, operation_id: str) -> dict[str, Any]:
        check_project(project)
        doc = self._repo.get((project, operation_id))
        if doc is None:
            raise ApiError(
                Code.NOT_FOUND,
                f"Operation projects/{project}/operations/{operation_id} does not exist.",
            )
        return doc

    def list(self, project: str, request: ListRequest) -> dict[str, Any]:
        self._projects.ensure(project)
        return list_page(
            self._repo,
            (project,),
            request,
            collection="operations",
        )

    def cancel(self, project: str, operation_id: str) -> dict[str, Any]:
        """Best effort, as on Google: a running operation stops at its next safe point."""
        doc = self.get(project, operation_id)
        if doc.get("done"):
            return {}
        name = str(doc["name"])
        with self._lock:
            self._cancel_requested.add(name)

        def mark(current: dict[str, Any]) -> dict[str, Any] | None:
            if current.get("done"):
                return None
            metadata = {**current.get("metadata", {}), "isCancellationRequested": True}
            return {**current, "metadata": metadata}

        self._repo.update((project, operation_id), mark)
        return {}

    def wait(self, project: str, operation_id: str, timeout: float) -> dict[str, Any]:
        """Poll until done (used by tests and the CLI's in-process paths)."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(project, operation_id)
            if doc.get("done") or time.monotonic() > deadline:
                return doc
            time.sleep(0.05)


_last_millis = 0
_millis_lock = threading.Lock()


def operation_id(kind: str, *parts: str) -> str:
    """AI Platform's id shape, `create_<model>_<version>-<epoch millis>`, never repeated.

    Two operations started in the same millisecond get consecutive numbers, so an id is
    unique without a retry loop.
    """
    global _last_millis
    with _millis_lock:
        _last_millis = max(_last_millis + 1, int(time.time() * 1000))
        millis = _last_millis
    return f"{kind}_{'_'.join(parts)}-{millis}"


def _split(name: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "operations":
        raise invalid_field("name", f"'{name}' is not projects/PROJECT/operations/ID.")
    return parts[1], parts[3]
