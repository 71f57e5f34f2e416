"""Resource names of ml v1 and the id rules AI Platform enforces."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cairn.domain.errors import invalid_field, shown

# Letters, digits and underscores; starts with a letter; at most 128 characters. Checked
# with fullmatch: `$` would also accept a trailing newline ("nl\n" made unreachable models).
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
# Project ids are looser (Google allows hyphens); refuse only what cannot be a path segment.
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")


def check_id(value: str | None, field_path: str) -> str:
    """Return `value` if it is a valid job/model/version id, else raise INVALID_ARGUMENT."""
    if not value:
        raise invalid_field(field_path, "A name is required.")
    if not _ID.fullmatch(value):
        raise invalid_field(
            field_path,
            f"{shown(value)} is not a valid name: use letters, digits and underscores, "
            "start with a letter, at most 128 characters.",
        )
    return value


def check_project(value: str) -> str:
    if not _PROJECT.fullmatch(value):
        raise invalid_field("name", f"{shown(value)} is not a valid project id.")
    return value


@dataclass(frozen=True)
class ProjectName:
    project: str

    def __str__(self) -> str:
        return f"projects/{self.project}"


@dataclass(frozen=True)
class JobName:
    project: str
    job_id: str

    def __str__(self) -> str:
        return f"projects/{self.project}/jobs/{self.job_id}"


@dataclass(frozen=True)
class ModelName:
    project: str
    model: str

    def __str__(self) -> str:
        return f"projects/{self.project}/models/{self.model}"


@dataclass(frozen=True)
class VersionName:
    project: str
    model: str
    version: str

    @property
    def model_name(self) -> ModelName:
        return ModelName(self.project, self.model)

    def __str__(self) -> str:
        return f"projects/{self.project}/models/{self.model}/versions/{self.version}"


@dataclass(frozen=True)
class OperationName:
    project: str
    operation_id: str

    def __str__(self) -> str:
        return f"projects/{self.project}/operations/{self.operation_id}"


def parse_model_or_version(name: str) -> ModelName | VersionName:
    """Parse `projects/P/models/M` or `projects/P/models/M/versions/V` (the predict target)."""
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == "models":
        return ModelName(check_project(parts[1]), check_id(parts[3], "name"))
    if (
        len(parts) == 6
        and parts[0] == "projects"
        and parts[2] == "models"
        and parts[4] == "versions"
    ):
        return VersionName(
            check_project(parts[1]), check_id(parts[3], "name"), check_id(parts[5], "name")
        )
    raise invalid_field(
        "name",
        f"{shown(name)} is neither projects/PROJECT/models/MODEL nor "
        "projects/PROJECT/models/MODEL/versions/VERSION.",
    )


def basename(name: str) -> str:
    """Last segment of a resource name (`projects/p/models/m` -> `m`)."""
    return name.rsplit("/", 1)[-1]
