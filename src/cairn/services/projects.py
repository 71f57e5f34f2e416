"""Projects: created on first use in single-user embedded mode."""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from cairn.domain.errors import ApiError, Code
from cairn.domain.names import check_project


class RuntimeStore(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...
    def put(self, key: str, value: dict[str, Any]) -> None: ...


def project_number(project: str) -> str:
    """A stable 12-digit project number derived from the id (Google's are numeric too)."""
    digest = hashlib.sha256(project.encode()).hexdigest()
    return str(100_000_000_000 + int(digest[:12], 16) % 900_000_000_000)


class ProjectService:
    def __init__(self, runtime: RuntimeStore) -> None:
        self._runtime = runtime
        self._known: set[str] = set()

    def ensure(self, project: str) -> str:
        """Validate the id and record the project the first time it is used."""
        check_project(project)
        if project not in self._known:
            key = f"project:{project}"
            if self._runtime.get(key) is None:
                self._runtime.put(key, {"projectId": project, "number": project_number(project)})
            self._known.add(project)
        return project

    def get_config(self, project: str) -> dict[str, Any]:
        self.ensure(project)
        number = project_number(project)
        return {
            "serviceAccount": f"service-{number}@cloud-ml.google.com.iam.gserviceaccount.com",
            "serviceAccountProject": number,
            "config": {"tpuServiceAccount": f"service-{number}@cloud-tpu.iam.gserviceaccount.com"},
        }

    def claim_bucket(self, bucket: str, project: str) -> None:
        """Writes through the API into `bucket` on behalf of `project`: the first claims it.

        Cairn's local buckets have no IAM of their own; tying each to the project that first
        wrote into it stops a project's developers from replacing another project's trainer
        packages or models (which would then run as that project's jobs).
        """
        key = f"bucket:{bucket}"
        owner = self._runtime.get(key)
        if owner is None:
            self._runtime.put(key, {"project": project})
        elif owner.get("project") != project:
            raise ApiError(
                Code.PERMISSION_DENIED,
                f"Bucket {bucket} belongs to project {owner.get('project')}; write into a "
                f"bucket of project {project} instead.",
            )
