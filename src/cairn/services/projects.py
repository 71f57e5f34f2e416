"""Projects: created on first use in single-user embedded mode."""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

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

    def bucket_owner(self, bucket: str) -> str | None:
        """The project that claimed `bucket`, or None while no project has."""
        owner = self._runtime.get(f"bucket:{bucket}")
        return None if owner is None else str(owner.get("project"))

    def bucket_project(self, bucket: str, claimant: str) -> str:
        """The project `bucket` belongs to; the first project to write into it claims it.

        Cairn's local buckets have no IAM of their own: a bucket's project's policy decides
        who may write into it, as a bucket's project does on Google Cloud, so one project's
        developers cannot replace another's trainer packages or models.
        """
        key = f"bucket:{bucket}"
        owner = self._runtime.get(key)
        if owner is None:
            self._runtime.put(key, {"project": claimant})
            return claimant
        return str(owner.get("project"))
